/**
 * `serve`'s socket directory on a shared machine. Whoever can write to it can replace a GPU's
 * socket with their own (and so see a VMM's guest memory), and the default under /tmp may have
 * been created by another user before us. So the directory must be a real directory (not a
 * symlink), owned by us, writable by nobody else; no directory above it, up to /, may let
 * another user rename it away (each owned by us or root, writable by others only if sticky,
 * as /tmp: OpenSSH's safe_path). The state directory (GPU RAM in files clients map) keeps the
 * same rules.
 */
import { lstatSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { octalMode, ourUid, SocketPathError, unsafeAncestor } from '../vfio-user/index.ts';
import { CliError, cliErrorOf } from './cli-error.ts';

/** Which directory a check is of: the error code and its words ("socket dir", "--socket-dir"). */
export interface PrivateDirKind {
  readonly code: 'SOCKET_DIR' | 'STATE_DIR';
  /** "socket dir": how the lines name it. */
  readonly label: string;
  /** "--socket-dir": the option the lines tell to change. */
  readonly flag: string;
}

const SOCKET_DIR: PrivateDirKind = {
  code: 'SOCKET_DIR',
  label: 'socket dir',
  flag: '--socket-dir',
};

/** serve's state directory (GPU RAM in files): the socket directory's rules, its own words. */
export const STATE_DIR: PrivateDirKind = {
  code: 'STATE_DIR',
  label: 'state dir',
  flag: '--state-dir',
};

/**
 * @param othersAllowed serve --allow-uid: a directory others cannot search is then only warned
 *   about (the operator may grant search another way: a group, an ACL).
 * @returns warnings, one line each.
 * @throws CliError, one line naming `dir`, what is wrong and what to do.
 */
export function checkSocketDir(dir: string, othersAllowed: boolean): string[] {
  checkPrivateDir(dir, SOCKET_DIR);
  const mode = statOf(dir, lstatSync, SOCKET_DIR).mode;
  if (othersAllowed && (mode & 0o011) === 0) {
    return [
      `socket dir ${dir} is not searchable by group or others (mode ${octalMode(mode)}): uids of --allow-uid cannot reach its sockets; chmod o+x ${dir}`,
    ];
  }
  return [];
}

/**
 * A directory only we may change (see the module header): a real directory, ours, writable by
 * nobody else, under no directory another user could rename it out of.
 * @throws CliError of `kind`, one line naming `dir`, what is wrong and what to do.
 */
export function checkPrivateDir(dir: string, kind: PrivateDirKind): void {
  const st = statOf(dir, lstatSync, kind);
  const fail = (what: string, todo: string) => {
    throw new CliError('serve', kind.code, `${kind.label} ${dir} ${what}; ${todo}`);
  };
  if (st.isSymbolicLink())
    fail('is a symbolic link', `pass the real directory with ${kind.flag}, or remove the link`);
  if (!st.isDirectory()) fail('is not a directory', `remove it or choose another ${kind.flag}`);
  const uid = ourUid();
  if (st.uid !== uid) {
    fail(
      `is owned by uid ${st.uid}, not by us (uid ${uid})`,
      `another user may have planted it: remove it or choose another ${kind.flag}`,
    );
  }
  if ((st.mode & 0o022) !== 0) {
    fail(
      `is writable by group or others (mode ${octalMode(st.mode)})`,
      `run chmod go-w ${dir}, or choose another ${kind.flag}`,
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
      `another user could rename it away: choose a ${kind.flag} elsewhere`,
    );
  }
}

function statOf(path: string, stat: (p: string) => Stats, kind: PrivateDirKind): Stats {
  try {
    return stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new CliError('serve', kind.code, `cannot inspect ${kind.label} ${path} (${code})`);
  }
}
