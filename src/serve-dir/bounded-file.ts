/**
 * Reading a file another process may have planted: serve's devices.json and state.json sit in a
 * socket directory, and whoever can write there (or a server we do not trust) chooses what they
 * are. A FIFO would block open(2) or read(2) without end; a symlink to /dev/zero would feed
 * bytes without end. So the file is opened O_NONBLOCK (a FIFO opens at once) and O_NOFOLLOW (a
 * symlink is refused, ELOOP), must be a regular file (fstat), and at most `maxBytes` + 1 bytes
 * are read whatever its size claims.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { VfioError } from '../vfio/index.ts';

/**
 * The text of the regular file `path`, read through one fd, at most `maxBytes` bytes.
 * @throws VfioError EINVAL, one line naming `path`: a symbolic link, not a regular file (FIFO,
 *   socket, device, directory), or longer than `maxBytes`;
 *   NodeJS.ErrnoException from open(2) otherwise (ENOENT, EACCES).
 */
export function readUntrustedFile(path: string, maxBytes: number): string {
  const { O_RDONLY, O_NONBLOCK, O_NOFOLLOW } = constants;
  let fd: number;
  try {
    fd = openSync(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP')
      throw new VfioError('EINVAL', `${path}: is a symbolic link; not following it`);
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile())
      throw new VfioError(
        'EINVAL',
        `${path}: is ${kindOf(st)}, not a regular file; not reading it`,
      );
    if (st.size > maxBytes)
      throw new VfioError('EINVAL', `${path}: ${st.size} bytes, at most ${maxBytes}`);
    // Read until the end or one byte past the bound (a file growing while read is caught).
    const chunks: Buffer[] = [];
    let got = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(CHUNK_BYTES, maxBytes + 1 - got));
      const n = readSync(fd, chunk, 0, chunk.length, got);
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      got += n;
      if (got > maxBytes)
        throw new VfioError('EINVAL', `${path}: more than ${maxBytes} bytes, at most ${maxBytes}`);
    }
    return Buffer.concat(chunks, got).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

const CHUNK_BYTES = 64 * 1024;

function kindOf(st: { isFIFO(): boolean; isSocket(): boolean; isDirectory(): boolean }): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isDirectory()) return 'a directory';
  return 'a device';
}
