/**
 * Memory another process can map: a sparse memfd (memfd_create + ftruncate through the native
 * addon). Pages cost memory only once touched; pread/pwrite on the descriptor see the same pages
 * as any MAP_SHARED mapping of it, so region reads and writes and a VMM's mapping stay coherent.
 * Reads and writes never build a buffer over the caller's, so regions past 4 GiB are fine.
 */
import { readSync, writeSync } from 'node:fs';
import { closeFd, dataRanges, memfdCreate } from '../native/index.ts';
import { VfioError } from './errors.ts';

export interface SharedMemory {
  /** For diagnostics (the memfd's name in /proc/<pid>/fd). */
  readonly name: string;
  /** A descriptor a peer can mmap (MAP_SHARED); owned by this object. */
  readonly fd: number;
  readonly size: bigint;
  /** pread: fills `buf` from `offset` (bytes past the end read as zero). */
  read(offset: bigint, buf: Uint8Array): void;
  /** pwrite of all of `data` at `offset`. */
  write(offset: bigint, data: Uint8Array): void;
  /** Populated ranges [from, to) within [start, end) (lseek SEEK_DATA/SEEK_HOLE). */
  dataRanges(start: bigint, end: bigint): [bigint, bigint][];
  close(): void;
}

/** Creates a zero-filled SharedMemory of `size` bytes. */
export type SharedMemoryFactory = (name: string, size: bigint) => SharedMemory;

/** @throws VfioError ENOMEM when the memfd cannot be created or sized. */
export const createMemfdMemory: SharedMemoryFactory = (name, size) => {
  let fd: number;
  try {
    fd = memfdCreate(name, size);
  } catch (err) {
    throw new VfioError('ENOMEM', `cannot create shared memory ${name} of ${size} bytes: ${err}`);
  }
  let open = true;
  return {
    name,
    fd,
    size,
    read(offset, buf) {
      let done = 0;
      while (done < buf.length) {
        const n = readSync(fd, buf, done, buf.length - done, offset + BigInt(done));
        if (n === 0) break;
        done += n;
      }
      buf.fill(0, done);
    },
    write(offset, data) {
      let done = 0;
      while (done < data.length) {
        done += writeSync(fd, data, done, data.length - done, Number(offset) + done);
      }
    },
    dataRanges: (start, end) => dataRanges(fd, start, end),
    close() {
      if (open) closeFd(fd);
      open = false;
    },
  };
};
