/**
 * A listening vfio-user socket (vfio-user.rst "Socket": AF_UNIX, one socket per device; the
 * backend conventions' `--socket-path`): the addon binds it (close-on-exec, non-blocking, never
 * read by libuv), an FdWatcher accepts, and each connection fd goes to `onConnection` with the
 * peer's credentials. `close()` stops accepting and removes the socket file.
 */
import { rmSync } from 'node:fs';
import {
  acceptConnection,
  closeFd,
  FdEvent,
  FdWatcher,
  listenUnix,
  peerCredentials,
} from '../native/index.ts';

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

export class VfioUserListener {
  readonly #fd: number;
  readonly #watcher: FdWatcher;
  #closed = false;

  /**
   * Listens on `path` (which must not exist).
   * @throws SystemCallError EADDRINUSE, ENAMETOOLONG (over 107 bytes), EACCES.
   */
  constructor(
    readonly path: string,
    onConnection: (fd: number, peer: PeerCredentials) => void,
    backlog = 16,
  ) {
    this.#fd = listenUnix(path, backlog);
    this.#watcher = new FdWatcher(this.#fd, FdEvent.READABLE, () => {
      for (;;) {
        const fd = acceptConnection(this.#fd);
        if (fd === null) return;
        let peer: PeerCredentials;
        try {
          peer = peerCredentials(fd);
        } catch {
          closeFd(fd);
          continue;
        }
        onConnection(fd, peer);
      }
    });
  }

  /** Whether the listener keeps the process alive. */
  ref(on: boolean): void {
    this.#watcher.ref(on);
  }

  /** Stops accepting, closes the socket and unlinks `path`. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher.close();
    closeFd(this.#fd);
    rmSync(this.path, { force: true });
  }
}
