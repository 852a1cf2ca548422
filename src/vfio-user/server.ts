/**
 * A vfio-user server for ONE vfio-pci device on one UNIX socket (vfio-user.rst "Server";
 * libvfio-user's vfu_create_ctx + vfu_attach_ctx, event-driven). One client at a time: while
 * a session is connected, another connection is answered once — its first message gets an
 * EBUSY error reply — and closed, leaving the first session alone (libvfio-user, by contrast,
 * does not accept at all until its client is gone). The device (and its state)
 * belongs to the caller and outlives every session, so a client can reconnect and find its
 * data. Partitions (one LPID per peer process) are shared by every server of the process.
 */
import { unlinkSync } from 'node:fs';
import {
  acceptConnection,
  closeFd,
  FdEvent,
  FdWatcher,
  listenUnix,
  peerCredentials,
} from '../native/index.ts';
import type { VfioPciDevice } from '../vfio/device.ts';
import { Errno } from '../vfio/errors.ts';
import type { FramedMessage } from './framer.ts';
import { errorReplyHeader, isReply, wantsReply } from './header.ts';
import type { PartitionRegistry } from './partition.ts';
import { claimSocketPath } from './server-socket-path.ts';
import { SERVER_FRAMER_LIMITS, Session } from './session.ts';
import { Connection } from './transport.ts';

export interface VfioUserServerOptions {
  readonly device: VfioPciDevice;
  readonly socketPath: string;
  readonly partitions: PartitionRegistry;
  /** One line per event worth a log (errors, refusals, framing failures). */
  readonly log?: (line: string) => void;
  /** Called after a session opened or released the device. */
  readonly onChange?: () => void;
}

export class VfioUserServer {
  readonly #options: VfioUserServerOptions;
  #listenFd = -1;
  #watcher: FdWatcher | undefined;
  #session: Session | undefined;
  readonly #waiting = new Set<Connection>();

  constructor(options: VfioUserServerOptions) {
    this.#options = options;
  }

  get socketPath(): string {
    return this.#options.socketPath;
  }

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
    this.#listenFd = listenUnix(this.socketPath);
    this.#watcher = new FdWatcher(this.#listenFd, FdEvent.READABLE, () => this.#acceptAll());
  }

  /** Stops listening, ends every connection (releasing what they held), removes the socket. */
  close(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    if (this.#listenFd >= 0) {
      closeFd(this.#listenFd);
      this.#listenFd = -1;
      try {
        unlinkSync(this.socketPath);
      } catch {
        // already gone
      }
    }
    for (const c of [...this.#waiting]) c.close();
    this.#session?.close();
  }

  #log(line: string): void {
    this.#options.log?.(line);
  }

  #acceptAll(): void {
    try {
      for (
        let fd = acceptConnection(this.#listenFd);
        fd !== null;
        fd = acceptConnection(this.#listenFd)
      ) {
        this.#adopt(fd);
      }
    } catch (err) {
      this.#log(
        `${this.device.name}: accept failed: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }

  #adopt(fd: number): void {
    let pid: number;
    try {
      pid = peerCredentials(fd).pid;
    } catch (err) {
      closeFd(fd);
      this.#log(
        `${this.device.name}: no peer credentials: ${err instanceof Error ? err.message : String(err)}`,
      );
      return;
    }
    const slot: Slot = { pid, session: undefined, queued: undefined };
    const connection: Connection = new Connection(
      fd,
      {
        onMessage: (m) =>
          slot.session ? slot.session.handleMessage(m) : this.#hold(connection, slot, m),
        onClose: (r) =>
          slot.session ? slot.session.handleClose(r) : this.#waiting.delete(connection),
        // Only a session places bodies: messages held for the EBUSY decision keep their own.
        placeBody: (h) => (slot.session ? slot.session.placeBody(h) : null),
      },
      SERVER_FRAMER_LIMITS,
    );
    if (this.#session) this.#waiting.add(connection);
    else this.#startSession(connection, slot);
  }

  #startSession(connection: Connection, slot: Slot): Session {
    const session = new Session(connection, {
      device: this.device,
      partitions: this.#options.partitions,
      peerPid: slot.pid,
      log: (line) => this.#log(line),
      onClosed: (s) => {
        if (this.#session === s) this.#session = undefined;
      },
      ...(this.#options.onChange ? { onChange: this.#options.onChange } : {}),
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

/** A connection not yet known to be a session: its peer, and messages held for the decision. */
interface Slot {
  readonly pid: number;
  session: Session | undefined;
  queued: FramedMessage[] | undefined;
}
