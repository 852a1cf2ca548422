/** A readable rendering of the NPU2 firmware tables (src/platform/firmware.ts), for its tests. */
import type { Npu2Snapshot } from '../../../src/platform/index.ts';
import { hex, hexDigits } from '../../../src/text/index.ts';

/** One block per NPU: its BDF→LPID entries, PID-map entries with reference counts, ATSD bindings. */
export function formatFirmwareSnapshot(npus: readonly Npu2Snapshot[]): string {
  const out: string[] = [];
  for (const n of npus) {
    out.push(`NPU PHB ${hex(n.phbId)} (domain ${hexDigits(n.domain, 4)}, ${n.path})`);
    out.push(`  XTS_BDF_MAP (${n.bdfMap.length}/16 used)`);
    for (const e of n.bdfMap) {
      out.push(
        `    [${String(e.index).padStart(2)}] bdf ${hex(e.bdf, 4)} lpid ${e.lpid} ${e.valid ? 'valid' : 'not-valid'} stack ${hex(e.stack)} brick ${e.brick}`,
      );
    }
    out.push(`  XTS_PID_MAP`);
    for (const p of n.pidMap) {
      const msr = (['dr', 'hv', 'pr', 'sf'] as const).filter((k) => p.msr[k]).join('|');
      out.push(`    [${String(p.index).padStart(2)}] msr ${msr.toUpperCase()} refs ${p.refs}`);
    }
    out.push('  ATSD LPARID');
    for (const a of n.atsd) {
      const where = a.address === undefined ? 'no address' : hex(a.address);
      out.push(`    [${a.index}] ${where} lpid ${a.lpid}${a.msrHv ? ' HV' : ''}`);
    }
  }
  return out.join('\n');
}
