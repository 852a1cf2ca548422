/**
 * One file of serve's state directory that is not device memory: a header line, then a JSON
 * body. The header says what the file is and how to trust the body:
 *
 *   vfio-nvlink2-state <format> <kind> <body bytes> <sha256 of the body, hex>\n
 *
 * so a file of another format, of another kind, cut short (a crash of the disk, not of us:
 * files are replaced by rename, whole), grown, or with any byte changed is refused with one
 * line naming it. Written through a temporary file renamed over the old one (replaceFile); with
 * `sync`, the file is fsynced before the rename and the directory after it.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { CodedError } from '../errors/index.ts';
import { sha256Hex } from '../native/index.ts';
import { parseJson } from '../text/index.ts';
import { replaceFile } from './replace-file.ts';

/** The layout this server writes and reads; any change of a body's shape bumps it. */
export const STATE_FORMAT = 1;
/** What every state file starts with. */
export const STATE_MAGIC = 'vfio-nvlink2-state';

/** Largest state file read: far above the machine state of any tree (a few KiB). */
const MAX_STATE_BYTES = 16 * 1024 * 1024;

/** A state directory that cannot be used: one line naming the file or the directory. */
export class StateDirError extends CodedError<'STATE_DIR'> {
  override readonly name: string = 'StateDirError';
  constructor(message: string) {
    super('STATE_DIR', message);
  }
}

/** The bytes of a state file of `kind` holding `body` (JSON). */
export function encodeStateFile(kind: string, body: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(body));
  return Buffer.concat([
    Buffer.from(`${STATE_MAGIC} ${STATE_FORMAT} ${kind} ${json.length} ${sha256Hex(json)}\n`),
    json,
  ]);
}

/**
 * The body of the state file `bytes` read from `path`, checked against its header.
 * @throws StateDirError naming `path`: not a state file (magic), another format, another kind,
 *   truncated or longer than its header says, checksum mismatch, a body that is not JSON.
 */
export function decodeStateFile(path: string, kind: string, bytes: Uint8Array): unknown {
  const nl = bytes.indexOf(0x0a);
  const head = Buffer.from(bytes.subarray(0, nl < 0 ? Math.min(bytes.length, 200) : nl)).toString(
    'latin1',
  );
  const fields = head.split(' ');
  if (fields[0] !== STATE_MAGIC || nl < 0 || fields.length !== 5)
    throw new StateDirError(`${path}: not a state file of vfio-nvlink2 (bad magic)`);
  const [, format, fileKind, size, digest] = fields as [string, string, string, string, string];
  if (format !== String(STATE_FORMAT))
    throw new StateDirError(
      `${path}: written in state format ${format}; this server reads format ${STATE_FORMAT}`,
    );
  if (fileKind !== kind) throw new StateDirError(`${path}: a ${fileKind} file, expected ${kind}`);
  const body = bytes.subarray(nl + 1);
  const want = /^\d{1,9}$/.test(size) ? Number(size) : -1;
  if (body.length < want)
    throw new StateDirError(`${path}: truncated: ${body.length} of ${want} body bytes`);
  if (body.length !== want)
    throw new StateDirError(`${path}: wrong size: ${body.length} body bytes, header says ${size}`);
  if (sha256Hex(body) !== digest)
    throw new StateDirError(`${path}: checksum mismatch (the body is not what was written)`);
  try {
    return parseJson(Buffer.from(body).toString('utf8'));
  } catch {
    throw new StateDirError(`${path}: body is not JSON`);
  }
}

/**
 * The body of the state file at `path`, or undefined when there is none.
 * @throws StateDirError naming `path` (see decodeStateFile; also not a regular file, too large,
 *   unreadable).
 */
export function readStateFile(path: string, kind: string): unknown {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new StateDirError(`${path}: cannot open (${code ?? String(err)})`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new StateDirError(`${path}: not a regular file`);
    if (st.size > MAX_STATE_BYTES)
      throw new StateDirError(`${path}: ${st.size} bytes, more than a state file holds`);
    const buf = Buffer.alloc(st.size);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    return decodeStateFile(path, kind, buf.subarray(0, got));
  } finally {
    closeSync(fd);
  }
}

/**
 * Replaces the state file at `path` with `kind`/`body`, atomically (replaceFile, mode 0600).
 * @throws NodeJS.ErrnoException from open/write/fsync/rename.
 */
export function writeStateFile(path: string, kind: string, body: unknown, sync: boolean): void {
  replaceFile(path, encodeStateFile(kind, body), { mode: 0o600, sync });
}
