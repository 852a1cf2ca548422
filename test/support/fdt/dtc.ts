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

/**
 * The input of a `runDtcAll` job: bytes or text, or the output of an earlier job of the same
 * call (its index), which must have succeeded for this one to.
 */
export type DtcInput = Uint8Array | string | { readonly outputOf: number };

/** One `dtc -I <from> -O <to> [extra...]` of `runDtcAll`. */
export interface DtcJob {
  readonly input: DtcInput;
  readonly from: 'dts' | 'dtb';
  readonly to: 'dts' | 'dtb';
  readonly extra?: readonly string[];
}

const quote = (a: string) => `'${a.replaceAll("'", "'\\''")}'`;

/**
 * Runs every job, in order, in one shell: one process spawned from here for all of them, not
 * one per dtc run (a fork of a test process that has grown large costs more system time than
 * dtc itself). Each result is what `runDtc` would have given for that job alone.
 * @throws Error when the shell itself cannot run.
 */
export function runDtcAll(jobs: readonly DtcJob[]): DtcResult[] {
  const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-dtc-'));
  try {
    const file = (i: number, what: string) => join(dir, `${i}.${what}`);
    const script = jobs.map((job, i) => {
      let input = file(i, `in.${job.from}`);
      if (typeof job.input === 'object' && 'outputOf' in job.input) {
        if (!(job.input.outputOf < i)) throw new Error(`dtc job ${i}: outputOf must be earlier`);
        input = file(job.input.outputOf, 'out');
      } else writeFileSync(input, job.input);
      const args = ['dtc', '-q', '-I', job.from, '-O', job.to, ...(job.extra ?? [])];
      const cmd = [...args, '-o', file(i, 'out'), input].map(quote).join(' ');
      return `${cmd} 2>${quote(file(i, 'err'))}; echo $? >${quote(file(i, 'status'))}`;
    });
    const r = spawnSync('sh', ['-c', script.join('\n')], { encoding: 'utf8' });
    if (r.error || r.status !== 0) throw new Error(`sh for dtc: ${r.error ?? r.stderr}`);
    return jobs.map((_, i) => {
      const ok = readFileSync(file(i, 'status'), 'utf8').trim() === '0';
      // A plain Uint8Array, as runDtc gives.
      const output = ok ? new Uint8Array(readFileSync(file(i, 'out'))) : new Uint8Array(0);
      return { ok, output, stderr: readFileSync(file(i, 'err'), 'utf8') };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Whether dtc is installed (tests that need it are skipped with a reason when it is not). */
export function hasDtc(): boolean {
  return spawnSync('dtc', ['--version']).status === 0;
}
