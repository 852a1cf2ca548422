/**
 * The commands that read a user's tree, as processes, on the built-in Witherspoon with a chain
 * of 100,000 nested nodes (and a PHB with a GPU 64 levels deep) appended to its root, packed
 * token by token: `dt show` prints all of it, `dt doctor`, `inspect --dt` and `serve --dt`
 * see what Linux would (drivers/of/fdt.c unflatten_dt_nodes skips nodes 64 or more levels
 * deep, with one warning): the built-in functions, and one warning line. A DTS deeper than
 * dtc's parser allows is one line of error, and so is a VERSION whose JSON nests as deep.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { inspectInProcess } from '../src/cli/inspect.ts';
import { DTS_MAX_INDENT, FDT_MAX_DEPTH, serializeFdt, toDts } from '../src/fdt/index.ts';
import { probeHost } from '../src/machine/function-status.ts';
import { formatDoctorReport, runDoctorOnHost } from '../src/nvlink2/doctor.ts';
import { defaultPlatformTree } from '../src/platform/default-platform.ts';
import { buildHost } from '../src/platform/host.ts';
import { Command, VfioUserClient } from '../src/vfio-user/index.ts';
import { runCli } from './support/cli.ts';
import { withDeepChain } from './support/fdt/deep.ts';
import { hasDtc } from './support/fdt/dtc.ts';
import { FLAG_ERROR, FLAG_REPLY, frame, versionPayload } from './support/frames.ts';
import { connectWhenFree, GPU, startServe } from './support/serve-process.ts';

const DEPTH = 100_000;
const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-deep-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const DEEP = join(dir, 'deep.dtb');
writeFileSync(
  DEEP,
  withDeepChain(serializeFdt(defaultPlatformTree()), { depth: DEPTH, phbAt: FDT_MAX_DEPTH }),
);
/** Nodes Linux skips: the chain from depth 64 on, the PHB and its GPU. */
const SKIPPED = DEPTH - (FDT_MAX_DEPTH - 1) + 2;
const WARNING = new RegExp(
  `${DEEP}: skipped ${SKIPPED} nodes nested 64 or more levels deep \\(the first at offset 0x[0-9a-f]+\\), as Linux's unflatten_dt_nodes does\\n`,
);

function cli(...args: string[]) {
  return runCli(args);
}

/** The built-in platform's functions in devices.json's / doctor's vocabulary. */
const BUILT_IN_STATUS = probeHost(buildHost(defaultPlatformTree()));

describe('a tree 100,000 levels deep, across processes', () => {
  it('dt show: the whole tree as DTS, the chain after the built-in nodes', () => {
    const r = cli('dt', 'show', DEEP);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    const tabs = (d: number) => '\t'.repeat(Math.min(d, DTS_MAX_INDENT));
    const phbAt = FDT_MAX_DEPTH;
    const chain: string[] = [''];
    for (let d = 1; d <= DEPTH; d++) {
      if (d === phbAt) {
        const t = tabs(d);
        const u = tabs(d + 1);
        chain.push(
          `${t}pciex@42 {`,
          `${u}device_type = "pciex";`,
          `${u}linux,pci-domain = <0x42>;`,
          '',
          `${u}gpu@0 {`,
          `${tabs(d + 2)}reg = <0x0 0x0 0x0 0x0 0x0>;`,
          `${tabs(d + 2)}vendor-id = <0x10de>;`,
          `${tabs(d + 2)}device-id = <0x1db1>;`,
          `${tabs(d + 2)}class-code = <0x30200>;`,
          `${u}};`,
          `${t}};`,
          '',
        );
      }
      chain.push(`${tabs(d)}c {`);
    }
    for (let d = DEPTH; d >= 1; d--) chain.push(`${tabs(d)}};`);
    const builtIn = toDts(defaultPlatformTree());
    assert.ok(builtIn.endsWith('\n};\n'));
    assert.equal(r.stdout, `${builtIn.slice(0, -3)}${chain.join('\n')}\n};\n`);
  });

  it('dt doctor: the built-in report, and one warning line', () => {
    const deep = cli('dt', 'doctor', DEEP);
    assert.equal(deep.status, 0, deep.stderr);
    const builtIn = formatDoctorReport(runDoctorOnHost(buildHost(defaultPlatformTree())));
    assert.equal(deep.stdout, `${builtIn}\n`);
    assert.match(deep.stderr, new RegExp(`^dt doctor: warning: ${WARNING.source}$`));
  });

  it('inspect --dt: every GPU and bridge as with the built-in tree, and one warning line', () => {
    const deep = cli('inspect', '--dt', DEEP, '--json');
    assert.equal(deep.status, 0, deep.stderr);
    const builtIn = inspectInProcess(
      { file: undefined, address: undefined, hex: false, json: true },
      () => {},
    );
    assert.deepEqual(JSON.parse(deep.stdout), JSON.parse(JSON.stringify(builtIn)));
    assert.match(deep.stderr, new RegExp(`^kernel: warn: OF: fdt: ${WARNING.source}$`));
  });

  it('serve --dt: starts, lists the built-in functions with their sockets, stops', async () => {
    const serve = await startServe(['--dt', DEEP]);
    try {
      const devices = serve.devices();
      assert.deepEqual(
        devices.map(({ socket: _, ...status }) => status),
        BUILT_IN_STATUS,
      );
      assert.equal(devices.filter((d) => d.socket !== undefined).length, 18);
      assert.equal(serve.stderr().match(/skipped \d+ nodes/g)?.length, 1);
      assert.match(serve.stderr(), new RegExp(`serve: kernel: warn: OF: fdt: ${WARNING.source}`));

      // A VERSION whose JSON nests 100,000 levels: EINVAL, and the socket serves the next client.
      const raw = await VfioUserClient.connect(serve.socket(GPU), { negotiate: false });
      const deep = `{"capabilities":{"max_msg_fds":${'['.repeat(DEPTH)}${']'.repeat(DEPTH)}}}`;
      raw.sendRaw(frame(0x7001, Command.VERSION, versionPayload(0, 0, deep)));
      const reply = await raw.expectReply(0x7001, Command.VERSION);
      assert.equal(reply.header.flags, FLAG_REPLY | FLAG_ERROR);
      assert.equal(reply.header.errno, 22);
      raw.close();
      (await connectWhenFree(serve, GPU)).close();
      assert.doesNotMatch(serve.stderr(), /RangeError|internal error/);
    } finally {
      assert.equal(await serve.stop(), 0);
    }
  });

  it('a DTS nested deeper than dtc parses: one line of error, exit 1', {
    skip: hasDtc() ? false : 'dtc is not installed',
  }, () => {
    const file = join(dir, 'deep.dts');
    const depth = 10_000;
    writeFileSync(file, `/dts-v1/;\n/ {\n${'c {\n'.repeat(depth)}${'};\n'.repeat(depth + 1)}`);
    const r = cli('dt', 'show', file);
    assert.equal(r.status, 1, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`^vfio-nvlink2: dt show: DT_PARSE: ${file}: dtc rejected it: .+\\n$`),
    );
  });
});
