/**
 * A vfio-user server for ONE vfio-pci device on one UNIX socket (vfio-user.rst "Server";
 * libvfio-user's vfu_create_ctx + vfu_attach_ctx, event-driven). One client at a time: while
 * a session is connected, another connection is answered once — its first message gets an
 * EBUSY error reply — and closed, leaving the first session alone (libvfio-user, by contrast,
 * does not accept at all until its client is gone). The device (and its state)
 * belongs to the caller and outlives every session, so a client can reconnect and find its
 * data. Which partition (LPID) a client's device joins is the owner's PartitionPolicy.
 *
 * Bounds: a connection that has not completed VERSION within the idle timeout is closed, and
 * so is one whose peer stalls inside a message (the transport's stall timeout); a session
 * whose client leaves replies unread stops being read (back-pressure, `maxQueuedBytes`). When
 * accept fails (EMFILE/ENFILE: out of fds), the server stops watching the listening socket,
 * logs once, and retries with a backoff, or at once when one of its connections closes.
 */

import { messageOf } from '../../errors/index.ts';
import {
  acceptConnection,
  closeFd,
  FdEvent,
  FdWatcher,
  isSystemCallError,
  listenUnix,
  peerCredentials,
  sendBuffer,
} from '../../native/index.ts';
import type { VfioPciDevice } from '../../vfio/index.ts';
import { Errno } from '../../vfio/index.ts';
import type { FramedMessage } from '../wire/index.ts';
import { Connection, errorReplyHeader, isReply, wantsReply } from '../wire/index.ts';
import { LOG_RATE_SOCKET_BURST, RateLimitedLog } from './log-rate-limit.ts';
import { GivenMemory } from './memory-holders.ts';
import type { PartitionPolicy } from './partition-policy.ts';
import {
  claimSocketPath,
  type FileIdentity,
  fileIdentity,
  ourUid,
  unlinkIfOurs,
} from './server-socket-path.ts';
import { SERVER_FRAMER_LIMITS, Session } from './session.ts';

/**
 * Options of `VfioUserServer`: the device, socket path, partition policy, log, allowed uids, idle
 * and stall timeouts (ms) and the unsent-bytes bound.
 */
export interface VfioUserServerOptions {
  readonly device: VfioPciDevice;
  readonly socketPath: string;
  /**
   * The uids the devices' memory went to (GivenMemory), shared by every server of the process
   * (devices can share memory: an ATSD page); a restored state directory's says what it kept.
   * Undefined: this server's own, empty.
   */
  readonly given?: GivenMemory;
  /**
   * Which LPID a client's device joins when it opens it: policy from the owner (serve gives
   * machine/partitions.ts, one partition per peer process), shared by every server of the
   * process.
   */
  readonly partitions: PartitionPolicy;
  /**
   * One line per event worth a log (errors, refusals, framing failures); what clients cause is
   * rate-limited per server (log-rate-limit.ts: 10 lines per 5 s, then a count).
   */
  readonly log?: (line: string) => void;
  /**
   * A client's connect (device opened: pid, partition, LPID) and disconnect, one line each,
   * rate-limited per socket as `log`; undefined: not logged.
   */
  readonly info?: (line: string) => void;
  /**
   * What a VMM merely probes and the device refuses as the kernel would (GET_REGION_INFO or
   * GET_IRQ_INFO of an index it lacks, e.g. region 8, VGA), and connections accepted before
   * VERSION; rate-limited as `log`; undefined: not logged (they are no error).
   */
  readonly debug?: (line: string) => void;
  /** Called after a session opened or released the device. */
  readonly onChange?: () => void;
  /**
   * Peer uids served besides our own and root's (SO_PEERCRED); any other peer is refused.
   * When given, the socket is 0666 (this check is then the gate), else 0600.
   */
  readonly allowUids?: readonly number[];
  /** Closes a connection that has not completed VERSION after this many ms; 0: never. */
  readonly idleTimeoutMs?: number;
  /** Closes a peer that sends nothing for this many ms inside a message; 0: never. */
  readonly stallTimeoutMs?: number;
  /** Unsent reply bytes past which a connection is not read until they drain (back-pressure). */
  readonly maxQueuedBytes?: number;
  /** Sinks listening to region-access tracepoints (SessionOptions.traceActivity). */
  readonly traceActivity?: Int32Array;
}

/** Default idle timeout before VERSION: QEMU sends VERSION as soon as it connects. */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** Default stall timeout inside a message: a VMM sends each message with one sendmsg. */
export const DEFAULT_STALL_TIMEOUT_MS = 60_000;
/** Default bound on a connection's unsent replies: a few 1 MiB REGION_READ replies. */
export const DEFAULT_MAX_QUEUED_BYTES = 4 * 1024 * 1024;

/** Send-buffer bytes asked beyond the largest message (the skb bookkeeping's share). */
const SEND_BUFFER_SLACK = 64 * 1024;

/** First and longest wait before accept is tried again after a failure. */
const ACCEPT_RETRY_FIRST_MS = 10;
const ACCEPT_RETRY_MAX_MS = 1000;

/**
 * One device on one UNIX socket (0600, or open to the uids of `allowUids`): serves one client at a
 * time with a `Session` (others wait) and refuses peers whose uid is not allowed.
 */
export class VfioUserServer {
  readonly #options: VfioUserServerOptions;
  #listenFd = -1;
  /** The socket file bind(2) made: removed at close only while it is still this inode. */
  #bound: FileIdentity | undefined;
  #watcher: FdWatcher | undefined;
  #session: Session | undefined;
  readonly #waiting = new Set<Connection>();
  /** The uids the devices' memory went to since it was last renewed (memory-holders.ts). */
  readonly #given: GivenMemory;
  /** While accept fails: the next retry, its delay, failures and when they began. */
  #acceptRetry: NodeJS.Timeout | undefined;
  #acceptDelayMs = 0;
  #acceptFailures = 0;
  #acceptFailingSince = 0;

  /**
   * Every line clients of this socket can cause goes through this limiter (a larger burst);
   * each session's lines first through its own (log-rate-limit.ts), so one connection's flood
   * does not silence the next, and reconnecting cannot pass the socket's bound.
   */
  readonly #limited: RateLimitedLog | undefined;
  /** Connect and disconnect lines, bounded per socket as the log. */
  readonly #info: RateLimitedLog | undefined;
  /** Probes and early connections (--verbose), bounded per socket as the log. */
  readonly #debug: RateLimitedLog | undefined;

  constructor(options: VfioUserServerOptions) {
    this.#options = options;
    this.#given = options.given ?? new GivenMemory();
    const limited = (sink: ((line: string) => void) | undefined) =>
      sink === undefined
        ? undefined
        : new RateLimitedLog(
            sink,
            `${options.device.name} (${options.socketPath})`,
            LOG_RATE_SOCKET_BURST,
          );
    this.#limited = limited(options.log);
    this.#info = limited(options.info);
    this.#debug = limited(options.debug);
  }

  /** The UNIX socket path this server listens on (as given in its options). */
  get socketPath(): string {
    return this.#options.socketPath;
  }

  /** The one device this server serves to whichever client connects. */
  get device(): VfioPciDevice {
    return this.#options.device;
  }

  /** The connected session, if any. */
  get session(): Session | undefined {
    return this.#session;
  }

  /**
   * Binds and listens (replacing a stale socket).
   * @throws SocketPathError (path in use, not a socket), SystemCallError from bind/listen.
   */
  listen(): void {
    claimSocketPath(this.socketPath);
    this.#listenFd = listenUnix(this.socketPath, undefined, socketMode(this.#options.allowUids));
    this.#bound = fileIdentity(this.socketPath);
    this.#watcher = new FdWatcher(this.#listenFd, FdEvent.READABLE, () => this.#acceptAll());
  }

  /**
   * Stops listening, ends every connection (releasing what they held), removes the socket if it
   * is still the one bind made (another put in its place is left, and logged).
   */
  close(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    clearTimeout(this.#acceptRetry);
    this.#acceptRetry = undefined;
    if (this.#listenFd >= 0) {
      closeFd(this.#listenFd);
      this.#listenFd = -1;
      if (unlinkIfOurs(this.socketPath, this.#bound) === 'replaced') {
        this.#log(
          `${this.socketPath}: not removing it: it is no longer the socket this server bound`,
        );
      }
      this.#bound = undefined;
    }
    for (const c of [...this.#waiting]) c.close();
    this.#session?.close();
    this.#limited?.flush();
    this.#info?.flush();
    this.#debug?.flush();
  }

  #log(line: string): void {
    this.#limited?.line(line);
  }

  #acceptAll(): void {
    if (this.#watcher === undefined) return; // closed
    try {
      for (
        let fd = acceptConnection(this.#listenFd);
        fd !== null;
        fd = acceptConnection(this.#listenFd)
      ) {
        this.#adopt(fd);
      }
    } catch (err) {
      this.#acceptFailed(err);
      return;
    }
    if (this.#acceptFailures > 0) this.#acceptRecovered();
  }

  /**
   * accept failed: the pending connection stays in the backlog and the listening socket stays
   * readable, so watching it would spin. Stop watching, log the first failure only, retry after
   * a doubling delay (or when a connection closes and frees an fd).
   */
  #acceptFailed(err: unknown): void {
    if (this.#acceptFailures++ === 0) {
      this.#acceptFailingSince = performance.now();
      this.#acceptDelayMs = ACCEPT_RETRY_FIRST_MS;
      const why = isSystemCallError(err) ? err.code : err instanceof Error ? err.message : err;
      this.#log(
        `${this.device.name}: accept on ${this.socketPath} failed (${String(why)}): not accepting, retrying at most ${ACCEPT_RETRY_MAX_MS / 1000} s apart until it works`,
      );
      this.#watcher?.set(0);
    } else this.#acceptDelayMs = Math.min(2 * this.#acceptDelayMs, ACCEPT_RETRY_MAX_MS);
    this.#scheduleAccept(this.#acceptDelayMs);
  }

  #acceptRecovered(): void {
    const seconds = ((performance.now() - this.#acceptFailingSince) / 1000).toFixed(1);
    this.#log(
      `${this.device.name}: accepting again on ${this.socketPath} (${this.#acceptFailures} failed attempts over ${seconds} s)`,
    );
    this.#acceptFailures = 0;
    this.#watcher?.set(FdEvent.READABLE);
  }

  #scheduleAccept(ms: number): void {
    clearTimeout(this.#acceptRetry);
    // Not unref'd: with the listening socket unwatched, this timer keeps the server alive.
    this.#acceptRetry = setTimeout(() => {
      this.#acceptRetry = undefined;
      this.#acceptAll();
    }, ms);
  }

  /** One of our connections closed: while accept fails, an fd may be free now. */
  #connectionClosed(): void {
    if (this.#acceptFailures > 0 && this.#watcher !== undefined) this.#scheduleAccept(0);
  }

  #adopt(fd: number): void {
    let peer: { pid: number; uid: number } | undefined;
    try {
      peer = this.#admitted(fd);
    } catch (err) {
      closeFd(fd);
      this.#log(`${this.device.name}: no peer credentials: ${messageOf(err)}`);
      return;
    }
    if (peer === undefined) return;
    const { pid, uid } = peer;
    this.#debug?.line(`${this.device.name}: accepted a connection of pid ${pid}`);
    try {
      // Room for a whole largest reply (1 MiB REGION_READ): it goes in one sendmsg instead of
      // five rounds of waiting for the client to drain a 208 KiB buffer. Where the kernel
      // grants less (net.core.wmem_max), the rest waits for the socket as before.
      sendBuffer(fd, SERVER_FRAMER_LIMITS.maxMessageSize + SEND_BUFFER_SLACK);
    } catch {
      // not a socket option this kernel takes: the default buffer works, only slower
    }
    const slot: Slot = { pid, uid, session: undefined, queued: undefined, idleTimer: undefined };
    let connection: Connection;
    try {
      connection = new Connection(
        fd,
        {
          onMessage: (m) =>
            slot.session ? slot.session.handleMessage(m) : this.#hold(connection, slot, m),
          onClose: (r) => {
            clearTimeout(slot.idleTimer);
            if (slot.session) slot.session.handleClose(r);
            else this.#waiting.delete(connection);
            this.#connectionClosed();
          },
          // Only a session places bodies: messages held for the EBUSY decision keep their own.
          placeBody: (h) => (slot.session ? slot.session.placeBody(h) : null),
        },
        SERVER_FRAMER_LIMITS,
        {
          maxQueuedBytes: this.#options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES,
          stallTimeoutMs: this.#options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
        },
      );
    } catch (err) {
      closeFd(fd);
      throw err; // as a failed accept: retried with a backoff
    }
    const idleMs = this.#options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    if (idleMs > 0) {
      slot.idleTimer = setTimeout(() => this.#idleExpired(connection, slot, idleMs), idleMs);
      slot.idleTimer.unref();
    }
    if (this.#session) this.#waiting.add(connection);
    else this.#startSession(connection, slot);
  }

  /**
   * The peer's pid and uid when its uid may use the device: ours, root's (root passes any file mode
   * anyway, as with /dev/vfio, and can read our memory) or one of `allowUids`. Otherwise the
   * connection is closed and the refusal logged; undefined.
   * @throws SystemCallError from getsockopt(SO_PEERCRED).
   */
  #admitted(fd: number): { pid: number; uid: number } | undefined {
    const { pid, uid } = peerCredentials(fd);
    if (uid === ourUid() || uid === 0 || this.#options.allowUids?.includes(uid))
      return { pid, uid };
    closeFd(fd);
    this.#log(
      `${this.socketPath}: refusing pid ${pid} of uid ${uid}: not our uid ${ourUid()} (serve --allow-uid ${uid} admits it)`,
    );
    return undefined;
  }

  /** The idle timeout: a connection without a negotiated VERSION by now is closed. */
  #idleExpired(connection: Connection, slot: Slot, ms: number): void {
    slot.idleTimer = undefined;
    if (connection.closed || slot.session?.negotiated) return;
    this.#log(
      `${this.device.name}: closing the connection of pid ${slot.pid}: no VERSION within ${ms / 1000} s`,
    );
    connection.close();
  }

  #startSession(connection: Connection, slot: Slot): Session {
    const own = new RateLimitedLog(
      (line) => this.#log(line),
      `${this.device.name}: pid ${slot.pid}`,
    );
    const session = new Session(connection, {
      device: this.device,
      partitions: this.#options.partitions,
      given: this.#given,
      peerPid: slot.pid,
      peerUid: slot.uid,
      log: (line) => own.line(line),
      ...(this.#info ? { info: (line: string) => this.#info?.line(line) } : {}),
      ...(this.#debug ? { debug: (line: string) => this.#debug?.line(line) } : {}),
      onClosed: (s) => {
        if (this.#session === s) this.#session = undefined;
        own.flush(); // what this client's lines added up to, now
        const served = connection.fastPathServed;
        if (served.reads + served.writes > 0) {
          // Not the client's to flood: one line per session, under the socket's bound.
          this.#log(
            `${this.device.name}: pid ${slot.pid}: the native fast path served ${served.reads} REGION_READs and ${served.writes} REGION_WRITEs`,
          );
        }
        // The socket's own count waits for its interval: flushed at each close, a client that
        // reconnects again and again would add a summary line per connection past the bound.
      },
      ...(this.#options.onChange ? { onChange: this.#options.onChange } : {}),
      ...(this.#options.traceActivity ? { traceActivity: this.#options.traceActivity } : {}),
    });
    slot.session = session;
    this.#session = session;
    return session;
  }

  /**
   * A message on a connection accepted while another session was active. The decision waits
   * one turn of the event loop (setImmediate): a client that closed and reconnected has its
   * end-of-stream read in the same poll phase, so it is not refused for its own old session.
   */
  #hold(connection: Connection, slot: Slot, message: FramedMessage): void {
    if (slot.queued) {
      slot.queued.push(message);
      return;
    }
    slot.queued = [message];
    // Nothing more is read until the decision: what follows waits in the socket, not in memory.
    connection.pause();
    setImmediate(() => {
      try {
        this.#decide(connection, slot);
      } catch (err) {
        this.#log(
          `${this.device.name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
        );
      }
    });
  }

  #decide(connection: Connection, slot: Slot): void {
    const queued = slot.queued ?? [];
    slot.queued = undefined;
    this.#waiting.delete(connection);
    if (connection.closed) {
      for (const m of queued) for (const fd of m.fds) closeFd(fd);
      return;
    }
    if (!this.#session) {
      const session = this.#startSession(connection, slot);
      for (const m of queued) session.handleMessage(m);
      connection.resume();
      return;
    }
    this.#log(
      `${this.device.name}: refusing pid ${slot.pid}: the device is in use by pid ${this.#session.peerPid}`,
    );
    for (const m of queued) for (const fd of m.fds) closeFd(fd);
    const first = queued[0];
    // A reply-typed message is never answered, not even with EBUSY (session.ts ignores them).
    if (first && !isReply(first.header) && wantsReply(first.header))
      connection.send(errorReplyHeader(first.header, Errno.EBUSY));
    connection.close();
  }
}

/** 0600 (our uid and root only) unless other uids are allowed: then SO_PEERCRED decides. */
function socketMode(allowUids: readonly number[] | undefined): number {
  return allowUids !== undefined && allowUids.length > 0 ? 0o666 : 0o600;
}

/** A connection not yet known to be a session: its peer, and messages held for the decision. */
interface Slot {
  readonly pid: number;
  /** Its uid (SO_PEERCRED). */
  readonly uid: number;
  session: Session | undefined;
  queued: FramedMessage[] | undefined;
  /** Closes the connection if VERSION has not been negotiated in time. */
  idleTimer: NodeJS.Timeout | undefined;
}
