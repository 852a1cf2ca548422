/**
 * `vfio-nvlink2 trace [--socket-dir DIR] [--events LIST] [--json]`: attaches to a running
 * `serve --socket-dir DIR` through `DIR/trace.ctl` (src/cli/trace-control.ts) and streams its
 * tracepoints live: ftrace text on stdout (`task-pid [cpu] seconds.micros: event: message`, the
 * layout of /sys/kernel/tracing/trace), or with --json Chrome trace-event JSON (the JSON Array
 * Format, closed on SIGINT/SIGTERM or when serve goes) that Perfetto's UI and chrome://tracing
 * open. Runs until interrupted or serve exits; detaching leaves serve as it was.
 */
import { createConnection } from 'node:net';
import { messageOf } from '../errors/index.ts';
import { parseCliArgs as parseArgs } from './args.ts';
import { CliError } from './cli-error.ts';
import { printLine } from './output.ts';
import { defaultSocketDir } from './serve-args.ts';
import {
  CONTROL_SOCKET,
  parseEventList,
  parseTraceMessage,
  type TraceMessage,
} from './trace-control.ts';

const USAGE = `usage: vfio-nvlink2 trace [--socket-dir DIR] [--events LIST] [--json]

Streams the tracepoints of a running \`serve --socket-dir DIR\` until Ctrl-C.
  --socket-dir DIR  the serve to attach to (default: serve's default directory)
  --events LIST     comma-separated events or systems (vfio_pci, vfio_nvlink2); default all
  --json            Chrome trace-event JSON (open it in https://ui.perfetto.dev) instead of
                    ftrace text`;

interface TraceArgs {
  readonly socketDir: string;
  readonly events: string[] | null;
  readonly json: boolean;
}

function parse(argv: string[]): TraceArgs | 'help' {
  let values: { 'socket-dir'?: string; events?: string; json?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        'socket-dir': { type: 'string' },
        events: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new CliError('trace', 'USAGE', `${messageOf(err)}\n\n${USAGE}`);
  }
  if (values.help) return 'help';
  let events: string[] | null = null;
  if (values.events !== undefined) {
    try {
      events = parseEventList(values.events);
    } catch (err) {
      throw new CliError('trace', 'USAGE', `--events: ${messageOf(err)}`);
    }
  }
  return {
    socketDir: values['socket-dir'] ?? defaultSocketDir(),
    events,
    json: values.json ?? false,
  };
}

/**
 * `vfio-nvlink2 trace`: streams serve's tracepoints until interrupted or serve goes; returns
 * the exit status (0).
 * @throws CliError USAGE (bad arguments or `--events`), SOCKET_PATH (no serve at `DIR/trace.ctl`).
 */
export async function run(argv: string[]): Promise<number> {
  const args = parse(argv);
  if (args === 'help') {
    await printLine(USAGE);
    return 0;
  }
  const path = `${args.socketDir}/${CONTROL_SOCKET}`;
  const socket = createConnection(path);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new CliError(
          'trace',
          'SOCKET_PATH',
          `cannot attach to serve at ${path} (${err.code ?? err.message}): is \`serve --socket-dir ${args.socketDir}\` running?`,
        ),
      ),
    );
  });
  socket.write(`${JSON.stringify({ events: args.events })}\n`);

  const out = process.stdout;
  let first = true;
  let closed = false;
  out.on('error', () => socket.destroy()); // a closed pipe (| head): just stop
  const finish = () => {
    if (closed) return;
    closed = true;
    if (args.json) out.write(first ? '[]\n' : '\n]\n');
  };
  const event = (e: object) => {
    out.write(`${first ? '[\n' : ',\n'}${JSON.stringify(e)}`);
    first = false;
  };

  return new Promise<number>((resolve, reject) => {
    let buffered = '';
    let failure: string | undefined;
    let garbled: string | undefined;
    const onSignal = () => socket.destroy();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        let m: TraceMessage;
        try {
          m = parseTraceMessage(path, buffered.slice(0, nl));
        } catch (err) {
          // Not serve's trace socket, or not this version's: say so, read nothing more.
          garbled = messageOf(err);
          socket.destroy();
          return;
        }
        buffered = buffered.slice(nl + 1);
        if ('error' in m) failure = m.error;
        else if ('attached' in m) {
          process.stderr.write(
            `trace: attached to serve pid ${m.attached.pid} (${args.events ? m.attached.events.join(',') : 'every event'}); Ctrl-C detaches\n`,
          );
          if (args.json)
            event({
              name: 'process_name',
              ph: 'M',
              pid: m.attached.pid,
              args: { name: 'vfio-nvlink2 serve' },
            });
        } else if ('lost' in m) {
          // ftrace's own marker for dropped records (trace.c: "CPU:%d [LOST %lu EVENTS]").
          if (args.json)
            event({ name: 'lost', ph: 'i', s: 'g', ts: 0, pid: 0, args: { lost: m.lost } });
          else out.write(`CPU:0 [LOST ${m.lost} EVENTS]\n`);
        } else if (args.json) event(m.event);
        else out.write(`${m.line}\n`);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      finish();
      if (garbled !== undefined) reject(new CliError('trace', 'EPROTO', garbled));
      else if (failure !== undefined)
        reject(new CliError('trace', 'USAGE', `serve refused: ${failure}`));
      else resolve(0);
    });
  });
}
