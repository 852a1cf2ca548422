/**
 * `vfio-nvlink2 serve`: every GPU and NVLink bridge of the platform over vfio-user, one socket
 * per device (src/vfio-user/server/server.ts), built from one Machine (src/machine). Start-up does only
 * cheap work (devices are created lazily, memory is sparse) and prints the table — the
 * readiness signal — only once every socket listens. Stays in the foreground; SIGTERM/SIGINT
 * close the clients (releasing what they held), remove the sockets and the JSON files, exit 0.
 * Device memory is capped by the memory budget (--memory-budget, default half of MemAvailable,
 * logged at start); state.json shows what each GPU holds, read again every second.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { serializeFdt } from '../fdt/index.ts';
import { LiveCounters, type LivePage, startLivePage } from '../live/index.ts';
import { createMachine, type Machine, PartitionRegistry } from '../machine/index.ts';
import { isSystemCallError } from '../native/index.ts';
import { type KernelLogLine, REGION_ACCESS_TRACEPOINTS } from '../nvlink2/index.ts';
import { buildHost, HostError } from '../platform/index.ts';
import { TextSink, Tracer } from '../trace/index.ts';
import { formatBytes, VfioError } from '../vfio/index.ts';
import {
  dmaLimitsWarning,
  type FileIdentity,
  RateLimitedLog,
  SocketPathError,
  setDmaSessionCount,
  unlinkIfOurs,
  VfioUserServer,
} from '../vfio-user/index.ts';
import { CliError, cliErrorOf } from './cli-error.ts';
import { defaultMemoryBudget } from './memory-size.ts';
import { readPlatformArg } from './platform-arg.ts';
import { parseServeArgs, SERVE_USAGE, type ServeArgs } from './serve-args.ts';
import {
  deviceEntries,
  formatDeviceTable,
  serverState,
  writeFileAtomically,
  writeJsonAtomically,
} from './serve-report.ts';
import { openTraceOutput } from './serve-trace.ts';
import { checkSocketDir } from './socket-dir.ts';
import { CONTROL_SOCKET, startTraceControl, type TraceControl } from './trace-control.ts';

const log = (line: string) => process.stderr.write(`vfio-nvlink2 serve: ${line}\n`);

/** Kernel lines a client's requests can cause, rate-limited as the server's own. */
const kernelLog = new RateLimitedLog(log, 'kernel');

function logKernel(line: KernelLogLine): void {
  if (line.level === 'err' || line.level === 'warn')
    kernelLog.line(`kernel: ${line.level}: ${line.device}: ${line.message}`);
}

/**
 * The budget's bytes, and the start line saying where they come from: logged only once every
 * socket listens, so that a refused socket dir or path is the one line serve prints.
 */
function memoryBudget(args: ServeArgs): { bytes: bigint; line: string } {
  if (args.memoryBudget !== undefined)
    return {
      bytes: args.memoryBudget,
      line: `memory budget ${formatBytes(args.memoryBudget)} (--memory-budget)`,
    };
  const d = defaultMemoryBudget();
  return {
    bytes: d.bytes,
    line: `memory budget ${formatBytes(d.bytes)} (half of ${d.source} ${formatBytes(d.available)}; set it with --memory-budget SIZE)`,
  };
}

function buildMachine(args: ServeArgs, budget: bigint, counters?: LiveCounters): Machine {
  const fdt = readPlatformArg('serve', args.dt);
  try {
    buildHost(fdt);
  } catch (err) {
    if (err instanceof HostError) throw cliErrorOf('serve', err);
    throw err;
  }
  const tracer = args.trace === undefined ? undefined : new Tracer();
  if (tracer && args.trace !== undefined) tracer.attach(new TextSink(openTraceOutput(args.trace)));
  return createMachine(fdt, {
    log: logKernel,
    memoryBudget: budget,
    ...(tracer ? { tracer } : {}),
    ...(counters ? { vfioTracer: counters } : {}),
  });
}

/** Which devices go on which socket. @throws CliError for an unknown or unservable --device */
function plan(machine: Machine, args: ServeArgs): Map<string, string> {
  if (args.device !== undefined && args.socketPath !== undefined) {
    const address = args.device.length === 7 ? `0000:${args.device}` : args.device.toLowerCase();
    try {
      machine.function(address);
    } catch (err) {
      if (err instanceof VfioError) throw cliErrorOf('serve', err);
      throw err;
    }
    // a function whose variant's probe failed is no vfio device (nothing to serve)
    const failed = machine.device(address).probeError;
    if (failed)
      throw new CliError(
        'serve',
        'PLATFORM',
        `${address} is no vfio device: probe failed: ${failed.message}`,
      );
    return new Map([[address, args.socketPath]]);
  }
  try {
    makeDirectories(args.socketDir, args.allowUids.length > 0 ? 0o711 : 0o700);
  } catch (err) {
    throw new CliError(
      'serve',
      'SOCKET_DIR',
      `cannot create ${args.socketDir} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  for (const warning of checkSocketDir(args.socketDir, args.allowUids.length > 0))
    log(`warning: ${warning}`);
  return new Map(
    // Absolute, so that devices.json leads a reader in any directory to the socket.
    machine.servedFunctions().map((fn) => [fn.name, `${resolve(args.socketDir)}/${fn.name}.sock`]),
  );
}

function startServers(
  machine: Machine,
  sockets: Map<string, string>,
  partitions: PartitionRegistry,
  onChange: () => void,
  args: ServeArgs,
) {
  const servers: VfioUserServer[] = [];
  // The native fast path is off while a sink listens to what a region access reports.
  const traceActivity = machine.ctx.tracer.listening(REGION_ACCESS_TRACEPOINTS);
  try {
    for (const [address, socketPath] of sockets) {
      const server = new VfioUserServer({
        device: machine.device(address),
        socketPath,
        partitions,
        log,
        onChange,
        allowUids: args.allowUids,
        traceActivity,
        ...(args.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: args.idleTimeoutMs }),
        ...(args.stallTimeoutMs === undefined ? {} : { stallTimeoutMs: args.stallTimeoutMs }),
      });
      server.listen();
      servers.push(server);
    }
  } catch (err) {
    for (const s of servers) s.close();
    if (err instanceof SocketPathError) throw cliErrorOf('serve', err);
    if (isSystemCallError(err)) throw cliErrorOf('serve', err, 'cannot listen: ');
    throw err;
  }
  return servers;
}

/**
 * With tracing on, the emulation's periodic duty: pages a client faulted into its GPU RAM
 * mapping are found by scanning (vfio_pci_nvgpu_mmap_fault is traced then, see
 * nvlink2/gpu-ram-region.ts). ATSD pages watch their own mappings.
 */
function startFaultScan(machine: Machine): NodeJS.Timeout {
  const timer = setInterval(() => {
    try {
      machine.ctx.live.scanFaults();
    } catch (err) {
      log(`fault scan: ${err instanceof Error ? err.message : String(err)}`);
    }
  }, FAULT_SCAN_MS);
  timer.unref();
  return timer;
}

const FAULT_SCAN_MS = 100;

/**
 * Reads the device memory's usage every second (clients touch pages through their mappings
 * without telling us) and rewrites state.json when it changed.
 */
function startMemoryWatch(machine: Machine, writeState: () => void): NodeJS.Timeout {
  let last = '';
  const timer = setInterval(() => {
    try {
      const u = machine.memoryUsage();
      const now = `${u.touched} ${u.refused} ${u.gpus.map((g) => `${g.gpuRam}/${g.bars}`).join(' ')}`;
      if (now !== last) writeState();
      last = now;
    } catch (err) {
      log(`memory usage: ${err instanceof Error ? err.message : String(err)}`);
    }
  }, MEMORY_WATCH_MS);
  timer.unref();
  return timer;
}

const MEMORY_WATCH_MS = 1000;

/** Removes the file serve wrote at `path` if it is still that file; one line when it is not. */
function removeIfOurs(path: string, written: FileIdentity | undefined): void {
  if (unlinkIfOurs(path, written) === 'replaced')
    log(`not removing ${path}: it is no longer the file serve wrote`);
}

/** Resolves with 0 after the first SIGTERM or SIGINT has run `cleanup`. */
function untilSignal(cleanup: (signal: string) => void): Promise<number> {
  return new Promise<number>((resolve) => {
    const shutdown = (signal: string) => {
      cleanup(signal);
      setTimeout(() => process.exit(0), 2000).unref(); // should anything still hold the loop
      resolve(0);
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
}

/** devices.json is a public listing; state.json names client pids and partitions: ours only. */
const DEVICES_MODE = 0o644;
const STATE_MODE = 0o600;

/** Writes state.json (directory mode only); a failure is logged, never fatal. */
function stateWriter(args: ServeArgs, machine: Machine, partitions: PartitionRegistry) {
  const path = `${args.socketDir}/state.json`;
  let written: FileIdentity | undefined;
  const write = () => {
    if (args.device !== undefined) return;
    try {
      written = writeJsonAtomically(path, serverState(machine, partitions), STATE_MODE);
    } catch (err) {
      log(`cannot write ${path}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  /** At exit: removes the last state.json written, if it is still there. */
  const remove = () => removeIfOurs(path, written);
  return { write, remove };
}

/**
 * `vfio-nvlink2 serve`: serves until SIGINT/SIGTERM; returns the exit status.
 * @throws CliError USAGE, DT_PARSE, PLATFORM, SOCKET_DIR, SOCKET_PATH, FILE, or an errno (an
 * unknown --device, a socket that cannot listen).
 */
export async function run(argv: string[]): Promise<number> {
  const args = parseServeArgs(argv);
  if (args === 'help') {
    console.log(SERVE_USAGE);
    return 0;
  }
  const budget = memoryBudget(args);
  const counters = args.http === undefined ? undefined : new LiveCounters();
  const machine = buildMachine(args, budget.bytes, counters);
  const partitions = new PartitionRegistry(machine.lpids, args.lpid);
  const sockets = plan(machine, args);
  setDmaSessionCount(sockets.size); // each device's share of the fds DMA maps may hold
  const few = dmaLimitsWarning();
  if (few) log(few);
  const dirMode = args.device === undefined;
  const state = stateWriter(args, machine, partitions);
  const writeState = state.write;
  let devicesWritten: FileIdentity | undefined;
  let platformWritten: FileIdentity | undefined;
  // Signals are handled from before the first socket listens: whoever sees a socket, or the
  // table (its write can wake the reader before our next instruction runs), may stop us then.
  let stop = (_signal: string): void => {};
  const stopped = untilSignal((signal) => stop(signal));
  const servers = startServers(machine, sockets, partitions, writeState, args);
  log(budget.line);
  // The fault scan runs while anyone can see what it finds: --trace, --http, an attached trace.
  const alwaysScan = args.trace !== undefined || args.http !== undefined;
  let duties = alwaysScan ? startFaultScan(machine) : undefined;
  const memoryWatch = dirMode ? startMemoryWatch(machine, writeState) : undefined;
  let page: LivePage | undefined;
  let control: TraceControl | undefined;
  let stopping = false;
  stop = (signal) => {
    stopping = true;
    log(`${signal}: closing ${servers.length} sockets`);
    page?.close();
    control?.close();
    if (duties) clearInterval(duties);
    if (memoryWatch) clearInterval(memoryWatch);
    for (const s of servers) s.close();
    kernelLog.flush();
    if (dirMode) {
      removeIfOurs(`${args.socketDir}/devices.json`, devicesWritten);
      state.remove();
      removeIfOurs(`${args.socketDir}/platform.dtb`, platformWritten);
    }
    machine.dispose();
  };
  if (args.http !== undefined) {
    try {
      page = await startLivePage({
        machine,
        partitions,
        served: new Set(sockets.keys()),
        session: (address) => servers.find((s) => s.device.name === address)?.session,
        ...(counters ? { counters } : {}),
        port: args.http,
      });
    } catch (err) {
      stop('error');
      throw new CliError('serve', 'USAGE', `--http ${args.http}: ${(err as Error).message}`, 1);
    }
    if (stopping) {
      page.close(); // a signal came while the page started: nothing more is created
      return stopped;
    }
    log(`live page on ${page.url}`);
  }
  if (dirMode) {
    try {
      control = startTraceControl(
        `${args.socketDir}/${CONTROL_SOCKET}`,
        machine.ctx.tracer,
        log,
        (n) => {
          if (n > 0) duties ??= startFaultScan(machine);
          else if (!alwaysScan && duties) {
            clearInterval(duties);
            duties = undefined;
          }
        },
      );
    } catch (err) {
      stop('error');
      throw new CliError('serve', 'SOCKET_PATH', `trace control socket: ${(err as Error).message}`);
    }
  }
  const entries = deviceEntries(machine, sockets);
  if (dirMode) {
    writeState();
    // The tree served, for `topology --socket-dir` (public like devices.json).
    platformWritten = writeFileAtomically(
      `${args.socketDir}/platform.dtb`,
      serializeFdt(machine.host.fdt),
      DEVICES_MODE,
    );
    devicesWritten = writeJsonAtomically(`${args.socketDir}/devices.json`, entries, DEVICES_MODE);
  }
  process.stdout.write(
    args.json
      ? `${JSON.stringify(entries, null, 2)}\n`
      : `${formatDeviceTable(entries)}\nready: ${servers.length} sockets\n`,
  );
  return stopped;
}

/**
 * `mkdir -p` with `mode` (0700; 0711 when other uids may reach the sockets). Not
 * `mkdirSync(…, { recursive: true })`: on Node 20 that loops forever when the kernel answers
 * ENOENT for a directory whose parent exists (e.g. under /proc).
 * @throws NodeJS.ErrnoException from the first mkdir that fails for another reason than EEXIST.
 */
function makeDirectories(path: string, mode: number): void {
  const parent = dirname(path);
  try {
    mkdirSync(path, { mode });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    if (code !== 'ENOENT' || parent === path) throw err;
    makeDirectories(parent, mode);
    mkdirSync(path, { mode });
  }
}
