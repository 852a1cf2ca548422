/**
 * Claiming a socket path for a server on a shared machine: the socket's directory must be one
 * no other user can write to (else that user could replace the socket with their own); a stale
 * socket left by a server of ours that died is replaced; a socket someone still listens on is
 * refused (two servers must not share a path); a symlink, anything that is not a socket, or a
 * socket of another uid is never deleted or followed. Every directory above the socket's, up to
 * /, must be as safe (`unsafeAncestor`). What a server created it removes only while it is
 * still the same inode (`unlinkIfOurs`).
 */
import { lstatSync, realpathSync, type Stats, statSync, unlinkSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
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

/** An ancestor directory another user could rename our directory out of, and why. */
export interface UnsafeAncestor {
  readonly path: string;
  readonly reason: string;
}

/**
 * The first directory above `dir`, up to /, through which another user could replace `dir`
 * (rename it away and put their own in its place), or undefined when there is none. Every
 * ancestor must pass `unsafeDirectoryReason` (ours or root's; group/other-writable only when
 * sticky), as OpenSSH's safe_path (misc.c) walks a path up to / and libvfio-user's socket
 * advice expects of a private directory. Both the path as given and its real path (after
 * symlinks) are walked: a symlink on the way is safe only where it lives and where it leads are.
 * @throws SocketPathError when an ancestor cannot be inspected.
 */
export function unsafeAncestor(dir: string): UnsafeAncestor | undefined {
  const seen = new Set<string>();
  const walk = (from: string): UnsafeAncestor | undefined => {
    for (let at = dirname(from); ; at = dirname(at)) {
      if (!seen.has(at)) {
        seen.add(at);
        let st: Stats;
        try {
          st = statSync(at);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code ?? 'error';
          throw new SocketPathError(
            `${dir}: cannot inspect its ancestor ${at} (${code}); check that path, or choose another socket path`,
          );
        }
        const reason = unsafeDirectoryReason(st);
        if (reason !== undefined) return { path: at, reason };
      }
      if (dirname(at) === at) return undefined;
    }
  };
  const given = resolve(dir);
  const lexical = walk(given);
  if (lexical !== undefined) return lexical;
  let real: string;
  try {
    real = realpathSync(given);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new SocketPathError(
      `${dir}: cannot resolve it (${code}); check that path, or choose another socket path`,
    );
  }
  return real === given ? undefined : walk(real);
}

/**
 * The file `path` names now, as (st_dev, st_ino), or undefined when nothing is there: what a
 * server records after creating a socket or file, so that it removes only what is still its own
 * (another may have been put in its place).
 */
export interface FileIdentity {
  readonly dev: number;
  readonly ino: number;
}

/** The identity (st_dev, st_ino) of what `path` names itself (lstat), or undefined when nothing is there. */
export function fileIdentity(path: string): FileIdentity | undefined {
  const st = lstatOrUndefined(path);
  return st === undefined ? undefined : { dev: st.dev, ino: st.ino };
}

/**
 * Unlinks `path` only if it is still the file `was` (same st_dev and st_ino); never follows a
 * link. @returns 'removed'; 'gone' when nothing is there; 'replaced' when another file is
 * there now (left alone).
 */
export function unlinkIfOurs(
  path: string,
  was: FileIdentity | undefined,
): 'removed' | 'gone' | 'replaced' {
  let now: Stats;
  try {
    now = lstatSync(path);
  } catch {
    return 'gone'; // or not reachable: nothing we may remove
  }
  if (was === undefined || now.dev !== was.dev || now.ino !== was.ino) return 'replaced';
  try {
    unlinkSync(path);
    return 'removed';
  } catch {
    return 'gone';
  }
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
    throw new SocketPathError(
      `${path} is a symbolic link; not following or replacing it: remove the link, or choose another socket path`,
    );
  if (!st.isSocket())
    throw new SocketPathError(
      `${path} exists and is not a socket; not replacing it: move that file away, or choose another socket path`,
    );
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
  throw new SocketPathError(
    `${path} is in use by another running server: stop it, or choose another socket path`,
  );
}

function checkDirectory(dir: string, path: string): void {
  let st: Stats;
  try {
    st = statSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new SocketPathError(
      `${path}: cannot inspect its directory ${dir} (${code}); create the directory, or choose another socket path`,
    );
  }
  const reason = unsafeDirectoryReason(st);
  if (reason !== undefined) {
    throw new SocketPathError(
      `${path}: its directory ${dir} ${reason}; another user could replace the socket: use a directory only you can write to`,
    );
  }
  const above = unsafeAncestor(dir);
  if (above !== undefined) {
    throw new SocketPathError(
      `${path}: its directory ${dir} is under ${above.path}, which ${above.reason}; another user could rename the directory away and replace the socket: use a directory only you can write to`,
    );
  }
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new SocketPathError(
      `${path}: cannot inspect it (${code}); check its permissions, or choose another socket path`,
    );
  }
}

/** Unlinks the stale socket `path` only if it is still the inode `was` (unlink never follows). */
function unlinkIfSame(path: string, was: Stats): void {
  const now = lstatOrUndefined(path);
  if (now === undefined) return; // gone meanwhile
  if (now.dev !== was.dev || now.ino !== was.ino)
    throw new SocketPathError(
      `${path} changed while being claimed; not replacing it: is another server starting on it? Try again, or choose another socket path`,
    );
  try {
    unlinkSync(path);
  } catch {
    // gone meanwhile
  }
}
