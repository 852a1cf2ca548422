/**
 * `serve`'s socket directory on a shared machine. Whoever can write to it can replace a GPU's
 * socket with their own (and so see a VMM's guest memory), and the default under /tmp may have
 * been created by another user before us. So the directory must be a real directory (not a
 * symlink), owned by us, writable by nobody else; no directory above it, up to /, may let
 * another user rename it away (each owned by us or root, writable by others only if sticky,
 * as /tmp: OpenSSH's safe_path).
 */
import { lstatSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { octalMode, ourUid, SocketPathError, unsafeAncestor } from '../vfio-user/index.ts';
import { CliError, cliErrorOf } from './cli-error.ts';

/**
 * @param othersAllowed serve --allow-uid: a directory others cannot search is then only warned
 *   about (the operator may grant search another way: a group, an ACL).
 * @returns warnings, one line each.
 * @throws CliError, one line naming `dir`, what is wrong and what to do.
 */
export function checkSocketDir(dir: string, othersAllowed: boolean): string[] {
  const st = statOf(dir, lstatSync);
  const fail = (what: string, todo: string) => {
    throw new CliError('serve', 'SOCKET_DIR', `socket dir ${dir} ${what}; ${todo}`);
  };
  if (st.isSymbolicLink())
    fail('is a symbolic link', 'pass the real directory with --socket-dir, or remove the link');
  if (!st.isDirectory()) fail('is not a directory', 'remove it or choose another --socket-dir');
  const uid = ourUid();
  if (st.uid !== uid) {
    fail(
      `is owned by uid ${st.uid}, not by us (uid ${uid})`,
      'another user may have planted it: remove it or choose another --socket-dir',
    );
  }
  if ((st.mode & 0o022) !== 0) {
    fail(
      `is writable by group or others (mode ${octalMode(st.mode)})`,
      `run chmod go-w ${dir}, or choose another --socket-dir`,
    );
  }
  let above: ReturnType<typeof unsafeAncestor>;
  try {
    above = unsafeAncestor(dir);
  } catch (err) {
    if (err instanceof SocketPathError) throw cliErrorOf('serve', err);
    throw err;
  }
  if (above !== undefined) {
    fail(
      `is ${above.path === dirname(resolve(dir)) ? 'in' : 'under'} ${above.path}, which ${above.reason}`,
      'another user could rename it away: choose a --socket-dir elsewhere',
    );
  }
  if (othersAllowed && (st.mode & 0o011) === 0) {
    return [
      `socket dir ${dir} is not searchable by group or others (mode ${octalMode(st.mode)}): uids of --allow-uid cannot reach its sockets; chmod o+x ${dir}`,
    ];
  }
  return [];
}

function statOf(path: string, stat: (p: string) => Stats): Stats {
  try {
    return stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new CliError('serve', 'SOCKET_DIR', `cannot inspect socket dir ${path} (${code})`);
  }
}
