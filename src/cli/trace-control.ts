/**
 * The trace control socket of `serve --socket-dir DIR`: `DIR/trace.ctl`, mode 0600 like the
 * device sockets (and ours or root's only, checked again with SO_PEERCRED; it stays 0600 with
 * --allow-uid: a trace shows every partition's work, as state.json does). `vfio-nvlink2 trace`
 * connects and sends one request line; serve then streams tracepoints until it goes.
 *
 * Wire (JSON lines both ways):
 *   client → {"events": ["vfio_pci_nvgpu_mmap", ...] | null}      (null: every event)
 *   serve  → {"attached": {"pid": N, "events": [...]}}  then per record
 *            {"line": "<ftrace text line>", "event": <Chrome trace event>}
 *            {"lost": N}  when N records were dropped for a reader that fell behind
 *            {"error": "..."} and close, for a bad request
 * A sink is attached only while a client is attached (with the events it asked for): with none,
 * every tracepoint costs what it always did, one `enabled()` check (src/trace/tracer.ts).
 */
import { unlinkSync } from 'node:fs';
import { Socket } from 'node:net';
import { messageOf } from '../errors/index.ts';
import {
  acceptConnection,
  closeFd,
  FdEvent,
  FdWatcher,
  listenUnix,
  peerCredentials,
} from '../native/index.ts';
import { type JsonObject, JsonReader, parseJson } from '../text/index.ts';
import {
  type ChromeTraceEvent,
  formatFtraceLine,
  TRACE_EVENTS,
  type TraceEventName,
  type TraceRecord,
  type Tracer,
  toChromeTraceEvent,
} from '../trace/index.ts';
import { claimSocketPath, ourUid } from '../vfio-user/index.ts';

/** The control socket's name in the socket directory. */
export const CONTROL_SOCKET = 'trace.ctl';
/** Longest request line. */
const MAX_REQUEST = 4096;
/** Bytes queued for a slow reader before records are dropped (and counted as lost). */
const MAX_QUEUED = 4 * 1024 * 1024;

/** A client's request line: the events to stream, or null for every event. */
export interface TraceRequest {
  readonly events: readonly TraceEventName[] | null;
}

/** A line serve sends a trace client: attached, one record (ftrace line and Chrome event), lost records, or an error. */
export type TraceMessage =
  | { readonly attached: { readonly pid: number; readonly events: readonly string[] } }
  | { readonly line: string; readonly event: ChromeTraceEvent }
  | { readonly lost: number }
  | { readonly error: string };

const isObject = (v: unknown): v is JsonObject =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Most event names an `attached` message lists (there are fewer events than this). */
const MAX_EVENTS = 1024;

/**
 * One line serve sent on the trace socket `path`, checked member by member.
 * @throws Error, one line naming `path` and the member: not JSON, not one of the four
 *   messages, a member missing or of another type.
 */
export function parseTraceMessage(path: string, line: string): TraceMessage {
  const r = new JsonReader(path, (message) => new Error(message));
  const o = r.object('the message', r.parse(line));
  if ('error' in o) return { error: r.string('error', o.error) };
  if ('lost' in o) return { lost: r.count('lost', o.lost) };
  if ('attached' in o) {
    const a = r.object('attached', o.attached);
    const pid = r.count('attached.pid', a.pid);
    const events = r.array('attached.events', a.events, MAX_EVENTS);
    return {
      attached: { pid, events: events.map((e, i) => r.string(`attached.events[${i}]`, e)) },
    };
  }
  const e = r.object('event', o.event);
  const args: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(r.object('event.args', e.args))) {
    if (typeof v !== 'string' && typeof v !== 'number')
      throw r.wrong(`event.args.${k}`, 'a string or a number', v);
    args[k] = v;
  }
  if (e.ph !== 'i') throw r.wrong('event.ph', '"i"', e.ph);
  if (e.s !== 't') throw r.wrong('event.s', '"t"', e.s);
  if (typeof e.ts !== 'number' || !Number.isFinite(e.ts))
    throw r.wrong('event.ts', 'a number', e.ts);
  return {
    line: r.string('line', o.line),
    event: {
      name: r.string('event.name', e.name),
      cat: r.string('event.cat', e.cat),
      ph: 'i',
      s: 't',
      ts: e.ts,
      pid: r.count('event.pid', e.pid),
      tid: r.count('event.tid', e.tid),
      args,
    },
  };
}

/**
 * `--events` text: comma-separated event names or systems (`vfio_pci`, `vfio_nvlink2`).
 * @throws Error naming the first unknown name.
 */
export function parseEventList(text: string): TraceEventName[] {
  const all = Object.values(TRACE_EVENTS);
  const out = new Set<TraceEventName>();
  for (const raw of text.split(',')) {
    const name = raw.trim();
    if (name === '') continue;
    const system = all.filter((d) => d.system === name);
    if (system.length > 0) for (const d of system) out.add(d.name);
    else if (name in TRACE_EVENTS) out.add(name as TraceEventName);
    else
      throw new Error(
        `unknown event '${name}' (events: ${Object.keys(TRACE_EVENTS).join(', ')}; systems: vfio_pci, vfio_nvlink2)`,
      );
  }
  if (out.size === 0) throw new Error(`no event in '${text}'`);
  return [...out];
}

function parseRequest(line: string): TraceRequest {
  let value: unknown;
  try {
    value = parseJson(line);
  } catch {
    throw new Error('the request is not JSON');
  }
  const events = isObject(value) ? value.events : undefined;
  if (events === null) return { events: null };
  if (!Array.isArray(events) || !events.every((e: unknown) => typeof e === 'string'))
    throw new Error('"events" must be null or a list of event names');
  return { events: parseEventList(events.join(',')) };
}

/** A listening trace control socket: its path, the clients attached now, and close(). */
export interface TraceControl {
  readonly path: string;
  /** Clients attached now. */
  readonly clients: number;
  close(): void;
}

/**
 * Listens on `path` (claimed like a device socket) and serves `tracer` to trace clients.
 * @throws SocketPathError, SystemCallError from bind/listen.
 */
export function startTraceControl(
  path: string,
  tracer: Tracer,
  log: (line: string) => void,
  /** Called with the number of attached clients whenever it changes. */
  onAttached: (clients: number) => void = () => {},
): TraceControl {
  let attached = 0;
  claimSocketPath(path);
  const listenFd = listenUnix(path, 16, 0o600);
  const sockets = new Set<Socket>();
  const adopt = (fd: number) => {
    let pid: number;
    let uid: number;
    try {
      ({ pid, uid } = peerCredentials(fd));
    } catch (err) {
      closeFd(fd);
      log(`${path}: no peer credentials: ${messageOf(err)}`);
      return;
    }
    if (uid !== ourUid() && uid !== 0) {
      closeFd(fd);
      log(`${path}: refusing pid ${pid} of uid ${uid}: not our uid ${ourUid()}`);
      return;
    }
    const socket = new Socket({ fd, readable: true, writable: true });
    sockets.add(socket);
    let detach: (() => void) | undefined;
    let request = '';
    let lost = 0;
    const send = (m: TraceMessage) => socket.write(`${JSON.stringify(m)}\n`);
    const sink = {
      write(record: TraceRecord) {
        if (socket.writableLength > MAX_QUEUED) {
          lost++;
          return;
        }
        if (lost > 0) {
          send({ lost });
          lost = 0;
        }
        send({ line: formatFtraceLine(record), event: toChromeTraceEvent(record) });
      },
    };
    socket.on('data', (chunk: Buffer) => {
      if (detach) return; // one request per connection; anything after it is ignored
      request += chunk.toString('utf8');
      const nl = request.indexOf('\n');
      if (nl < 0) {
        if (request.length > MAX_REQUEST) {
          send({ error: `request longer than ${MAX_REQUEST} bytes` });
          socket.end();
        }
        return;
      }
      try {
        const r = parseRequest(request.slice(0, nl));
        detach = tracer.attach(sink, r.events ?? undefined);
        onAttached(++attached);
        send({
          attached: { pid: process.pid, events: r.events ?? Object.keys(TRACE_EVENTS) },
        });
        log(`trace: pid ${pid} attached (${r.events ? r.events.join(',') : 'every event'})`);
      } catch (err) {
        send({ error: messageOf(err) });
        socket.end();
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      sockets.delete(socket);
      if (detach) {
        detach();
        onAttached(--attached);
        log(`trace: pid ${pid} detached`);
      }
    });
  };
  let retry: NodeJS.Timeout | undefined;
  const watcher: FdWatcher = new FdWatcher(listenFd, FdEvent.READABLE, () => {
    try {
      for (let fd = acceptConnection(listenFd); fd !== null; fd = acceptConnection(listenFd))
        adopt(fd);
    } catch (err) {
      // The connection stays pending (e.g. EMFILE): pause rather than spin, try again later.
      log(`${path}: accept failed: ${messageOf(err)}`);
      watcher.set(0);
      retry = setTimeout(() => watcher.set(FdEvent.READABLE), 1000);
    }
  });
  return {
    path,
    get clients() {
      return sockets.size;
    },
    close() {
      clearTimeout(retry);
      watcher.close();
      closeFd(listenFd);
      try {
        unlinkSync(path);
      } catch {
        // already gone
      }
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
  };
}
