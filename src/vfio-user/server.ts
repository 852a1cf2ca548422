/**
 * A vfio-user server for ONE vfio-pci device on one UNIX socket (vfio-user.rst "Server";
 * libvfio-user's vfu_create_ctx + vfu_attach_ctx, event-driven). One client at a time: while
 * a session is connected, another connection is answered once — its first message gets an
 * EBUSY error reply — and closed, leaving the first session alone. The device (and its state)
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
import { errorReplyHeader, wantsReply } from './header.ts';
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
  readonly #refused = new Set<Connection>();

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
    for (const c of [...this.#refused]) c.close();
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
    if (this.#session) {
      this.#refuse(fd, pid);
      return;
    }
    this.#session = new Session(fd, {
      device: this.device,
      partitions: this.#options.partitions,
      peerPid: pid,
      log: (line) => this.#log(line),
      onClosed: (s) => {
        if (this.#session === s) this.#session = undefined;
      },
      ...(this.#options.onChange ? { onChange: this.#options.onChange } : {}),
    });
  }

  /** A second client: its first message gets EBUSY, then the connection is closed. */
  #refuse(fd: number, pid: number): void {
    const holder = this.#session?.peerPid;
    this.#log(`${this.device.name}: refusing pid ${pid}: the device is in use by pid ${holder}`);
    const connection: Connection = new Connection(
      fd,
      {
        onMessage: (m) => {
          for (const f of m.fds) closeFd(f);
          if (wantsReply(m.header) && !connection.closed)
            connection.send(errorReplyHeader(m.header, Errno.EBUSY));
          connection.close();
        },
        onClose: () => this.#refused.delete(connection),
      },
      SERVER_FRAMER_LIMITS,
    );
    this.#refused.add(connection);
  }
}
