/**
 * Memory another process can map: a sparse file on tmpfs (/dev/shm), unlinked at once so
 * only its descriptor names it (what memfd_create gives, without a native module). Pages
 * cost memory only once touched; pread/pwrite on the descriptor see the same pages as any
 * mapping of it, so region reads and writes and a VMM's mapping stay coherent.
 */
import { closeSync, ftruncateSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { VfioError } from './errors.ts';

export interface SharedMemory {
  /** A descriptor a peer can mmap (MAP_SHARED); owned by this object. */
  readonly fd: number;
  readonly size: bigint;
  read(offset: bigint, buf: Uint8Array): void;
  write(offset: bigint, data: Uint8Array): void;
  close(): void;
}

/** Creates a zero-filled SharedMemory of `size` bytes; `name` is for diagnostics only. */
export type SharedMemoryFactory = (name: string, size: bigint) => SharedMemory;

let serial = 0;

export const createTmpfsMemory: SharedMemoryFactory = (name, size) => {
  const safe = name.replace(/[^A-Za-z0-9._-]/g, '_');
  const path = `/dev/shm/vfio-nvlink2-${process.pid}-${serial++}-${safe}`;
  const fd = openSync(path, 'w+', 0o600);
  unlinkSync(path);
  try {
    ftruncateSync(fd, Number(size));
  } catch (err) {
    closeSync(fd);
    throw new VfioError(
      'ENOMEM',
      `cannot size shared memory ${name} to ${size} bytes: ${String(err)}`,
    );
  }
  let open = true;
  return {
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
      while (done < data.length)
        done += writeSync(fd, data, done, data.length - done, Number(offset) + done);
    },
    close() {
      if (open) closeSync(fd);
      open = false;
    },
  };
};
