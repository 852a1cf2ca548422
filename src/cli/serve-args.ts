/**
 * `vfio-nvlink2 serve` arguments. `--socket-path=PATH` with `--device ADDRESS` is the
 * vfio-user backend convention (vfio-user.rst "Server": take --socket-path, do not daemonize,
 * exit on SIGTERM).
 */
import { parseCliArgs as parseArgs } from './args.ts';
import { CliError, usageError } from './cli-error.ts';
import { parseSize } from './memory-size.ts';

/** `serve --help`. */
export const SERVE_USAGE = `usage: vfio-nvlink2 serve [--dt FILE] [--socket-dir DIR] [--lpid N] [--allow-uid UID[,UID]] [--memory-budget SIZE]
                          [--idle-timeout SECONDS] [--stall-timeout SECONDS] [--trace FILE|-] [--json]
                          [--http PORT] [--ready-fd N] [--quiet | --verbose] [--state-dir DIR [--sync]]
       vfio-nvlink2 serve [--dt FILE] --device ADDRESS --socket-path PATH [--lpid N] [--allow-uid UID[,UID]]
                          [--memory-budget SIZE] [--idle-timeout SECONDS] [--stall-timeout SECONDS] [--trace FILE|-]
                          [--ready-fd N] [--quiet | --verbose] [--state-dir DIR [--sync]]

  Serve every GPU and NVLink bridge of the platform (FILE, a DTB or DTS; default: the built-in
  6-GPU Witherspoon) over vfio-user, one socket each: DIR/<DDDD:BB:DD.F>.sock, with
  DIR/devices.json listing every PCI function and DIR/state.json the partitions and NPU tables;
  DIR/trace.ctl (0600) is where \`vfio-nvlink2 trace\` attaches to stream the tracepoints live.
  DIR defaults to $XDG_RUNTIME_DIR/vfio-nvlink2, else /tmp/vfio-nvlink2-<uid>; it must be ours,
  not a symlink, writable by nobody else. Sockets are 0600 whatever the umask.
  --dt FILE               the platform: a DTB, or a DTS (recognised by its content, compiled with
                          dtc); - reads it from stdin
  --socket-dir DIR        where the sockets and JSON files go
  --device/--socket-path  serve one device on PATH (the backend convention); ADDRESS is a PCI
                          name like 0002:01:00.0 (\`dt doctor\` lists them)
  --lpid N                every partition gets LPID N (1..4094) instead of KVM's allocator
  --allow-uid UID[,UID]   also serve clients of these uids (by default only our own, and root)
  --memory-budget SIZE    device memory (GPU RAM, BARs) all clients may populate together, e.g.
                          8G, 512M, 1048576; writes past it fail with ENOMEM (default: half of
                          the host's MemAvailable)
  --trace FILE|-          write NVLink2 tracepoints as ftrace text to FILE (- for stderr)
  --json                  print devices.json to stdout instead of the table
  --http PORT             a read-only live page on http://127.0.0.1:PORT/ (0: any free port):
                          topology, clients and LPIDs, GPU RAM heat strips, NPU tables, trace
  --state-dir DIR         keep every device in DIR (GPU RAM, BARs, ATSD pages as sparse files;
                          config space, NPU tables, LPIDs): a server restarted on DIR after a
                          crash or kill -9 serves every device as it was (one server per DIR)
  --sync                  with --state-dir, also flush each acknowledged write to disk
                          (fdatasync: power loss safe, slower)
  --idle-timeout SECONDS  close a connection without VERSION after this long (default 60, 0 never)
  --stall-timeout SECONDS close a client that stops sending inside a message for this long
                          (default 60, 0 never)
  --ready-fd N            once every socket accepts, write READY=1 and a newline to fd N
                          (3..1023, open for writing; sd_notify's word) and close it
  --quiet                 log warnings and errors only
  --verbose               also log what a VMM merely probes (a region or IRQ the device lacks,
                          e.g. region 8, VGA) and connections before VERSION
  Log lines go to stderr with an ISO 8601 UTC timestamp: start, each client's connect and
  disconnect (device, pid, partition, LPID), warnings.
  Runs in the foreground; SIGTERM, SIGINT or SIGHUP closes the clients, removes the sockets and
  the JSON files, exits 0. A closed stdout or stderr (a reader that exits) stops it the same
  way, quietly (status 141); a full one (ENOSPC) with one line (status 1).`;

/** `serve`'s parsed command line (times in ms, the budget in bytes). */
export interface ServeArgs {
  readonly dt: string | undefined;
  readonly socketDir: string;
  readonly device: string | undefined;
  readonly socketPath: string | undefined;
  readonly lpid: number | undefined;
  /** Client uids admitted besides our own and root's (SO_PEERCRED). */
  readonly allowUids: readonly number[];
  /** Bytes; undefined for the default (memory-size.ts defaultMemoryBudget). */
  readonly memoryBudget: bigint | undefined;
  readonly trace: string | undefined;
  readonly json: boolean;
  /** Milliseconds; undefined: the server's default. */
  readonly idleTimeoutMs: number | undefined;
  readonly stallTimeoutMs: number | undefined;
  /** The live page's port on 127.0.0.1 (0: any free port); undefined: no page. */
  readonly http: number | undefined;
  /** serve --state-dir: where device state survives restarts; undefined: memory only. */
  readonly stateDir: string | undefined;
  /** --sync: fdatasync each acknowledged write (with --state-dir). */
  readonly sync: boolean;
  /** The fd that gets READY=1 once every socket accepts; undefined: none. */
  readonly readyFd: number | undefined;
  /** 0 --quiet (warnings), 1 default (+ start, connect, disconnect), 2 --verbose (+ probes). */
  readonly verbosity: 0 | 1 | 2;
}

/** $XDG_RUNTIME_DIR/vfio-nvlink2, else /tmp/vfio-nvlink2-<uid>. */
export function defaultSocketDir(env: NodeJS.ProcessEnv = process.env): string {
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime) return `${runtime}/vfio-nvlink2`;
  return `/tmp/vfio-nvlink2-${process.getuid?.() ?? 0}`;
}

function parseLpid(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 0xffe) {
    throw new CliError(
      'serve',
      'USAGE',
      `--lpid must be an integer from 1 to 4094 (0 is the host, 4095 reserved), not '${text}'`,
    );
  }
  return n;
}

/** `--allow-uid 1000,1001 --allow-uid 107`: uids 0..4294967294 (-1 is no uid). */
function parseUids(texts: readonly string[]): number[] {
  return texts.flatMap((text) =>
    text.split(',').map((item) => {
      const n = /^\d{1,10}$/.test(item) ? Number(item) : Number.NaN;
      if (!(n <= 0xffff_fffe)) {
        throw new CliError(
          'serve',
          'USAGE',
          `--allow-uid takes uids from 0 to 4294967294 separated by commas, not '${text}'`,
        );
      }
      return n;
    }),
  );
}

function parseBudget(text: string | undefined): bigint | undefined {
  if (text === undefined) return undefined;
  const bytes = parseSize(text);
  if (bytes === undefined || bytes === 0n) {
    throw new CliError(
      'serve',
      'USAGE',
      `--memory-budget must be a positive size like 8G, 512M or 1048576 (bytes), not '${text}'`,
    );
  }
  return bytes;
}

/** SECONDS (a decimal, ≥ 0) as milliseconds. @throws CliError (exit 2) */
function parseSeconds(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < 0 || n > 86_400) {
    throw new CliError('serve', 'USAGE', `${flag} takes seconds from 0 to 86400, not '${text}'`);
  }
  return Math.round(n * 1000);
}

function parsePort(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = /^\d{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(n <= 65535))
    throw new CliError('serve', 'USAGE', `--http takes a port from 0 to 65535, not '${text}'`);
  return n;
}

function parseReadyFd(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = /^\d{1,4}$/.test(text) ? Number(text) : Number.NaN;
  if (!(n >= 3 && n <= 1023))
    throw new CliError(
      'serve',
      'USAGE',
      `--ready-fd must be a file descriptor from 3 to 1023 (0-2 are stdin, stdout, stderr), not '${text}'`,
    );
  return n;
}

/** @throws CliError (exit 2) for bad usage. */
export function parseServeArgs(argv: string[]): ServeArgs | 'help' {
  let values: ReturnType<typeof parse>['values'];
  let positionals: string[];
  try {
    ({ values, positionals } = parse(argv));
  } catch (err) {
    throw usageError('serve', err);
  }
  if (values.help) return 'help';
  if (positionals.length > 0)
    throw new CliError(
      'serve',
      'USAGE',
      `unexpected argument '${positionals[0]}'\n\n${SERVE_USAGE}`,
    );
  if (values.quiet && values.verbose)
    throw new CliError('serve', 'USAGE', '--quiet or --verbose, not both');
  if ((values.device === undefined) !== (values['socket-path'] === undefined)) {
    throw new CliError('serve', 'USAGE', '--device and --socket-path go together');
  }
  if (values.sync && values['state-dir'] === undefined)
    throw new CliError('serve', 'USAGE', '--sync goes with --state-dir DIR');
  return {
    dt: values.dt,
    socketDir: values['socket-dir'] ?? defaultSocketDir(),
    device: values.device,
    socketPath: values['socket-path'],
    lpid: parseLpid(values.lpid),
    allowUids: parseUids(values['allow-uid'] ?? []),
    memoryBudget: parseBudget(values['memory-budget']),
    trace: values.trace,
    json: values.json ?? false,
    idleTimeoutMs: parseSeconds('--idle-timeout', values['idle-timeout']),
    stallTimeoutMs: parseSeconds('--stall-timeout', values['stall-timeout']),
    http: parsePort(values.http),
    stateDir: values['state-dir'],
    sync: values.sync ?? false,
    readyFd: parseReadyFd(values['ready-fd']),
    verbosity: values.quiet ? 0 : values.verbose ? 2 : 1,
  };
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      dt: { type: 'string' },
      'socket-dir': { type: 'string' },
      device: { type: 'string' },
      'socket-path': { type: 'string' },
      lpid: { type: 'string' },
      'allow-uid': { type: 'string', multiple: true },
      'memory-budget': { type: 'string' },
      trace: { type: 'string' },
      json: { type: 'boolean' },
      'idle-timeout': { type: 'string' },
      'stall-timeout': { type: 'string' },
      http: { type: 'string' },
      'state-dir': { type: 'string' },
      sync: { type: 'boolean' },
      'ready-fd': { type: 'string' },
      quiet: { type: 'boolean', short: 'q' },
      verbose: { type: 'boolean', short: 'v' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
