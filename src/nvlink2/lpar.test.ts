/**
 * The NPU firmware tables as the subdriver drives them: boot-time host mappings, attaching all
 * six GPUs of the built-in platform to guests, releasing them, and a full XTS BDF table.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { fixture } from '../../test/support/nvlink2/fixture.ts';
import {
  buildHost,
  defaultPlatformTree,
  describeNpus,
  Npu2Firmware,
  type Npu2Snapshot,
  OpalRc,
} from '../platform/index.ts';
import { attachLpid } from './hooks.ts';
import { pnvNpu2MapHost } from './npu-lpar.ts';

/** The built-in platform's GPUs: a socket's GPUs sit on buses 1, 2, 3 (distinct BDFs). */
const GPUS = [
  '0002:01:00.0',
  '0003:02:00.0',
  '0004:03:00.0',
  '0005:01:00.0',
  '0006:02:00.0',
  '0007:03:00.0',
];

type Row = [bdf: number, lpid: number, valid: boolean];
const rows = (s: Npu2Snapshot | undefined): Row[] =>
  (s?.bdfMap ?? []).map((e) => [e.bdf, e.lpid, e.valid]);
const pids = (s: Npu2Snapshot | undefined) =>
  (s?.pidMap ?? []).map((p) => [p.index, p.msr.hv, p.refs]);
const atsdLpids = (s: Npu2Snapshot | undefined) =>
  (s?.atsd ?? []).map((a) => (a.msrHv ? `${a.lpid}h` : `${a.lpid}`));

describe('LPID tables: all 6 GPUs of the built-in platform', () => {
  const f = fixture();
  after(() => f.done());

  it('boot maps every GPU to the host: LPID 0, MSR DR|PR|HV, first link’s ATSD bound with HV', () => {
    const results = pnvNpu2MapHost(f.ctx);
    assert.deepEqual([...results.values()], [0, 0, 0, 0, 0, 0]);
    for (const npu of f.ctx.firmware.snapshot()) {
      assert.deepEqual(rows(npu), [
        [0x100, 0, true],
        [0x200, 0, true],
        [0x300, 0, true],
      ]);
      assert.deepEqual(pids(npu), [
        [0, true, 1],
        [1, true, 1],
        [2, true, 1],
      ]);
      assert.deepEqual(atsdLpids(npu), ['0h', '0', '0h', '0', '0h', '0', '0', '0']);
    }
  });

  const devices = GPUS.map((name) => f.open(name));

  it('attaching each GPU to its own guest', () => {
    f.ring.clear();
    devices.forEach((d, i) => {
      d.attachKvm(11 + i);
    });
    const [npu0, npu8] = f.ctx.firmware.snapshot();
    assert.deepEqual(rows(npu0), [
      [0x100, 11, true],
      [0x200, 12, true],
      [0x300, 13, true],
    ]);
    assert.deepEqual(rows(npu8), [
      [0x100, 14, true],
      [0x200, 15, true],
      [0x300, 16, true],
    ]);
    assert.deepEqual(pids(npu0), [
      [0, false, 1],
      [1, false, 1],
      [2, false, 1],
    ]);
    assert.deepEqual(atsdLpids(npu0), ['11', '0', '12', '0', '13', '0', '0', '0']);
    assert.deepEqual(atsdLpids(npu8), ['14', '0', '15', '0', '16', '0', '0', '0']);
    assert.equal(
      f.ring.lines('nvlink2_lpid_map')[0]?.split('nvlink2_lpid_map: ')[1],
      '0002:01:00.0: phb 0 bdf 100 lpid 11 msr 4010 ret=0',
    );
  });

  it('releasing them: contexts destroyed, LPID 0 (entries stay, the host owns them)', () => {
    f.ring.clear();
    for (const d of devices) d.close();
    for (const npu of f.ctx.firmware.snapshot()) {
      assert.deepEqual(rows(npu), [
        [0x100, 0, false],
        [0x200, 0, false],
        [0x300, 0, false],
      ]);
      assert.deepEqual(pids(npu), []);
      assert.deepEqual(atsdLpids(npu), ['0h', '0', '0h', '0', '0h', '0', '0', '0']);
    }
    assert.equal(f.ring.lines('nvlink2_lpid_unmap').length, 6);
    assert.match(f.ring.lines('nvlink2_lpid_unmap')[0] ?? '', /0002:01:00.0: phb 0 bdf 100 ret=0$/);
  });
});

describe('LPID tables on the built-in tree', () => {
  it('each GPU of a socket gets its own XTS entry (skiboot keys by BDF only)', () => {
    const f = fixture();
    try {
      pnvNpu2MapHost(f.ctx);
      GPUS.forEach((name, i) => {
        f.open(name).attachKvm(11 + i);
      });
      const [npu0] = f.ctx.firmware.snapshot();
      assert.deepEqual(rows(npu0), [
        [0x100, 11, true],
        [0x200, 12, true],
        [0x300, 13, true],
      ]);
    } finally {
      f.done();
    }
  });
});

describe('a full XTS BDF table', () => {
  it('the 17th BDF: MAP_LPAR returns OPAL_RESOURCE, the KVM notifier logs NOTIFY_BAD, nothing throws', () => {
    const tree = defaultPlatformTree();
    const host = buildHost(tree);
    // chip 0's NPU with 16 more (synthetic) links to BDFs 0x8000.., filled first
    const npus = describeNpus(host).map((d) =>
      d.phbId === 0n
        ? {
            ...d,
            links: [
              ...d.links,
              ...Array.from({ length: 16 }, (_, i) => ({
                linkIndex: 8 + i,
                gpuBdf: 0x8000 + i,
                gpuName: undefined,
                bridgeName: `synthetic${i}`,
              })),
            ],
          }
        : d,
    );
    const f = fixture({ firmware: new Npu2Firmware(npus) }, tree);
    try {
      for (let i = 0; i < 16; i++)
        assert.equal(f.ctx.firmware.mapLpar(0n, 0x8000 + i, 100 + i, 0n), OpalRc.SUCCESS);
      const gpu = f.open('0002:01:00.0');
      gpu.attachKvm(5);
      assert.equal(attachLpid(f.ctx, f.fn('0002:01:00.0'), 5), OpalRc.RESOURCE);
      assert.ok(
        f.logs.some(
          (l) =>
            l.message ===
            'KVM set (LPID 5): pnv_npu2_map_lpar_dev returned -10 (OPAL_RESOURCE): NOTIFY_BAD',
        ),
      );
      assert.ok(
        f.logs.some((l) => l.message === 'Error -10 mapping device to LPAR (OPAL_RESOURCE)'),
      );
      assert.equal(f.ctx.firmware.snapshot()[0]?.bdfMap.length, 16);
    } finally {
      f.done();
    }
  });
});
