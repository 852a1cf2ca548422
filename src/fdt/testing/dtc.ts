/**
 * Test support: runs the real device-tree compiler (dtc, from dtc's own project) on temporary
 * files so tests can compare our blobs and DTS text with what dtc reads and writes.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** dtc's result: its output bytes, or its complaint. */
export interface DtcResult {
  readonly ok: boolean;
  readonly output: Uint8Array;
  readonly stderr: string;
}

/** Runs `dtc -I <from> -O <to> [extra...]` on `input`. */
export function runDtc(
  input: Uint8Array | string,
  from: 'dts' | 'dtb',
  to: 'dts' | 'dtb',
  extra: string[] = [],
): DtcResult {
  const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-dtc-'));
  try {
    const inPath = join(dir, `in.${from}`);
    const outPath = join(dir, `out.${to}`);
    writeFileSync(inPath, input);
    const r = spawnSync('dtc', ['-q', '-I', from, '-O', to, ...extra, '-o', outPath, inPath], {
      encoding: 'utf8',
    });
    if (r.error) return { ok: false, output: new Uint8Array(0), stderr: String(r.error) };
    const ok = r.status === 0;
    // A plain Uint8Array: a Buffer's slice() shares memory, a surprise for callers.
    const output = ok ? new Uint8Array(readFileSync(outPath)) : new Uint8Array(0);
    return { ok, output, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** dtc must succeed; returns its output. */
export function dtc(
  input: Uint8Array | string,
  from: 'dts' | 'dtb',
  to: 'dts' | 'dtb',
  extra: string[] = [],
): Uint8Array {
  const r = runDtc(input, from, to, extra);
  if (!r.ok) throw new Error(`dtc -I ${from} -O ${to} ${extra.join(' ')} failed: ${r.stderr}`);
  return r.output;
}

/** `dtc -I dtb -O dts` as text: the canonical form two blobs are compared in. */
export function decompile(blob: Uint8Array): string {
  return new TextDecoder().decode(dtc(blob, 'dtb', 'dts'));
}

/** Whether dtc is installed (tests that need it are skipped with a reason when it is not). */
export function hasDtc(): boolean {
  return spawnSync('dtc', ['--version']).status === 0;
}
