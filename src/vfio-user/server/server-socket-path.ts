/**
 * Claiming a socket path for a server on a shared machine: the socket's directory must be one
 * no other user can write to (else that user could replace the socket with their own); a stale
 * socket left by a server of ours that died is replaced; a socket someone still listens on is
 * refused (two servers must not share a path); a symlink, anything that is not a socket, or a
 * socket of another uid is never deleted or followed.
 */
import { lstatSync, type Stats, statSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { CodedError } from '../../errors/index.ts';
import { closeFd, connectUnix, isSystemCallError } from '../../native/index.ts';

/** A socket path that is in use, too long or unsafe to replace (code SOCKET_PATH); names the path. */
export class SocketPathError extends CodedError<'SOCKET_PATH'> {
  override readonly name: string = 'SocketPathError';
  constructor(message: string) {
    super('SOCKET_PATH', message);
  }
}

/** Our effective uid (the owner of every socket and file we create). */
export function ourUid(): number {
  return process.geteuid?.() ?? 0;
}

/** `0755` for a mode's permission bits (with the sticky bit when set). */
export function octalMode(mode: number): string {
  return `0${(mode & 0o7777).toString(8)}`;
}

/**
 * Why another user could replace entries of the directory `st` describes, or undefined when
 * none can: it must be owned by us or root, and writable by group or others only with the
 * sticky bit (as /tmp: then nobody else may rename or unlink what we create there).
 */
export function unsafeDirectoryReason(st: Stats): string | undefined {
  const uid = ourUid();
  if (st.uid !== uid && st.uid !== 0) return `is owned by uid ${st.uid}, not by us (uid ${uid})`;
  if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0)
    return `is writable by group or others and not sticky (mode ${octalMode(st.mode)})`;
  return undefined;
}

/**
 * Makes `path` free for bind(2).
 * @throws SocketPathError when the directory is unsafe (above), a live server listens there,
 *   or the path is a symlink, not a socket, or another uid's socket.
 */
export function claimSocketPath(path: string): void {
  checkDirectory(dirname(path), path);
  const st = lstatOrUndefined(path);
  if (st === undefined) return; // nothing there
  if (st.isSymbolicLink())
    throw new SocketPathError(`${path} is a symbolic link; not following or replacing it`);
  if (!st.isSocket())
    throw new SocketPathError(`${path} exists and is not a socket; not replacing it`);
  if (st.uid !== ourUid()) {
    throw new SocketPathError(
      `${path} is a socket of uid ${st.uid}, not ours (uid ${ourUid()}); not replacing it (its owner may remove it)`,
    );
  }
  let fd: number | undefined;
  try {
    fd = connectUnix(path);
  } catch (err) {
    if (isSystemCallError(err) && (err.code === 'ECONNREFUSED' || err.code === 'ENOENT')) {
      unlinkIfSame(path, st);
      return;
    }
    throw err;
  }
  closeFd(fd);
  throw new SocketPathError(`${path} is in use by another running server`);
}

function checkDirectory(dir: string, path: string): void {
  let st: Stats;
  try {
    st = statSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new SocketPathError(`${path}: cannot inspect its directory ${dir} (${code})`);
  }
  const reason = unsafeDirectoryReason(st);
  if (reason !== undefined) {
    throw new SocketPathError(
      `${path}: its directory ${dir} ${reason}; another user could replace the socket: use a directory only you can write to`,
    );
  }
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new SocketPathError(`${path}: cannot inspect it (${code})`);
  }
}

/** Unlinks the stale socket `path` only if it is still the inode `was` (unlink never follows). */
function unlinkIfSame(path: string, was: Stats): void {
  const now = lstatOrUndefined(path);
  if (now === undefined) return; // gone meanwhile
  if (now.dev !== was.dev || now.ino !== was.ino)
    throw new SocketPathError(`${path} changed while being claimed; not replacing it`);
  try {
    unlinkSync(path);
  } catch {
    // gone meanwhile
  }
}
