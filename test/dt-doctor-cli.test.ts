/**
 * `dt doctor` as a linter and `dt diff`, as processes: SARIF validated against the official
 * SARIF 2.1.0 schema (vendored, ajv-draft-04 + ajv-formats); --fail-on exit statuses; findings
 * located in the file read back through a second path (the FDT_PROP token at a DTB offset, the
 * property's name at a DTS line and column); --explain; --live on a directory tree the test
 * writes, read through dtc -I fs; dt diff of DTB, DTS and directory, phandles by path.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import AjvDraft04 from 'ajv-draft-04';
import ajvFormats from 'ajv-formats';
import { cells, type Fdt, type FdtNode, serializeFdt, toDts } from '../src/fdt/index.ts';
import { RULES } from '../src/nvlink2/lint/rules.ts';
import { generateWitherspoon, type WitherspoonOptions } from '../src/platform/witherspoon/index.ts';
import { runCli, runCliInProcess } from './support/cli.ts';
import { hasDtc } from './support/fdt/dtc.ts';

const SCHEMA = new URL('./fixtures/sarif-schema-2.1.0.json', import.meta.url);
const skip = hasDtc() ? false : 'dtc (device-tree-compiler) is not installed';

/** `dt ...args` in this process, on captured output (a spawned run: `spawned`). */
async function cli(...args: string[]) {
  const r = await runCliInProcess(['dt', ...args]);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `dt ...args` spawned as the bin: the exit status as the process sets it. */
function spawned(...args: string[]) {
  const r = runCli(['dt', ...args]);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const validateSarif = (() => {
  // CommonJS packages: their class and plugin are module.exports.default as well.
  const ajv = new AjvDraft04.default({ allErrors: true, strict: false });
  ajvFormats.default(ajv);
  return ajv.compile(JSON.parse(readFileSync(SCHEMA, 'utf8')) as object);
})();

function assertValidSarif(log: unknown): void {
  const ok = validateSarif(log);
  assert.ok(ok, JSON.stringify(validateSarif.errors?.slice(0, 5), null, 2));
}

interface JsonFinding {
  ruleId: string;
  level: string;
  node: string;
  property: string | null;
  kernels: string;
  location: { file: string; line?: number; column?: number; offset?: number } | null;
  fix: { fdtput: string[]; dtso: string } | null;
}

/** A tree as /proc/device-tree holds it: a directory per node, a file per property. */
function writeTreeDir(fdt: Fdt, dir: string): void {
  const stack: [FdtNode, string][] = [[fdt.root, dir]];
  for (let item = stack.pop(); item; item = stack.pop()) {
    const [node, path] = item;
    mkdirSync(path, { recursive: true });
    for (const p of node.properties) writeFileSync(join(path, p.name), p.value);
    for (const c of node.children) stack.push([c, join(path, c.name)]);
  }
}

const FAULTS: Partial<WitherspoonOptions> = {
  omit: [
    { property: 'ibm,nvlink-speed', target: '/pciex@6230200000000/unknown-bridge@1,1' },
    { property: 'ibm,associativity', target: '/memory@3c000000000' },
    { property: 'reg', target: '/xscom@603fc00000000/npu@5011000/link@2' },
  ],
  atsdEntries: 4,
};

describe('dt doctor as a linter', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dt-doctor-cli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const faulty = join(dir, 'faulty.dtb');
  writeFileSync(faulty, serializeFdt(generateWitherspoon(FAULTS)));
  const faultyDts = join(dir, 'faulty.dts');
  writeFileSync(faultyDts, `// a comment line first\n${toDts(generateWitherspoon(FAULTS))}`);

  it('the text report: the table as before, then each finding with where, kernels and fix', async () => {
    const r = await cli('doctor', faulty);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /\n24 functions: 17 nvlink2, 6 plain, 1 error\n\n/);
    assert.match(
      r.stdout,
      /faulty\.dtb: offset 0x[0-9a-f]+: \/pciex@6230200000000\/unknown-bridge@1,1 ibm,nvlink-speed: error NV009 \[5\.0–5\.12\]: bridge 0001:00:01\.1 has no ibm,nvlink-speed\n/,
    );
    assert.match(
      r.stdout,
      /fdtput -t x \S+faulty\.dtb \/pciex@6230200000000\/unknown-bridge@1,1 ibm,nvlink-speed 0x8\n/,
    );
    assert.match(
      r.stdout,
      /\n5 findings: 4 errors, 1 warning, 0 notes \(vfio-nvlink2 dt doctor --explain RULE\)\n$/,
    );
  });

  it('--fail-on: 3 at or above the level, 0 below it and by default', async () => {
    // The first two through the bin (0 and 3 as the process exits), the rest in process.
    assert.equal(spawned('doctor', faulty).status, 0);
    assert.equal(spawned('doctor', faulty, '--fail-on', 'error').status, 3);
    assert.equal((await cli('doctor', faulty, '--fail-on', 'note')).status, 3);
    const warnings = join(dir, 'warnings.dtb');
    writeFileSync(warnings, serializeFdt(generateWitherspoon({ atsdEntries: 6 })));
    assert.equal((await cli('doctor', warnings, '--fail-on', 'error')).status, 0);
    assert.equal((await cli('doctor', warnings, '--fail-on', 'warning')).status, 3);
    assert.equal((await cli('doctor', '--fail-on', 'note')).status, 0);
    const bad = await cli('doctor', '--fail-on', 'fatal');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--fail-on must be error, warning, note, not 'fatal'/);
  });

  it('--format json: each DTB location is the FDT_PROP of that property, read from the file', async () => {
    const r = await cli('doctor', faulty, '--format', 'json');
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { findings: JsonFinding[]; functions: unknown[] };
    assert.equal(report.functions.length, 24);
    assert.deepEqual([...new Set(report.findings.map((f) => f.ruleId))].sort(), [
      'NV007',
      'NV009',
      'NV010',
      'NV014',
    ]);
    const blob = readFileSync(faulty);
    const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    const strings = view.getUint32(12);
    const cstr = (at: number) => blob.subarray(at, blob.indexOf(0, at)).toString('latin1');
    for (const f of report.findings) {
      const at = f.location?.offset;
      assert.equal(typeof at, 'number', `${f.ruleId} ${f.node} has no offset`);
      const token = view.getUint32(at!);
      if (token === 3) {
        assert.equal(cstr(strings + view.getUint32(at! + 8)), f.property);
      } else {
        // A missing property: the node's FDT_BEGIN_NODE, whose name ends the path.
        assert.equal(token, 1, `${f.ruleId}: token ${token}`);
        assert.equal(cstr(at! + 4), f.node.slice(f.node.lastIndexOf('/') + 1));
      }
      if (f.fix) assert.match(f.fix.dtso, /^\/dts-v1\/;\n\/plugin\/;\n/);
    }
  });

  it('a DTS: file:line:column of each property (or of its node) in the source', async () => {
    const r = await cli('doctor', faultyDts, '--format', 'json');
    assert.equal(r.status, 0, r.stderr);
    const findings = (JSON.parse(r.stdout) as { findings: JsonFinding[] }).findings;
    const lines = readFileSync(faultyDts, 'utf8').split('\n');
    assert.ok(findings.length > 0);
    for (const f of findings) {
      const l = f.location!;
      assert.equal(l.file, faultyDts);
      const text = lines[l.line! - 1]!.slice(l.column! - 1);
      const name = f.node === '/' ? '/' : f.node.slice(f.node.lastIndexOf('/') + 1);
      const present = f.property !== null && text.startsWith(`${f.property} `);
      assert.ok(
        present || text.startsWith(`${name} {`),
        `${f.ruleId} at ${l.line}:${l.column}: ${text}`,
      );
    }
    const text = await cli('doctor', faultyDts);
    assert.match(
      text.stdout,
      /faulty\.dts:\d+:\d+: \/pciex@6230200000000 ibm,mmio-atsd: error NV010/,
    );
    assert.match(text.stdout, /fdtput -t x \S+faulty\.dtb /);
  });

  it('--fix-script of a DTS or a live tree runs as written: it makes the blob, then fixes it', async () => {
    const own = join(dir, 'script');
    mkdirSync(own);
    const dts = join(own, 'tree.dts');
    writeFileSync(dts, toDts(generateWitherspoon(FAULTS)));
    const live = join(own, 'device-tree');
    writeTreeDir(generateWitherspoon({ ...FAULTS, linuxPciDomain: true }), live);
    for (const [input, dtb] of [
      [[dts], join(own, 'tree.dtb')],
      [['--live', live], join(own, 'tree.dtb')],
    ] as const) {
      rmSync(dtb, { force: true });
      const script = join(own, 'fix.sh');
      assert.equal((await cli('doctor', ...input, '--fix-script', script)).status, 0);
      const ran = spawnSync('sh', [script], { cwd: own, encoding: 'utf8' });
      assert.equal(ran.status, 0, `${readFileSync(script, 'utf8')}\n${ran.stderr}`);
      const after = JSON.parse((await cli('doctor', dtb, '--format', 'json')).stdout) as {
        findings: JsonFinding[];
      };
      // Every finding of FAULTS has a fix.
      assert.deepEqual(
        after.findings.map((f) => `${f.ruleId} ${f.node} ${f.property}`),
        [],
      );
    }
  });

  it('SARIF 2.1.0 for a DTB (--format sarif) and a DTS (--sarif FILE) is valid by the schema', async () => {
    const r = await cli('doctor', faulty, '--format', 'sarif');
    assert.equal(r.status, 0, r.stderr);
    const log = JSON.parse(r.stdout) as {
      runs: {
        tool: { driver: { rules: { id: string }[] } };
        results: {
          ruleId: string;
          ruleIndex: number;
          level: string;
          locations: {
            physicalLocation: { region: { byteOffset?: number; startLine?: number } };
          }[];
        }[];
      }[];
    };
    assertValidSarif(log);
    const run = log.runs[0]!;
    assert.equal(run.tool.driver.rules.length, RULES.length);
    assert.equal(run.results.length, 5);
    for (const res of run.results) {
      assert.equal(run.tool.driver.rules[res.ruleIndex]?.id, res.ruleId);
      assert.equal(typeof res.locations[0]?.physicalLocation.region.byteOffset, 'number');
    }
    // The validator is not vacuous: a level SARIF does not have is refused.
    const broken = structuredClone(log);
    broken.runs[0]!.results[0]!.level = 'fatal';
    assert.equal(validateSarif(broken), false);

    const file = join(dir, 'out.sarif');
    const d = await cli('doctor', faultyDts, '--sarif', file);
    assert.equal(d.status, 0, d.stderr);
    assert.match(d.stdout, /24 functions/);
    const fromDts = JSON.parse(readFileSync(file, 'utf8')) as typeof log;
    assertValidSarif(fromDts);
    for (const res of fromDts.runs[0]!.results)
      assert.equal(typeof res.locations[0]?.physicalLocation.region.startLine, 'number');
    const clean = await cli('doctor', '--format', 'sarif');
    assertValidSarif(JSON.parse(clean.stdout));
  });

  it('--json is the per-function array as before; --json with --format is a usage error', async () => {
    const r = await cli('doctor', faulty, '--json');
    assert.equal(r.status, 0, r.stderr);
    const entries = JSON.parse(r.stdout) as { address: string }[];
    assert.equal(entries.length, 24);
    assert.equal((await cli('doctor', '--json', '--format', 'json')).status, 2);
  });

  it('--explain RULE: the rule, its sources and its example run for real', async () => {
    const r = await cli('doctor', '--explain', 'nv009');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^NV009 link-speed \(error; kernels 5\.0–5\.12; fixable: some\)\n/);
    assert.match(r.stdout, /Sources:\n {2}- skiboot hdata\/spira\.c add_npu/);
    assert.match(
      r.stdout,
      /Example: vfio-nvlink2 dt generate --omit ibm,nvlink-speed@0001:00:01\.1 -o example\.dtb && vfio-nvlink2 dt doctor example\.dtb\n {2}example\.dtb: offset 0x[0-9a-f]+: .* error NV009 /,
    );
    const unknown = await cli('doctor', '--explain', 'NV999');
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /no rule 'NV999'; the rules are:\nNV001 {2}dangling-phandle/);
  });

  it('--live DIR: a directory tree through dtc -I fs, findings at the property files', async () => {
    // With linux,pci-domain on every PHB: a directory's order (readdir) is not the blob's, and
    // without it PCI domains follow the PHBs' order.
    const tree = generateWitherspoon({ ...FAULTS, linuxPciDomain: true });
    const live = join(dir, 'device-tree');
    const blob = join(dir, 'domains.dtb');
    writeTreeDir(tree, live);
    writeFileSync(blob, serializeFdt(tree));
    const r = await cli('doctor', '--live', live, '--format', 'json');
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { findings: JsonFinding[]; functions: unknown[] };
    const fromBlob = JSON.parse(
      (await cli('doctor', blob, '--format', 'json')).stdout,
    ) as typeof report;
    // IOMMU group numbers follow the order the kernel meets the PHBs (npu-dma.c creates the
    // compound groups in probe order), and a directory tree lists nodes in another order than
    // the blob: the same groups, told by their members, not their numbers.
    type Fn = { address: string; iommuGroup: number | null };
    const grouped = (fns: unknown[]) => {
      const members = new Map<number | null, string[]>();
      for (const f of fns as Fn[])
        members.set(f.iommuGroup, [...(members.get(f.iommuGroup) ?? []), f.address]);
      return (fns as Fn[]).map((f) => ({
        ...f,
        iommuGroup: f.iommuGroup === null ? null : members.get(f.iommuGroup)?.join(' '),
      }));
    };
    assert.deepEqual(grouped(report.functions), grouped(fromBlob.functions));
    const key = (f: JsonFinding) => `${f.ruleId} ${f.node} ${f.property}`;
    assert.deepEqual(report.findings.map(key).sort(), fromBlob.findings.map(key).sort());
    const speed = report.findings.find((f) => f.ruleId === 'NV009')!;
    // The property is missing: its node's directory (the property file would not exist).
    assert.equal(speed.location?.file, `${live}/pciex@6230200000000/unknown-bridge@1,1`);
    const atsd = report.findings.find((f) => f.ruleId === 'NV010')!;
    assert.equal(readFileSync(atsd.location!.file).length, 4 * 8);
    const missing = await cli('doctor', '--live', join(dir, 'nope'));
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /--live: \S+\/nope: no such directory\n$/);
    const file = await cli('doctor', '--live', join(dir, 'faulty.dtb'));
    assert.equal(file.status, 1);
    assert.match(file.stderr, /--live: \S+\/faulty\.dtb: no such directory\n$/);
  });
});

describe('dt diff', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dt-diff-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the same tree as DTB, DTS and directory: no difference, exit 0', async () => {
    const fdt = generateWitherspoon();
    const dtb = join(dir, 'a.dtb');
    const dts = join(dir, 'a.dts');
    const tree = join(dir, 'a-dir');
    writeFileSync(dtb, serializeFdt(fdt));
    writeFileSync(dts, toDts(fdt));
    writeTreeDir(fdt, tree);
    for (const [a, b] of [
      [dtb, dts],
      [dtb, tree],
    ] as const) {
      const r = await cli('diff', a, b);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, '');
    }
  });

  it('renumbered phandles are no difference; a reference to another node is', async () => {
    const a = generateWitherspoon();
    const b = generateWitherspoon();
    // b: every phandle + 0x100, and every reference with it.
    const refs = [
      'ibm,gpu',
      'ibm,npu',
      'ibm,nvlink',
      'memory-region',
      'ibm,npcq',
      'ibm,nvlink-peers',
      'phandle',
    ];
    for (const n of b.root.walk()) {
      for (const p of n.properties) {
        if (!refs.includes(p.name)) continue;
        const v = new DataView(p.value.buffer, p.value.byteOffset, p.value.byteLength);
        p.value = cells.u32(
          ...Array.from({ length: p.value.length / 4 }, (_, i) => v.getUint32(i * 4) + 0x100),
        );
      }
    }
    const fa = join(dir, 'r-a.dtb');
    const fb = join(dir, 'r-b.dtb');
    writeFileSync(fa, serializeFdt(a));
    writeFileSync(fb, serializeFdt(b));
    assert.equal((await cli('diff', fa, fb)).status, 0);
    const bridge = b.findNode('/pciex@6030200000000/unknown-bridge@0,1')!;
    const other = b.findNode('/memory@3c000000000')!.getProperty('phandle')!.value;
    bridge.setProperty('memory-region', other);
    bridge.removeProperty('ibm,nvlink-speed');
    const gone = b.findNode('/memory@3a000000000')!;
    const dangling = `0x${Buffer.from(gone.getProperty('phandle')!.value).readUInt32BE(0).toString(16)}`;
    b.root.removeChild(gone);
    writeFileSync(fb, serializeFdt(b));
    const r = await cli('diff', fa, fb);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(
      r.stdout,
      [
        '- /memory@3a000000000',
        '~ /pciex@6030200000000/unknown-bridge@0,1: memory-region: <&{/memory@3e000000000}> → <&{/memory@3c000000000}>',
        '- /pciex@6030200000000/unknown-bridge@0,1: ibm,nvlink-speed = <0x8>',
        `~ /pciex@6030200000000/unknown-bridge@2: memory-region: <&{/memory@3a000000000}> → <${dangling} (no such phandle)>`,
        `~ /pciex@6030200000000/unknown-bridge@2,1: memory-region: <&{/memory@3a000000000}> → <${dangling} (no such phandle)>`,
        '',
      ].join('\n'),
    );
    const json = JSON.parse((await cli('diff', fa, fb, '--json')).stdout) as { kind: string }[];
    assert.equal(json.length, 5);
    const missing = await cli('diff', fa, join(dir, 'nope.dtb'));
    assert.equal(missing.status, 2);
  });
});
