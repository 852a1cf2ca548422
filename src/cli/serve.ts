/**
 * `vfio-nvlink2 serve`: every GPU and NVLink bridge of the platform over vfio-user, one socket
 * per device (src/vfio-user/server/server.ts), built from one Machine (src/machine). Start-up does only
 * cheap work (devices are created lazily, memory is sparse) and prints the table — the
 * readiness signal — only once every socket listens. Stays in the foreground; SIGTERM/SIGINT
 * close the clients (releasing what they held), remove the sockets and the JSON files, exit 0.
 * Device memory is capped by the memory budget (--memory-budget, default half of MemAvailable,
 * logged at start); state.json shows what each GPU holds, read again every second.
 */
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  writeSync,
} from 'node:fs';
import { resolve } from 'node:path';
import { messageOf, messageWithoutCode, type SystemErrnoName } from '../errors/index.ts';
import { type Fdt, serializeFdt } from '../fdt/index.ts';
import type { LiveCounters, LivePage } from '../live/index.ts';
import { createMachine, type Machine, PartitionRegistry } from '../machine/index.ts';
import { isSystemCallError } from '../native/index.ts';
import { type KernelLogLine, REGION_ACCESS_TRACEPOINTS } from '../nvlink2/index.ts';
import { buildHost, type Host, HostError } from '../platform/index.ts';
import { readDevicesList, readServeState } from '../serve-dir/index.ts';
import {
  makeDirectories,
  removeLeftTemporaries,
  replaceFile,
  StateDir,
  StateDirError,
} from '../state-dir/index.ts';
import { TextSink, Tracer } from '../trace/index.ts';
import { createProbeMemory, formatBytes, type MemoryBudget, VfioError } from '../vfio/index.ts';
import {
  dmaLimitsWarning,
  type FileIdentity,
  GivenMemory,
  RateLimitedLog,
  SocketPathError,
  setDmaSessionCount,
  unlinkIfOurs,
  VfioUserServer,
} from '../vfio-user/index.ts';
import { CliError, cliErrorOf } from './cli-error.ts';
import { defaultMemoryBudget } from './memory-size.ts';
import {
  EXIT_CLOSED_PIPE,
  logLine,
  OutputError,
  onOutputFailure,
  printLine,
  writeStdout,
} from './output.ts';
import { parsePciAddress } from './pci-address.ts';
import { readPlatformArg, requireServable } from './platform-arg.ts';
import { parseServeArgs, SERVE_USAGE, type ServeArgs } from './serve-args.ts';
import {
  deviceEntries,
  formatDeviceTable,
  serverState,
  writeJsonAtomically,
} from './serve-report.ts';
import { openTraceOutput } from './serve-trace.ts';
import { checkPrivateDir, checkSocketDir, STATE_DIR } from './socket-dir.ts';
import { CONTROL_SOCKET, startTraceControl, type TraceControl } from './trace-control.ts';

/** 0: warnings only (--quiet), 1: + start, connect, disconnect, 2: + probes (--verbose). */
let verbosity: 0 | 1 | 2 = 1;

/** A log line: ISO 8601 UTC time, then the line; never fatal (output.ts). */
const emit = (line: string) => logLine(`${new Date().toISOString()} vfio-nvlink2 serve: ${line}`);
/** Warnings and errors: always. */
const log = emit;
/** What happens (start, a client's connect and disconnect): unless --quiet. */
const info = (line: string) => {
  if (verbosity >= 1) emit(line);
};
/** What a VMM merely probes (a region it does not have), connections before VERSION: --verbose. */
const debug = (line: string) => {
  if (verbosity >= 2) emit(line);
};

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

/**
 * What only some serves need, imported when asked for: start-up loads no module it does not run
 * (the live page brings the topology renderer and its Graphviz wasm). The state directory's
 * module is not among them: the CLI's entry loads it already (output.ts writes through
 * replaceFile), so importing it again would only cost a start a loader round trip.
 */
interface Optional {
  readonly live: typeof import('../live/index.ts') | undefined;
}

async function importOptional(args: ServeArgs): Promise<Optional> {
  return { live: args.http === undefined ? undefined : await import('../live/index.ts') };
}

function buildMachine(
  args: ServeArgs,
  budget: bigint,
  counters?: LiveCounters,
): { machine: Machine; stateDir: StateDir | undefined; dtb: Uint8Array } {
  const fdt = readPlatformArg('serve', args.dt);
  let host: Host;
  try {
    host = buildHost(fdt);
    requireServable('serve', host, fdt.source);
  } catch (err) {
    if (err instanceof HostError) throw cliErrorOf('serve', err);
    throw err;
  }
  // The tree's DTB, serialized once: the state directory's digest and platform.dtb (the host's
  // tree is a copy only when Linux would have left deep nodes out, see buildHost).
  const given = serializeFdt(fdt);
  const dtb = host.fdt === fdt ? given : serializeFdt(host.fdt);
  const stateDir = openStateDir(args, given);
  if (stateDir?.restarted) checkStateDirSizes(stateDir, fdt, host);
  const tracer = args.trace === undefined ? undefined : new Tracer();
  if (tracer && args.trace !== undefined) tracer.attach(new TextSink(openTraceOutput(args.trace)));
  const machine = createMachine(fdt, {
    host,
    log: logKernel,
    memoryBudget: budget,
    ...(tracer ? { tracer } : {}),
    ...(counters ? { vfioTracer: counters } : {}),
    ...(stateDir ? { memory: (b: MemoryBudget) => stateDir.memoryFactory(b) } : {}),
  });
  return { machine, stateDir, dtb };
}

/**
 * The memories the state directory lists against the size their devices make them with (name →
 * size), found by opening served devices on a scratch machine whose memory lives in this
 * process (no file, no memfd): memory is made at a client's first open, too late to refuse.
 * Only until every listed memory is found: the devices whose address ends a listed name first
 * (GPU RAM, Grace device memory), then the others in address order while one is still missing
 * (ATSD pages are named by their MMIO address); a name no device makes is left alone, as before.
 * @throws CliError STATE_DIR naming the memory file (the directory's lock is released)
 */
function checkStateDirSizes(stateDir: StateDir, fdt: Fdt, host: Host): void {
  const listed = stateDir.listedMemories();
  if (listed.length === 0) return; // no client ever opened a device: nothing to compare
  const wanted = new Map<string, bigint>();
  // The host model is read-only: the one serve built, not a second build of the same tree.
  const scratch = createMachine(fdt, {
    host,
    memory: () => (name, size) => {
      wanted.set(name, size);
      return createProbeMemory(name, size);
    },
  });
  try {
    const served = scratch.servedFunctions();
    const named = (fn: { name: string }) => listed.some((n) => n.endsWith(`:${fn.name}`));
    for (const fn of [...served.filter(named), ...served.filter((fn) => !named(fn))]) {
      if (listed.every((n) => wanted.has(n))) break;
      const device = scratch.device(fn.name);
      try {
        device.open();
        device.close();
      } catch (err) {
        if (!(err instanceof VfioError)) throw err; // a failed probe: the real open says so
      }
    }
    stateDir.checkWantedSizes(wanted);
  } catch (err) {
    stateDir.close();
    if (err instanceof StateDirError) throw cliErrorOf('serve', err);
    throw err;
  } finally {
    scratch.dispose();
  }
}

/** --state-dir: the directory locked and checked. @throws CliError STATE_DIR naming the file */
function openStateDir(args: ServeArgs, dtb: Uint8Array): StateDir | undefined {
  if (args.stateDir === undefined) return undefined;
  // GPU RAM lives there in files clients map: the socket directory's rules, before any use.
  let created = true;
  try {
    makeDirectories(args.stateDir, 0o700);
  } catch {
    created = false; // StateDir.open names the failure
  }
  if (created) checkPrivateDir(args.stateDir, STATE_DIR);
  try {
    return StateDir.open(args.stateDir, dtb, { sync: args.sync, log });
  } catch (err) {
    if (err instanceof StateDirError) throw cliErrorOf('serve', err);
    throw err;
  }
}

/**
 * The uids the devices' memory went to, shared by every server; with --state-dir kept in
 * machine.state (written before a grant's fd is sent), so that a restart knows them. A restored
 * directory without a record (an older server's) went to uids not known.
 */
function givenMemory(stateDir: StateDir | undefined): GivenMemory {
  const given = new GivenMemory({
    record: stateDir?.givenBefore,
    othersUnknown: stateDir?.restarted ?? false,
    ...(stateDir ? { onChange: () => stateDir.saveMachine() } : {}),
  });
  stateDir?.keepGiven(() => given.record());
  return given;
}

/** Which devices go on which socket. @throws CliError for an unknown or unservable --device */
function plan(machine: Machine, args: ServeArgs): Map<string, string> {
  if (args.device !== undefined && args.socketPath !== undefined) {
    const address = parsePciAddress('serve', args.device);
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
      `cannot create ${args.socketDir} (${(err as NodeJS.ErrnoException).code ?? 'error'}); choose a --socket-dir whose parent you can write to`,
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
  given: GivenMemory,
) {
  const servers: VfioUserServer[] = [];
  let at = '';
  // The native fast path is off while a sink listens to what a region access reports.
  const traceActivity = machine.ctx.tracer.listening(REGION_ACCESS_TRACEPOINTS);
  try {
    for (const [address, socketPath] of sockets) {
      at = socketPath;
      const server = new VfioUserServer({
        device: machine.device(address),
        socketPath,
        partitions,
        given,
        log,
        info,
        ...(verbosity >= 2 ? { debug } : {}),
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
    if (isSystemCallError(err))
      throw new CliError(
        'serve',
        err.code as SystemErrnoName,
        `cannot listen on ${at}: ${messageWithoutCode(err)}; choose another --socket-dir (or --socket-path), or free the resource it names`,
      );
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
      log(`fault scan: ${messageOf(err)}`);
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
      log(`memory usage: ${messageOf(err)}`);
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

/**
 * Resolves with the exit status after the first SIGTERM, SIGINT or SIGHUP (0), or the first
 * failure of stdout or stderr (a closed pipe 141, else 1), has run `cleanup`.
 */
function untilStopped(cleanup: (why: string) => void): Promise<number> {
  return new Promise<number>((resolve) => {
    let done = false;
    const shutdown = (why: string, status: number) => {
      if (done) return;
      done = true;
      cleanup(why);
      setTimeout(() => process.exit(status), 2000).unref(); // should anything still hold the loop
      resolve(status);
    };
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const)
      process.once(signal, () => shutdown(signal, 0));
    onOutputFailure((f) =>
      shutdown(`${f.stream} failed (${f.code})`, f.closedPipe ? EXIT_CLOSED_PIPE : 1),
    );
  });
}

/**
 * --ready-fd N: checks at start that N was given to us open for writing, so that a wrong N is
 * one line before any socket exists. Node's own fds sit at 3 and up too (libuv's epoll and
 * eventfds, its self-pipes: both ends ours), and writing to one would hang the loop: those are
 * refused as not given (Linux /proc/self; elsewhere, fstat only). @throws CliError USAGE naming the fd
 */
function checkReadyFd(fd: number | undefined): void {
  if (fd === undefined) return;
  const refuse = (why: string) =>
    new CliError(
      'serve',
      'USAGE',
      `--ready-fd ${fd}: ${why}; open it for writing in the command that starts serve, e.g. ${fd}>FILE`,
    );
  try {
    fstatSync(fd);
  } catch {
    throw refuse('not an open file descriptor (EBADF)');
  }
  let target: string;
  let info: string;
  try {
    target = readlinkSync(`/proc/self/fd/${fd}`);
    info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  } catch {
    return; // no /proc: fstat said it is open
  }
  const sameElsewhere = () =>
    readdirSync('/proc/self/fd').some((other) => {
      if (other === String(fd)) return false;
      try {
        return readlinkSync(`/proc/self/fd/${other}`) === target;
      } catch {
        return false;
      }
    });
  if (target.startsWith('anon_inode:') || (target.startsWith('pipe:') && sameElsewhere()))
    throw refuse('not an open file descriptor given to serve (EBADF)');
  const flags = Number.parseInt(/^flags:\s*([0-7]+)/m.exec(info)?.[1] ?? '1', 8);
  if ((flags & 3) === constants.O_RDONLY) throw refuse('open for reading only');
}

/** READY=1 to the --ready-fd (sd_notify's word), then closes it; a failure is logged. */
function notifyReady(fd: number | undefined): void {
  if (fd === undefined) return;
  try {
    writeSync(fd, 'READY=1\n');
  } catch (err) {
    log(
      `--ready-fd ${fd}: cannot write READY=1 (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  try {
    closeSync(fd);
  } catch {
    // closed already: nothing to release
  }
}

/** How each file serve writes in its socket directory is recognised as an earlier serve's. */
const OWN_FILES: readonly [name: string, recognise: (path: string) => void][] = [
  ['devices.json', (path) => void readDevicesList(path)],
  ['state.json', (path) => void readServeState(path)],
  [
    'platform.dtb',
    (path) => {
      // Its magic alone, from a regular file (a FIFO or a link planted there is not a DTB).
      const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      try {
        const head = Buffer.alloc(4);
        const isDtb =
          fstatSync(fd).isFile() &&
          readSync(fd, head, 0, 4, 0) === 4 &&
          head.readUInt32BE(0) === 0xd00dfeed;
        if (!isDtb) throw new Error('not a DTB');
      } finally {
        closeSync(fd);
      }
    },
  ],
];

/**
 * serve replaces DIR/devices.json, state.json and platform.dtb, and removes them at exit: only
 * what an earlier serve left there (killed before it could clean up) may be replaced, never a
 * file of the user's of the same name (issue 13.3). Checked before the first socket listens.
 * @throws CliError SOCKET_DIR naming the file that serve did not write.
 */
function checkOwnFiles(dir: string): void {
  for (const [name, recognise] of OWN_FILES) {
    const path = `${dir}/${name}`;
    try {
      lstatSync(path);
    } catch {
      continue; // not there (or not reachable: writing it will say so)
    }
    try {
      recognise(path);
    } catch (err) {
      const why = messageWithoutCode(err).replace(`${path}: `, '');
      throw new CliError(
        'serve',
        'SOCKET_DIR',
        `${path} is there and is not a file serve wrote (${why}); move it away or choose another --socket-dir`,
      );
    }
  }
}

/**
 * Removes the temporaries of DIR/devices.json, state.json and platform.dtb that a serve killed
 * while writing one left (replaceFile's, ours by name: removeLeftTemporaries), each with a
 * line; kept, they piled up with every such kill.
 */
function removeOwnTemporaries(dir: string): void {
  const own = new Set(OWN_FILES.map(([name]) => name));
  try {
    for (const path of removeLeftTemporaries(dir, (file) => own.has(file)))
      log(`${path}: removed (a temporary a killed serve left)`);
  } catch (err) {
    log(`cannot remove the temporaries in ${dir}: ${messageOf(err)}`);
  }
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
      log(`cannot write ${path}: ${messageOf(err)}`);
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
    await printLine(SERVE_USAGE);
    return 0;
  }
  verbosity = args.verbosity;
  checkReadyFd(args.readyFd);
  const budget = memoryBudget(args);
  const optional = await importOptional(args);
  const counters = optional.live ? new optional.live.LiveCounters() : undefined;
  const { machine, stateDir, dtb } = buildMachine(args, budget.bytes, counters);
  const partitions = new PartitionRegistry(machine.lpids, args.lpid);
  let stateLine: string | undefined;
  try {
    stateLine = stateDir?.attach(machine, partitions);
  } catch (err) {
    stateDir?.close();
    if (err instanceof StateDirError) throw cliErrorOf('serve', err);
    throw err;
  }
  const sockets = plan(machine, args);
  if (args.device === undefined) {
    checkOwnFiles(args.socketDir);
    removeOwnTemporaries(args.socketDir);
  }
  setDmaSessionCount(sockets.size); // each device's share of the fds DMA maps may hold
  const few = dmaLimitsWarning();
  if (few) log(few);
  const dirMode = args.device === undefined;
  const state = stateWriter(args, machine, partitions);
  const writeState = () => {
    stateDir?.saveMachine(); // a partition opened or released a device: LPIDs, NPU tables
    state.write();
  };
  let devicesWritten: FileIdentity | undefined;
  let platformWritten: FileIdentity | undefined;
  // Signals are handled from before the first socket listens: whoever sees a socket, or the
  // table (its write can wake the reader before our next instruction runs), may stop us then.
  let stop = (_signal: string): void => {};
  const stopped = untilStopped((why) => stop(why));
  const servers = startServers(
    machine,
    sockets,
    partitions,
    writeState,
    args,
    givenMemory(stateDir),
  );
  info(budget.line);
  if (stateLine) info(stateLine);
  // The fault scan runs while anyone can see what it finds: --trace, --http, an attached trace.
  const alwaysScan = args.trace !== undefined || args.http !== undefined;
  let duties = alwaysScan ? startFaultScan(machine) : undefined;
  const memoryWatch = dirMode ? startMemoryWatch(machine, state.write) : undefined;
  let page: LivePage | undefined;
  let control: TraceControl | undefined;
  let stopping = false;
  stop = (why) => {
    if (stopping) return;
    stopping = true;
    // A failed stdout or stderr is the one line run's caller prints; a signal is logged here.
    if (!why.includes('failed')) info(`${why}: closing ${servers.length} sockets`);
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
    stateDir?.close();
  };
  if (args.http !== undefined && optional.live) {
    try {
      page = await optional.live.startLivePage({
        machine,
        partitions,
        served: new Set(sockets.keys()),
        session: (address) => servers.find((s) => s.device.name === address)?.session,
        ...(counters ? { counters } : {}),
        port: args.http,
      });
    } catch (err) {
      stop('error');
      throw new CliError('serve', 'USAGE', `--http ${args.http}: ${messageOf(err)}`, 1);
    }
    if (stopping) {
      page.close(); // a signal came while the page started: nothing more is created
      return stopped;
    }
    info(`live page on ${page.url}`);
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
      throw new CliError('serve', 'SOCKET_PATH', `trace control socket: ${messageOf(err)}`);
    }
  }
  const entries = deviceEntries(machine, sockets);
  if (dirMode) {
    // machine.state is written once ready (below); state.json now, as readers expect it.
    state.write();
    // The tree served, for `topology --socket-dir` (public like devices.json).
    platformWritten = replaceFile(`${args.socketDir}/platform.dtb`, dtb, { mode: DEVICES_MODE });
    devicesWritten = writeJsonAtomically(`${args.socketDir}/devices.json`, entries, DEVICES_MODE);
  }
  try {
    await writeStdout(
      args.json
        ? `${JSON.stringify(entries, null, 2)}\n`
        : `${formatDeviceTable(entries)}\nready: ${servers.length} socket${servers.length === 1 ? '' : 's'}\n`,
    );
  } catch (err) {
    if (!(err instanceof OutputError)) throw err;
    return stopped; // stopped already (untilStopped): sockets and files removed
  }
  if (stopping) return stopped;
  notifyReady(args.readyFd);
  // machine.state after the ready signal: the one on disk restarts to the same machine (see
  // StateDir.attach), and clients that connected meanwhile wait in the backlog until this returns.
  stateDir?.saveMachine();
  return stopped;
}
