/**
 * The doctor's fixes, applied with dtc's own tools (device-tree-compiler): for every fault
 * `dt generate` can inject, the fdtput script of all findings (--fix-script) runs on the blob,
 * and separately the one overlay of all fixes (--fix-dtso) is compiled by dtc and applied by
 * fdtoverlay; the doctor then reads the result back from the file and reports nothing but the
 * findings that carry no fix; a tree whose every finding has a fix comes back as the clean tree
 * (dt diff's comparison). For the first fault of each rule, the first finding's own overlay,
 * applied alone, makes that finding go away.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { diffTrees } from '../src/fdt/diff.ts';
import { parseFdt, serializeFdt } from '../src/fdt/index.ts';
import { overlayText } from '../src/nvlink2/lint/fix-render.ts';
import { lintTree } from '../src/nvlink2/lint/lint.ts';
import { combinedOverlay, combinedScript } from '../src/nvlink2/lint/report-format.ts';
import { PHANDLE_PROPERTIES } from '../src/nvlink2/lint/tree-view.ts';
import type { Finding } from '../src/nvlink2/lint/types.ts';
import { generateWitherspoon } from '../src/platform/witherspoon/index.ts';
import { hasDtc } from './support/fdt/dtc.ts';
import { generatorFaults } from './support/nvlink2/lint/faults.ts';

const tools = ['fdtput', 'fdtoverlay'].every((t) => spawnSync('which', [t]).status === 0);
const skip =
  hasDtc() && tools ? false : 'device-tree-compiler (dtc, fdtput, fdtoverlay) is not installed';

const clean = generateWitherspoon();
const diffOptions = { phandleProperties: new Set(PHANDLE_PROPERTIES.map((p) => p.name)) };

const key = (f: Finding) => `${f.ruleId} ${f.node} ${f.property ?? ''}`;

interface Ran {
  readonly status: number | null;
  readonly stderr: string;
}

const quote = (a: string) => `'${a.replaceAll("'", "'\\''")}'`;

/**
 * Runs each command in turn, in one shell (one process spawned from here per fault, not one
 * per tool: a fork of this process, grown large with the linter's models, costs more system
 * time than the tools), and gives each one's exit status and stderr, captured apart in `dir`.
 */
function runAll(dir: string, commands: Record<string, readonly string[]>): Record<string, Ran> {
  const names = Object.keys(commands);
  const file = (name: string, what: string) => join(dir, `${name}.${what}`);
  const script = names.map((n) => {
    const cmd = commands[n]!.map(quote).join(' ');
    return `${cmd} 2>${quote(file(n, 'err'))}; echo $? >${quote(file(n, 'status'))}`;
  });
  const r = spawnSync('sh', ['-c', script.join('\n')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return Object.fromEntries(
    names.map((n) => [
      n,
      {
        status: Number(readFileSync(file(n, 'status'), 'utf8')),
        stderr: readFileSync(file(n, 'err'), 'utf8'),
      },
    ]),
  );
}

/**
 * dtc's complaints about an overlay, without those about a fragment checked out of its place in
 * the tree (reg and ranges sizes against default #address-cells, a labelled empty node's unit
 * address).
 */
function overlayWarnings(stderr: string): string[] {
  const outOfPlace =
    /Warning \((reg_format|ranges_format|unit_address_vs_reg|avoid_default_addr_size)\): \/fragment@\d+\/__overlay__|Warning \([a-z0-9_]+\): Failed prerequisite '(reg_format|avoid_default_addr_size)'/;
  return stderr.split('\n').filter((l) => l.trim() && !outOfPlace.test(l));
}

/**
 * The findings of the blob in `file`. The linter replays five kernels per tree (its CPU is most
 * of this file's), and many faults' fixes make byte-identical blobs (the same tree fixed by
 * fdtput or fdtoverlay, or two faults whose fixes meet): a blob seen before gets the findings it
 * got then (the linter is a function of the bytes; `source` is not in a key).
 */
const linted = new Map<string, string[]>();
function lintFile(file: string): string[] {
  const bytes = readFileSync(file);
  const digest = createHash('sha256').update(bytes).digest('hex');
  let keys = linted.get(digest);
  if (keys === undefined) {
    keys = lintTree(parseFdt(bytes, file)).findings.map(key).sort();
    linted.set(digest, keys);
  }
  return [...keys];
}

describe('fixes applied with fdtput and fdtoverlay leave only what has no fix', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dt-doctor-fixes-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const faults = generatorFaults();
  const unfixed: string[] = [];
  const rulesSeen = new Set<string>();
  const rulesTried = new Set<string>();

  for (const fault of faults) {
    it(fault.flags, () => {
      const faulty = join(dir, 'faulty.dtb');
      writeFileSync(faulty, serializeFdt(generateWitherspoon(fault.options)));
      const report = lintTree(parseFdt(readFileSync(faulty), faulty));
      const unfixable = report.findings
        .filter((f) => !f.fix)
        .map(key)
        .sort();
      const withFix = report.findings.filter((f) => f.fix);
      if (withFix.length < report.findings.length) unfixed.push(fault.flags);
      if (withFix.length === 0) return;

      // The fdtput script of every finding, in order; one overlay of every fix, compiled by
      // dtc, applied by fdtoverlay; and, once per rule, the first finding's own overlay, alone.
      const viaPut = join(dir, 'fdtput.dtb');
      const script = join(dir, 'fix.sh');
      const dtso = join(dir, 'fix.dtso');
      const dtbo = join(dir, 'fix.dtbo');
      const viaOverlay = join(dir, 'overlay.dtb');
      copyFileSync(faulty, viaPut);
      writeFileSync(script, combinedScript(report, viaPut)!);
      writeFileSync(dtso, combinedOverlay(report)!);
      const first = withFix[0]!;
      // Once per rule: the first fault of it to get here (rulesSeen once it passed).
      const alone = !rulesTried.has(first.ruleId);
      const firstDtso = join(dir, 'first.dtso');
      const firstDtbo = join(dir, 'first.dtbo');
      const viaFirst = join(dir, 'first.dtb');
      if (alone) {
        rulesTried.add(first.ruleId);
        writeFileSync(firstDtso, overlayText([{ fix: first.fix!, comment: key(first) }]));
      }
      const ran = runAll(dir, {
        put: ['sh', script],
        dtc: ['dtc', '-I', 'dts', '-O', 'dtb', '-o', dtbo, dtso],
        overlay: ['fdtoverlay', '-i', faulty, '-o', viaOverlay, dtbo],
        ...(alone
          ? {
              firstDtc: ['dtc', '-q', '-I', 'dts', '-O', 'dtb', '-o', firstDtbo, firstDtso],
              firstOverlay: ['fdtoverlay', '-i', faulty, '-o', viaFirst, firstDtbo],
            }
          : {}),
      });

      const r = ran.put!;
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(lintFile(viaPut), unfixable, 'after fdtput');

      const c = ran.dtc!;
      assert.equal(c.status, 0, c.stderr);
      assert.deepEqual(overlayWarnings(c.stderr), []);
      const o = ran.overlay!;
      assert.equal(o.status, 0, o.stderr);
      assert.deepEqual(lintFile(viaOverlay), unfixable, 'after fdtoverlay');
      // Fixed in full: the values skiboot wrote, not just a quiet linter (dt diff's comparison,
      // phandles by the paths they resolve to).
      if (unfixable.length === 0) {
        for (const fixed of [viaPut, viaOverlay])
          assert.deepEqual(diffTrees(clean, parseFdt(readFileSync(fixed), fixed), diffOptions), []);
      }

      // The first finding's own overlay, alone (once per rule).
      if (!alone) return;
      assert.equal(ran.firstDtc!.status, 0);
      assert.equal(ran.firstOverlay!.status, 0);
      assert.ok(!lintFile(viaFirst).includes(key(first)), `${key(first)} still there`);
      rulesSeen.add(first.ruleId);
    });
  }

  it('all but 7 faults are fixed in full; every fixable rule was applied alone', (t) => {
    t.diagnostic(`${faults.length - unfixed.length} of ${faults.length} faults fixed in full`);
    // Nothing in the tree says the value (the PHY's SCOM address and lanes come from the
    // firmware's HDAT, a link speed from the platform) or the fault is the hardware (a P100).
    assert.deepEqual(unfixed, [
      '--omit ibm,npu-phy@/xscom@603fc00000000/npu@5011000/link@1',
      '--omit ibm,npu-lane-mask@/xscom@603fc00000000/npu@5011000/link@1',
      '--p100 plain',
      '--p100 nvlink1',
      '--link-speed none',
      '--link-speed 5',
      '--link-speed 0xff',
    ]);
    assert.deepEqual([...rulesSeen].sort(), [
      'NV001',
      'NV002',
      'NV004',
      'NV006',
      'NV007',
      'NV009',
      'NV010',
      'NV011',
      'NV014',
      'NV015',
    ]);
  });
});
