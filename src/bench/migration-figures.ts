/**
 * Live migration figures (issue 8 item 5), against two fresh `serve` processes of the built-in
 * platform: the downtime of a GPU with `downtimePopulate` bytes of GPU RAM while a third
 * process keeps writing it through its mapping (bench/mapping-writer.ts, paused when the
 * source stops, as `migrate --pause-pid` does), from the source stopped to the destination
 * running; and the stop-copy throughput of a GPU with `throughputPopulate` bytes of GPU RAM and
 * no pre-copy, stream bytes over the time from STOP_COPY to the destination's STOP. Absolute
 * targets (the issue's): downtime ≤ 100 ms, stop-copy ≥ 1 GB/s. Each stop-copy run goes into
 * a fresh destination server (its GPU RAM never populated: every page the stream writes is
 * allocated there, as in a real migration), the last one then once more into the destination
 * that now holds the pages (a re-migration). The floor: the same number of bytes from a tmpfs
 * file through two pipes and three processes into a fresh tmpfs file (`dd | cat | dd`: the
 * copies of source → migrator → destination, the page allocation of a fresh destination, none
 * of the stream's work), because on a small VM page allocation and copies bound both. It is
 * measured before each fresh run and after the last, and each run is compared with the mean of
 * the two floors around it: on this kind of VM the floor itself swings 2-4× within minutes, so
 * one floor for all runs compared runs with conditions they never saw.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { closeFd, connectUnix } from '../native/index.ts';
import { servedDevices } from '../serve-dir/index.ts';
import { type MigrateReport, migrateDevice, VfioUserClient } from '../vfio-user/index.ts';
import { absoluteFigure, type Figure, ratioFigure } from './figures.ts';
import { cliEntry, nodeEntry, stopChild } from './node-entry.ts';
import { pauseProcesses } from './pause-processes.ts';
import { median } from './stats.ts';

/** How the migration figures are measured. */
export interface MigrationPlan {
  /** GPU RAM populated before the downtime runs (bytes). */
  readonly downtimePopulate: number;
  /** 64 KiB pages the writer keeps rewriting during the downtime runs. */
  readonly hotPages: number;
  readonly downtimeRuns: number;
  /** GPU RAM populated before the stop-copy runs (bytes). */
  readonly throughputPopulate: number;
  readonly throughputRuns: number;
  /** serve's --memory-budget for each of the two servers. */
  readonly memoryBudget: string;
}

/** What the migration figures were measured from. */
export interface MigrationResult {
  readonly downtime: MigrateReport[];
  /** Stop-copy runs, each into a fresh destination. */
  readonly stopCopy: MigrateReport[];
  /** The last run repeated into its destination, which now holds the pages. */
  readonly stopCopyWarm: MigrateReport[];
  /**
   * The floor before each fresh run and after the last (ms for `throughputPopulate` bytes):
   * run i lies between floors i and i + 1. Empty without /dev/shm.
   */
  readonly floorMs: number[];
  /**
   * KiB the guest's free page reporting handed back to its host over the stop-copy runs
   * (`reportedKib`), or null where the kernel does not say (no page_reporting module).
   */
  readonly reportedKib: number | null;
}

/**
 * The kernel's free page reporting counter (KiB reported so far), or null without one. A VM
 * with virtio-balloon free page reporting gives freed 2 MiB blocks back to its host, which
 * drops them; a fresh allocation that lands on them then faults in the hypervisor page by
 * page. Measured here: stop-copy into a fresh destination 255–812 MB/s with reporting on, and
 * 1385–1629 MB/s with it off (page_reporting_order above the largest order), same build.
 */
function reportedKib(): number | null {
  try {
    const text = readFileSync('/sys/module/page_reporting/parameters/reported_kib', 'utf8');
    const kib = Number(text.trim());
    return Number.isFinite(kib) ? kib : null;
  } catch {
    return null;
  }
}

const MiB = 1024 * 1024;
const GPU_RAM_REGION = 9;
/** Two GPUs of the built-in platform: one for the downtime runs, one for the throughput runs. */
const DOWNTIME_GPU = '0004:03:00.0';
const THROUGHPUT_GPU = '0005:01:00.0';

interface Serve {
  readonly child: ChildProcess;
  readonly dir: string;
  socket(address: string): string;
}

async function startServe(budget: string): Promise<Serve> {
  const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-bench-mig-'));
  const cmd = cliEntry(['serve', '--socket-dir', dir, '--memory-budget', budget]);
  const child = spawn(cmd.file, cmd.args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const socket = (address: string) => join(dir, `${address}.sock`);
  for (const t0 = performance.now(); ; await sleep(20)) {
    if (child.exitCode !== null) throw new Error(`serve exited before listening: ${err}`);
    if (performance.now() - t0 > 60_000) throw new Error(`serve did not listen in 60 s: ${err}`);
    try {
      if (servedDevices(dir).length === 0) continue;
      closeFd(connectUnix(socket(DOWNTIME_GPU)));
      return { child, dir, socket };
    } catch {}
  }
}

async function stopServe(s: Serve): Promise<void> {
  await stopChild(s.child);
  rmSync(s.dir, { recursive: true, force: true });
}

/** A client of `path`, retried while the server still holds the previous client (EBUSY). */
async function connect(path: string): Promise<VfioUserClient> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await VfioUserClient.connect(path);
    } catch (err) {
      if (attempt > 500) throw err;
      await sleep(20);
    }
  }
}

async function migrate(from: string, to: string, maxRounds: number, pause: number[]) {
  const source = await connect(from);
  const destination = await connect(to);
  try {
    return await migrateDevice(source, destination, {
      maxRounds,
      beforeStop: () => pauseProcesses(pause),
    });
  } finally {
    source.close();
    destination.close();
  }
}

function startWriter(socket: string, plan: MigrationPlan): Promise<ChildProcess> {
  const args = [socket, String(plan.downtimePopulate), String(plan.hotPages)];
  const cmd = nodeEntry('bench/mapping-writer', args);
  const child = spawn(cmd.file, cmd.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const check = setInterval(() => {
      if (out.includes('"ready":true')) {
        clearInterval(check);
        resolve(child);
      } else if (child.exitCode !== null) {
        clearInterval(check);
        reject(new Error(`mapping writer exited: ${err}`));
      }
    }, 20);
  });
}

/** Fills [0, bytes) of the GPU's RAM through a mapping of the bench process (a pattern per page). */
async function populate(socket: string, bytes: number): Promise<void> {
  const c = await connect(socket);
  try {
    const ram = await c.mapRegion(GPU_RAM_REGION);
    const chunk = new Uint8Array(16 * MiB);
    const v = new DataView(chunk.buffer);
    for (let at = 0; at < bytes; at += chunk.length) {
      for (let i = 0; i < chunk.length; i += 4096) v.setUint32(i, at + i, true);
      ram.write(BigInt(at), chunk.subarray(0, Math.min(chunk.length, bytes - at)));
    }
    ram.unmap();
  } finally {
    c.close();
  }
}

/**
 * The downtime and stop-copy runs of `plan` (see the module header).
 * @throws Error when a server, the writer or a migration fails.
 */
export async function measureMigration(
  plan: MigrationPlan,
  progress: (message: string) => void,
): Promise<MigrationResult> {
  const [a, b] = await Promise.all([startServe(plan.memoryBudget), startServe(plan.memoryBudget)]);
  try {
    const downtime: MigrateReport[] = [];
    for (let run = 1; run <= plan.downtimeRuns; run++) {
      progress(`migration downtime run ${run}/${plan.downtimeRuns}`);
      const writer = await startWriter(a.socket(DOWNTIME_GPU), plan);
      try {
        const pid = writer.pid as number;
        downtime.push(await migrate(a.socket(DOWNTIME_GPU), b.socket(DOWNTIME_GPU), 8, [pid]));
      } finally {
        writer.kill('SIGKILL');
      }
    }
    progress(`populating ${plan.throughputPopulate / MiB} MiB of GPU RAM`);
    await populate(a.socket(THROUGHPUT_GPU), plan.throughputPopulate);
    const stopCopy: MigrateReport[] = [];
    const stopCopyWarm: MigrateReport[] = [];
    const floorMs: number[] = [];
    const floor = pipeFloor(plan.throughputPopulate);
    const reportedBefore = reportedKib();
    let reportedAfter: number | null = null;
    try {
      for (let run = 1; run <= plan.throughputRuns; run++) {
        progress(`migration stop-copy run ${run}/${plan.throughputRuns}`);
        const fresh = await startServe(plan.memoryBudget);
        try {
          if (floor) floorMs.push(floor.run());
          const to = fresh.socket(THROUGHPUT_GPU);
          stopCopy.push(await migrate(a.socket(THROUGHPUT_GPU), to, 0, []));
          if (floor && run === plan.throughputRuns) floorMs.push(floor.run());
          if (run === plan.throughputRuns)
            stopCopyWarm.push(await migrate(a.socket(THROUGHPUT_GPU), to, 0, []));
        } finally {
          await stopServe(fresh);
        }
      }
      reportedAfter = reportedKib();
    } finally {
      floor?.close();
    }
    const reported =
      reportedBefore === null || reportedAfter === null ? null : reportedAfter - reportedBefore;
    return { downtime, stopCopy, stopCopyWarm, floorMs, reportedKib: reported };
  } finally {
    await Promise.all([stopServe(a), stopServe(b)]);
  }
}

/** The stop-copy floor (see the module header); null without a tmpfs at /dev/shm. */
function pipeFloor(bytes: number): { run(): number; close(): void } | null {
  if (!existsSync('/dev/shm')) return null;
  const dir = mkdtempSync('/dev/shm/vfio-nvlink2-bench-');
  const src = join(dir, 'src');
  const dst = join(dir, 'dst');
  // Not zeros (a pattern per page, as populate writes), all of it populated.
  const fd = openSync(src, 'w');
  const chunk = new Uint8Array(16 * MiB);
  const v = new DataView(chunk.buffer);
  for (let at = 0; at < bytes; at += chunk.length) {
    for (let i = 0; i < chunk.length; i += 4096) v.setUint32(i, at + i, true);
    writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - at));
  }
  closeSync(fd);
  const script = `dd if='${src}' bs=1M status=none | cat | dd of='${dst}' bs=1M status=none`;
  return {
    run() {
      rmSync(dst, { force: true });
      const t0 = performance.now();
      const r = spawnSync('sh', ['-c', script], { stdio: 'ignore', timeout: 120_000 });
      const ms = performance.now() - t0;
      if (r.status !== 0) throw new Error(`the stop-copy floor (${script}) failed: ${r.status}`);
      rmSync(dst, { force: true });
      return ms;
    },
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** What the detail says of free page reporting during the runs (see `reportedKib`). */
function reportedNote(kib: number | null): string {
  if (kib === null) return '';
  return `; free page reporting gave ${Math.round(kib / 1024)} MiB back to the host during the runs (fresh pages landing there fault in the hypervisor: 0 is the steady case)`;
}

/** The figures of `r` measured with `plan`: downtime, stop-copy (fresh, against its floor, warm). */
export function migrationFigures(r: MigrationResult, plan: MigrationPlan): Figure[] {
  const mib = (n: number) => `${n / MiB} MiB`;
  const rate = (s: MigrateReport) => s.stopCopyBytes / 1e6 / (s.stopCopyMs / 1000);
  const rates = r.stopCopy.map(rate);
  const warm = r.stopCopyWarm.map(rate);
  const rounds = r.downtime.map((d) => d.precopyRounds).join(', ');
  const floorRates = r.floorMs.map((ms) => plan.throughputPopulate / 1e6 / (ms / 1000));
  // Run i's floor: the mean of the floors before and after it (one before only, if that is all).
  const bracket = rates.map((_, i) => {
    const before = r.floorMs[i] as number;
    const after = r.floorMs[i + 1] ?? before;
    return plan.throughputPopulate / 1e6 / ((before + after) / 2 / 1000);
  });
  const ratios = rates.map((rate, i) => rate / (bracket[i] as number));
  const paired = median(ratios);
  return [
    absoluteFigure({
      id: 'migration-downtime',
      label: `migration downtime, ${mib(plan.downtimePopulate)} GPU RAM + writer`,
      unit: 'ms',
      value: median(r.downtime.map((d) => d.downtimeMs)),
      target: { kind: 'value-at-most', limit: 100 },
      detail: `source stopped (writer paused) to destination running, median of ${r.downtime.length} migrations between two serve processes; a third process rewrites ${plan.hotPages} pages of 64 KiB through its mapping 64 times per ms; pre-copy rounds ${rounds}`,
    }),
    absoluteFigure({
      id: 'migration-stop-copy',
      label: `migration stop-copy, ${mib(plan.throughputPopulate)} GPU RAM`,
      unit: 'MB/s',
      value: median(rates),
      target: { kind: 'value-at-least', limit: 1000 },
      detail: `stream bytes (${r.stopCopy[0]?.stopCopyBytes ?? 0}) over STOP_COPY to the destination's STOP, no pre-copy, each into a fresh destination server, median of ${r.stopCopy.length} migrations (${rates.map(Math.round).join(', ')} MB/s); MB = 10^6 bytes${reportedNote(r.reportedKib)}`,
    }),
    ...(r.floorMs.length === 0
      ? []
      : [
          ratioFigure({
            id: 'migration-stop-copy-floor',
            label: `migration stop-copy, ${mib(plan.throughputPopulate)}, vs pipes`,
            unit: 'MB/s',
            value: median(rates),
            // The floor the runs met: what makes value / floor their paired ratio.
            floor: median(rates) / paired,
            floorLabel: `the same bytes from a tmpfs file through \`dd | cat | dd\` (two pipes, three processes) into a fresh tmpfs file, measured before each run and after the last (${floorRates.map(Math.round).join(', ')} MB/s)`,
            // The stream adds to the floor's copies a CRC-32 and a digest per page, framing and
            // the handlers: at least half the floor's rate.
            target: { kind: 'ratio-at-least', limit: 0.5 },
            detail: `each fresh-destination run above over the mean of the floors just before and after it, median of ${rates.length} (ratios ${ratios.map((x) => x.toFixed(2)).join(', ')}); the floor shown is the one that gives that median`,
          }),
        ]),
    absoluteFigure({
      id: 'migration-stop-copy-warm',
      label: `migration stop-copy, ${mib(plan.throughputPopulate)}, pages held`,
      unit: 'MB/s',
      value: median(warm),
      target: { kind: 'value-at-least', limit: 1000 },
      detail: `as migration-stop-copy, migrated again into the destination of the last run, which holds every page (a re-migration: nothing allocated), median of ${r.stopCopyWarm.length}`,
    }),
  ];
}
