/**
 * The memory behind the NVLink2 regions: one sparse memfd per GPU the size of its GPU RAM
 * region (the 128 GiB aperture; only touched pages cost memory) and one 64 KiB memfd per ATSD
 * register page. The store keeps them for the life of the process, so device state survives a
 * client closing the device and opening it again, as GPU RAM and registers do on the host.
 * Reads and writes go through pread/pwrite on the descriptor (never a buffer over 4 GiB), which
 * see the same pages as any process mapping the descriptor.
 */
import { readSync, writeSync } from 'node:fs';
import { closeFd, dataRanges, memfdCreate } from '../native/index.ts';

export interface DeviceMemory {
  readonly name: string;
  /** A memfd another process can map MAP_SHARED; owned by the store. */
  readonly fd: number;
  readonly size: bigint;
  /** pread: fills `buf` from `offset` (bytes past the end read as zero). */
  read(offset: bigint, buf: Uint8Array): void;
  /** pwrite of all of `data` at `offset`. */
  write(offset: bigint, data: Uint8Array): void;
  /** Populated ranges [from, to) within [start, end) (SEEK_DATA/SEEK_HOLE). */
  dataRanges(start: bigint, end: bigint): [bigint, bigint][];
  close(): void;
}

export type DeviceMemoryFactory = (name: string, size: bigint) => DeviceMemory;

/** A memfd of `size` bytes (memfd_create + ftruncate via the native addon). */
export const createMemfdMemory: DeviceMemoryFactory = (name, size) => {
  const fd = memfdCreate(name, size);
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

/** Device memory by key ("gpu-ram:0004:01:00.0", "atsd:6030200800000"), created on first use. */
export class DeviceMemoryStore {
  private readonly memories = new Map<string, DeviceMemory>();

  constructor(private readonly factory: DeviceMemoryFactory = createMemfdMemory) {}

  /** The memory for `key`, created with `size` bytes the first time. */
  get(key: string, size: bigint): DeviceMemory {
    let m = this.memories.get(key);
    if (!m) {
      m = this.factory(`vfio-nvlink2:${key}`, size);
      this.memories.set(key, m);
    }
    return m;
  }

  peek(key: string): DeviceMemory | undefined {
    return this.memories.get(key);
  }

  /** Closes every descriptor (at process shutdown). */
  closeAll(): void {
    for (const m of this.memories.values()) m.close();
    this.memories.clear();
  }
}
