/**
 * The capability decoder against lspci: the emulated GPU's config space gives the lines lspci
 * 3.9.0 printed for it (written down here from `lspci -vvv -F`), and, when lspci is installed
 * (Debian's pciutils), random register values in every capability give exactly lspci's lines —
 * many devices in one `lspci -vvv -F DUMP` run, the dump written by `lspciHexLines`, so
 * the `-xxx` format is checked by lspci's own reader too.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { hexDigits } from '../text/index.ts';
import { commandStatusLines, decodePciCapabilities, lspciHexLines } from './pci-capabilities.ts';

/** Sets little-endian values at offsets (built independently of the decoder). */
function put(config: Uint8Array, at: number, value: number, bytes: number): void {
  for (let i = 0; i < bytes; i++) config[at + i] = (value >>> (8 * i)) & 0xff;
}

/** The emulated GPU's first 256 config bytes (`inspect --dt 0002:01:00.0 --hex`). */
const GPU_CONFIG = Buffer.from(
  [
    'de10b11d00001000a100020300000000',
    '000000000c000000000000000c000000',
    '000000000000000000000000de101212',
    '00000000600000000000000000010000',
    '00000000000000000000000000000000',
    '00000000000000000000000000000000',
    '01680300080000000578800000000000',
    '000000000000000010b4020021800010',
    '10280000030100000000030100000000',
    '00000000000000000000000000000000',
    '00000000000000000300000000000000',
    '0000000009c814000000000000000000',
    '0000000000000000110005000000b900',
    '0000ba00000000000000000000000000',
    '00000000000000000000000000000000',
    '00000000000000000000000000000000',
  ].join(''),
  'hex',
);

describe('decodePciCapabilities', () => {
  it("prints an emulated GPU's capabilities as lspci 3.9.0 does", () => {
    const lines = decodePciCapabilities(GPU_CONFIG).flatMap((c) => c.lines);
    assert.deepEqual(lines, [
      '\tCapabilities: [60] Power Management version 3',
      '\t\tFlags: PMEClk- DSI- D1- D2- AuxCurrent=0mA PME(D0-,D1-,D2-,D3hot-,D3cold-)',
      '\t\tStatus: D0 NoSoftRst+ PME-Enable- DSel=0 DScale=0 PME-',
      '\tCapabilities: [68] MSI: Enable- Count=1/1 Maskable- 64bit+',
      '\t\tAddress: 0000000000000000  Data: 0000',
      '\tCapabilities: [78] Express (v2) Endpoint, MSI 00',
      '\t\tDevCap:\tMaxPayload 256 bytes, PhantFunc 0, Latency L0s <64ns, L1 <1us',
      '\t\t\tExtTag+ AttnBtn- AttnInd- PwrInd- RBE+ FLReset+ SlotPowerLimit 0W',
      '\t\tDevCtl:\tCorrErr- NonFatalErr- FatalErr- UnsupReq-',
      '\t\t\tRlxdOrd+ ExtTag- PhantFunc- AuxPwr- NoSnoop+ FLReset-',
      '\t\t\tMaxPayload 128 bytes, MaxReadReq 512 bytes',
      '\t\tDevSta:\tCorrErr- NonFatalErr- FatalErr- UnsupReq- AuxPwr- TransPend-',
      '\t\tLnkCap:\tPort #0, Speed 8GT/s, Width x16, ASPM not supported',
      '\t\t\tClockPM- Surprise- LLActRep- BwNot- ASPMOptComp-',
      '\t\tLnkCtl:\tASPM Disabled; RCB 64 bytes, Disabled- CommClk-',
      '\t\t\tExtSynch- ClockPM- AutWidDis- BWInt- AutBWInt-',
      '\t\tLnkSta:\tSpeed 8GT/s, Width x16',
      '\t\t\tTrErr- Train- SlotClk- DLActive- BWMgmt- ABWMgmt-',
      '\tCapabilities: [b4] Vendor Specific Information: Len=14 <?>',
      '\tCapabilities: [c8] MSI-X: Enable- Count=6 Masked-',
      '\t\tVector table: BAR=0 offset=00b90000',
      '\t\tPBA: BAR=0 offset=00ba0000',
    ]);
    const pcie = decodePciCapabilities(GPU_CONFIG).find((c) => c.id === 0x10);
    assert.deepEqual(pcie?.registers, {
      flags: '0x0002',
      devCap: '0x10008021',
      devCtl: '0x2810',
      devSta: '0x0000',
      lnkCap: '0x00000103',
      lnkCtl: '0x0000',
      lnkSta: '0x0103',
    });
  });

  it('stops at a looping or broken chain, and without the Capabilities List bit', () => {
    const looped = new Uint8Array(256);
    put(looped, 0x06, 0x10, 2);
    looped[0x34] = 0x40;
    put(looped, 0x40, 0x4001, 2); // PM pointing at itself
    assert.deepEqual(
      decodePciCapabilities(looped).map((c) => c.offset),
      [0x40],
    );
    looped[0x06] = 0;
    assert.deepEqual(decodePciCapabilities(looped), []);
  });

  it('dumps as lspci -xxx: 16 bytes a line, 256 bytes', () => {
    const lines = lspciHexLines(GPU_CONFIG, false);
    assert.equal(lines.length, 16);
    assert.equal(lines[0], '00: de 10 b1 1d 00 00 10 00 a1 00 02 03 00 00 00 00');
    assert.equal(lines[15]?.slice(0, 4), 'f0: ');
  });
});

const hasLspci = spawnSync('lspci', ['--version']).status === 0;

/** A config header with PM, MSI, PCIe, MSI-X and a vendor capability, each register random. */
const configArb = fc
  .record({
    command: fc.integer({ min: 0, max: 0xffff }),
    status: fc.integer({ min: 0, max: 0xffff }),
    pm: fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff })),
    pmBridge: fc.integer({ min: 0, max: 0xff }),
    msi: fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 6, maxLength: 6 }),
    msiFlags: fc.integer({ min: 0, max: 0x1ff }),
    express: fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 15, maxLength: 15 }),
    expressFlags: fc.integer({ min: 0, max: 0xffff }),
    msix: fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 3, maxLength: 3 }),
    vendorLength: fc.integer({ min: 0, max: 0xff }),
  })
  .map((r) => {
    const c = new Uint8Array(256);
    put(c, 0x00, 0x1db110de, 4);
    put(c, 0x04, r.command, 2);
    put(c, 0x06, r.status | 0x10, 2);
    put(c, 0x08, 0x030200a1, 4);
    c[0x34] = 0x40;
    put(c, 0x40, 0x4801, 2);
    put(c, 0x42, r.pm[0], 2);
    put(c, 0x44, r.pm[1], 2);
    c[0x46] = r.pmBridge;
    for (const [i, v] of r.msi.entries()) put(c, 0x48 + 4 * i, v, 4);
    put(c, 0x48, 0x6005, 2);
    put(c, 0x4a, r.msiFlags, 2);
    for (const [i, v] of r.express.entries()) put(c, 0x60 + 4 * i, v, 4);
    put(c, 0x60, 0xa010, 2);
    put(c, 0x62, r.expressFlags, 2);
    for (const [i, v] of r.msix.entries()) put(c, 0xa0 + 4 * i, v, 4);
    put(c, 0xa0, 0xb011, 2);
    put(c, 0xb0, 0x0009, 2);
    c[0xb2] = r.vendorLength;
    return c;
  });

/** lspci's text per device (`bb:00.0`): its Control/Status lines and each capability's block. */
function lspciBlocks(text: string): Map<string, { head: string[]; caps: string[][] }> {
  const out = new Map<string, { head: string[]; caps: string[][] }>();
  for (const device of text.split('\n\n')) {
    const [first = '', ...lines] = device.split('\n');
    const head = lines.filter((l) => l.startsWith('\tControl:') || l.startsWith('\tStatus:'));
    const caps: string[][] = [];
    for (const line of lines) {
      if (line.startsWith('\tCapabilities: ')) caps.push([line]);
      else if (line.startsWith('\t\t')) caps[caps.length - 1]?.push(line);
    }
    out.set(first.slice(0, 7), { head, caps });
  }
  return out;
}

/** The address of the i-th random device in the dump (`bb:dd.0`). */
const deviceAddress = (i: number): string => `${hexDigits(i >> 5, 2)}:${hexDigits(i & 31, 2)}.0`;

const skip = hasLspci ? false : 'lspci not installed (apt-get install pciutils)';

describe('decodePciCapabilities against lspci -vvv', { skip }, () => {
  it("gives lspci's lines for random registers (PCIe: up to Link Status, where lspci goes on)", () => {
    // Random configs (fast-check's generators, a seed per run) in one lspci run: shrinking
    // would spawn lspci thousands of times, so a failure names the seed and the device instead.
    const seed = Date.now() % 2 ** 31;
    const configs = fc.sample(configArb, { numRuns: 384, seed });
    const dir = mkdtempSync(join(tmpdir(), 'vn-lspci-'));
    try {
      const dump = configs.flatMap((c, i) => [
        `${deviceAddress(i)} random`,
        ...lspciHexLines(c, false),
        '',
      ]);
      writeFileSync(join(dir, 'dump'), dump.join('\n'));
      const r = spawnSync('lspci', ['-vvv', '-F', join(dir, 'dump')], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const blocks = lspciBlocks(r.stdout);
      configs.forEach((c, i) => {
        const where = `seed ${seed}, device ${deviceAddress(i)}`;
        const theirs = blocks.get(deviceAddress(i));
        assert.ok(theirs, `${where}: lspci did not list it`);
        const command = (c[4] ?? 0) | ((c[5] ?? 0) << 8);
        const status = (c[6] ?? 0) | ((c[7] ?? 0) << 8);
        assert.deepEqual(commandStatusLines(command, status), theirs.head, where);
        const ours = decodePciCapabilities(c);
        assert.equal(ours.length, theirs.caps.length, where);
        ours.forEach((cap, k) => {
          const lspci = theirs.caps[k] ?? [];
          const compared = cap.id === 0x10 ? lspci.slice(0, cap.lines.length) : lspci;
          assert.deepEqual(cap.lines, compared, `${where}, capability ${cap.name}`);
        });
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
