/**
 * Crash cycles against the real server: a guest process (test/support/crash_client.py) opens
 * a GPU and its bridge, maps GPU RAM and ATSD through the region fds, writes through the
 * mapping, DMA_MAPs a memfd, assigns an eventfd with SET_IRQS, and is killed with SIGKILL
 * while it holds all of it. Each cycle the server must give everything back: its fds
 * (/proc/PID/fd), the partition and its LPID, the NPU firmware tables (state.json) exactly as
 * before the first cycle; its RSS (VmRSS) stays within 10% of what it was after the warm-up
 * cycles; and the last value written through a mapping is in GPU RAM (read back by
 * REGION_READ). CRASH_CYCLES sets the number of cycles (default 100; 1000 for the long run).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import {
  BRIDGE,
  connectWhenFree,
  GPU,
  type ServeProcess,
  type ServerState,
  startServe,
  waitFor,
} from './support/serve-process.ts';
import { within } from './support/wait.ts';

const SCRIPT = new URL('./support/crash_client.py', import.meta.url).pathname;
/** The system's python3 when there is one: a version manager's shim can take a second to start. */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const CYCLES = Number(process.env.CRASH_CYCLES ?? 100);
const WARM_UP = 3;
const WRITTEN_AT = 0x100n;

let serve: ServeProcess;
before(async () => {
  serve = await startServe();
});
after(async () => {
  await serve.stop();
});

function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]);
}

/** What must come back after every crash: fds, partitions, LPIDs, firmware tables. */
interface Snapshot {
  fds: number;
  tables: string;
}

function snapshot(): Snapshot {
  const s: ServerState = serve.state();
  return {
    fds: serve.fdCount(),
    tables: JSON.stringify({ partitions: s.partitions, lpids: s.lpidsInUse, firmware: s.firmware }),
  };
}

/** One guest: starts, holds everything, is killed; resolves with the value it wrote. */
async function crashOnce(value: bigint): Promise<void> {
  const child = spawn(PYTHON, [SCRIPT, serve.socket(GPU), serve.socket(BRIDGE), String(value)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.once('exit', (_code, signal) => resolve(signal)),
  );
  const first = await within(
    'the guest to print its first line',
    new Promise<string | undefined>((resolve) => {
      createInterface({ input: child.stdout }).once('line', resolve);
      child.once('exit', () => resolve(undefined));
    }),
  ).catch((e) => {
    child.kill('SIGKILL');
    throw e;
  });
  assert.equal(first, 'ready', `the guest did not get ready: ${stderr}`);
  const held = serve.state();
  assert.equal(held.partitions[0]?.devices.length, 2, 'the guest holds the GPU and its bridge');
  child.kill('SIGKILL');
  assert.equal(await within('the killed guest to exit', exited), 'SIGKILL');
}

/** The snapshot once it equals `want`, or the last one after 30 s (the assertion shows how). */
async function settled(want: Snapshot): Promise<Snapshot> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const now = snapshot();
    if ((now.fds === want.fds && now.tables === want.tables) || Date.now() > deadline) return now;
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('crash cycles', () => {
  it(`${CYCLES} guests killed with SIGKILL while holding a GPU: nothing of them is left`, async () => {
    // Memory the server creates on first use exists before the baseline: one session first.
    for (const device of [GPU, BRIDGE]) {
      const probe = await connectWhenFree(serve, device);
      (await probe.mapRegion(9)).unmap();
      probe.close();
    }
    const quiet = () => {
      const s = serve.state();
      return s.partitions.length === 0 ? snapshot() : undefined;
    };
    const baseline = await waitFor('the server to release the probe', quiet);
    let rssAfterWarmUp = 0;
    let rssMax = 0;
    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      await crashOnce(BigInt(cycle));
      const now = await settled(baseline);
      assert.deepEqual(now, baseline, `after cycle ${cycle}`);
      const rss = rssKiB(serve.pid);
      if (cycle === WARM_UP) rssAfterWarmUp = rss;
      if (cycle > WARM_UP) rssMax = Math.max(rssMax, rss);
    }
    const reader = await connectWhenFree(serve, GPU);
    try {
      const bytes = await reader.regionRead(9, WRITTEN_AT, 8);
      const value = new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true);
      assert.equal(value, BigInt(CYCLES), 'the last write through a mapping is in GPU RAM');
    } finally {
      reader.close();
    }
    if (CYCLES > WARM_UP) {
      assert.ok(
        rssMax <= rssAfterWarmUp * 1.1,
        `RSS ${rssMax} KiB exceeds ${rssAfterWarmUp} KiB after warm-up by more than 10%`,
      );
    }
    process.stderr.write(
      `crash cycles: ${CYCLES}, server fds ${baseline.fds}, RSS ${rssAfterWarmUp} KiB after ${WARM_UP} cycles, at most ${rssMax} KiB after\n`,
    );
  });
});
