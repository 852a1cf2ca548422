import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatFirmwareSnapshot } from '../../test/support/platform/firmware-format.ts';
import { type Npu2Description, Npu2Firmware } from './firmware.ts';
import { Msr, OpalRc, OpalToken, opalRcName } from './firmware-opal.ts';

/** One NPU with `gpus` GPUs, two links each (like a 6-GPU Witherspoon socket), BDFs 0x100, 0x200, … */
function npu(gpus: number, phbId = 7n): Npu2Description {
  const links = Array.from({ length: gpus * 2 }, (_, i) => ({
    linkIndex: i,
    gpuBdf: (Math.floor(i / 2) + 1) << 8,
    gpuName: `0004:0${Math.floor(i / 2) + 1}:00.0`,
    bridgeName: `0007:00:0${Math.floor(i / 2)}.${i % 2}`,
  }));
  return {
    phbId,
    domain: 7,
    path: '/pciex@6030200000000',
    chipId: 0,
    links,
    atsdAddresses: Array.from({ length: 8 }, (_, i) => 0x6030200800000n + BigInt(i) * 0x10000n),
  };
}

describe('Npu2Firmware (skiboot hw/npu2.c)', () => {
  it('MAP_LPAR then INIT_CONTEXT: an entry, a PID map entry, the first link’s ATSD bound', () => {
    const fw = new Npu2Firmware([npu(3)]);
    assert.equal(fw.mapLpar(7n, 0x200, 5, 0n), OpalRc.SUCCESS);
    assert.equal(fw.initContext(7n, 0, Msr.DR | Msr.PR, 0x200), 0); // LPARSHORT 0
    const [s] = fw.snapshot();
    assert.deepEqual(s?.bdfMap, [
      {
        index: 0,
        bdf: 0x200,
        lpid: 5,
        valid: true,
        unfilt: true,
        xlat: 3,
        stack: 2,
        brick: 0,
        lparShort: 0,
      },
    ]);
    assert.deepEqual(s?.pidMap, [
      { index: 0, lparShort: 0, msr: { dr: true, hv: false, pr: true, sf: true }, refs: 1 },
    ]);
    assert.deepEqual(
      s?.atsd.map((a) => a.lpid),
      [0, 0, 5, 0, 0, 0, 0, 0],
    );
    assert.equal(fw.atsdAt(0x6030200820000n)?.binding.lpid, 5);
    assert.equal(fw.atsdAt(0x6030200830000n)?.binding.lpid, 0); // the GPU's second link is not bound
  });

  it('rejects a non-zero LPCR, unknown PHBs and BDFs no link leads to', () => {
    const fw = new Npu2Firmware([npu(1)]);
    assert.equal(fw.mapLpar(7n, 0x100, 1, 1n), OpalRc.UNSUPPORTED);
    assert.equal(fw.mapLpar(8n, 0x100, 1, 0n), OpalRc.PARAMETER);
    assert.equal(fw.mapLpar(7n, 0x900, 1, 0n), OpalRc.PARAMETER);
    assert.equal(fw.snapshot()[0]?.bdfMap.length, 0);
  });

  it('checks MSR bits like skiboot: outside DR|HV|PR|SF unsupported, a different wildcard a parameter error', () => {
    const fw = new Npu2Firmware([npu(1)]);
    assert.equal(fw.initContext(7n, 0, Msr.DR, 0x100), OpalRc.PARAMETER); // not mapped yet
    fw.mapLpar(7n, 0x100, 0, 0n);
    assert.equal(fw.initContext(7n, 0, Msr.DR | (1n << 5n), 0x100), OpalRc.UNSUPPORTED);
    assert.equal(fw.initContext(7n, 0, Msr.DR | Msr.PR | Msr.HV | Msr.SF, 0x100), 0);
    assert.equal(fw.initContext(7n, 0, Msr.DR | Msr.PR | Msr.HV, 0x100), 0); // same wildcard: refs 2
    assert.equal(fw.snapshot()[0]?.pidMap[0]?.refs, 2);
    assert.equal(fw.initContext(7n, 0, Msr.DR | Msr.PR, 0x100), OpalRc.PARAMETER);
  });

  it('reference-counts contexts; destroy without one is a parameter error', () => {
    const fw = new Npu2Firmware([npu(1)]);
    fw.mapLpar(7n, 0x100, 3, 0n);
    fw.initContext(7n, 0, Msr.DR | Msr.PR, 0x100);
    fw.initContext(7n, 0, Msr.DR | Msr.PR, 0x100);
    assert.equal(fw.destroyContext(7n, 0, 0x100), OpalRc.SUCCESS);
    assert.equal(fw.snapshot()[0]?.pidMap[0]?.refs, 1);
    assert.equal(fw.destroyContext(7n, 0, 0x100), OpalRc.SUCCESS);
    assert.equal(fw.snapshot()[0]?.pidMap.length, 0);
    assert.equal(fw.destroyContext(7n, 0, 0x100), OpalRc.PARAMETER);
    assert.equal(fw.destroyContext(7n, 0, 0x300), OpalRc.PARAMETER);
  });

  it('re-mapping resets the PID map; LPID 0 keeps the entry (the host owns it)', () => {
    const fw = new Npu2Firmware([npu(1)]);
    fw.mapLpar(7n, 0x100, 0, 0n);
    fw.initContext(7n, 0, Msr.DR | Msr.PR | Msr.HV, 0x100);
    fw.mapLpar(7n, 0x100, 9, 0n);
    assert.equal(fw.snapshot()[0]?.pidMap.length, 0);
    assert.equal(fw.initContext(7n, 0, Msr.DR | Msr.PR, 0x100), 0);
    fw.destroyContext(7n, 0, 0x100);
    fw.mapLpar(7n, 0x100, 0, 0n);
    const [s] = fw.snapshot();
    assert.deepEqual(
      s?.bdfMap.map((e) => [e.bdf, e.lpid, e.valid]),
      [[0x100, 0, false]],
    );
    assert.deepEqual(s?.atsd[0], { index: 0, address: 0x6030200800000n, lpid: 0, msrHv: true });
  });

  it('16 BDFs fill the table: the 17th gets OPAL_RESOURCE', () => {
    const desc = npu(17);
    const fw = new Npu2Firmware([desc]);
    const messages: string[] = [];
    const logged = new Npu2Firmware([desc], (_l, m) => messages.push(m));
    for (let g = 1; g <= 16; g++) {
      assert.equal(fw.mapLpar(7n, g << 8, g, 0n), OpalRc.SUCCESS);
      logged.mapLpar(7n, g << 8, g, 0n);
    }
    assert.equal(fw.mapLpar(7n, 17 << 8, 17, 0n), OpalRc.RESOURCE);
    assert.equal(opalRcName(logged.mapLpar(7n, 17 << 8, 17, 0n)), 'OPAL_RESOURCE');
    assert.ok(messages.includes('NPU0: No free XTS_BDF[] entry'));
    // a BDF already in the table still maps (it is updated in place), also with LPID 0
    assert.equal(fw.mapLpar(7n, 3 << 8, 0, 0n), OpalRc.SUCCESS);
    assert.equal(fw.mapLpar(7n, 17 << 8, 17, 0n), OpalRc.RESOURCE);
    assert.equal(fw.snapshot()[0]?.bdfMap.length, 16);
  });

  it('dispatches OPAL tokens 146–148 and prints its tables', () => {
    const fw = new Npu2Firmware([npu(1)]);
    assert.equal(fw.opalCall(OpalToken.NPU_MAP_LPAR, [7n, 0x100n, 4n, 0n]), 0);
    assert.equal(fw.opalCall(OpalToken.NPU_INIT_CONTEXT, [7n, 0n, Msr.DR | Msr.PR, 0x100n]), 0);
    assert.equal(fw.opalCall(OpalToken.NPU_DESTROY_CONTEXT, [7n, 0n, 0x100n]), 0);
    assert.equal(fw.opalCall(999, []), OpalRc.PARAMETER);
    const text = formatFirmwareSnapshot(fw.snapshot());
    assert.match(text, /\[ 0\] bdf 0x0100 lpid 4 valid stack 0x4 brick 0/);
    assert.match(text, /\[0\] 0x6030200800000 lpid 4/);
  });
});
