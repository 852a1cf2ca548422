/**
 * Claiming a socket path for a server: a stale socket left by a server that died is replaced;
 * a socket someone still listens on is refused (two servers must not share a path); anything
 * that is not a socket is never deleted.
 */
import { lstatSync, unlinkSync } from 'node:fs';
import { closeFd, connectUnix, isSystemCallError } from '../native/index.ts';

export class SocketPathError extends Error {
  override readonly name = 'SocketPathError';
}

/**
 * Makes `path` free for bind(2).
 * @throws SocketPathError when a live server listens there or the path is not a socket.
 */
export function claimSocketPath(path: string): void {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) throw new SocketPathError(`${path} exists and is not a socket; not replacing it`);
  let fd: number | undefined;
  try {
    fd = connectUnix(path);
  } catch (err) {
    if (isSystemCallError(err) && (err.code === 'ECONNREFUSED' || err.code === 'ENOENT')) {
      try {
        unlinkSync(path);
      } catch {
        // gone meanwhile
      }
      return;
    }
    throw err;
  }
  closeFd(fd);
  throw new SocketPathError(`${path} is in use by another running server`);
}
