/**
 * Device memory kept in a sparse file of a state directory (`serve --state-dir`), so that it
 * outlives the process: every write, ours by pwrite and a client's through its MAP_SHARED
 * mapping of the same file, lands in the page cache, which the kernel keeps when the process is
 * killed. Nothing is copied to persist it. `sync` adds fdatasync(2) after each write (power loss).
 *
 * A file on disk cannot be sealed the way a memfd is (F_ADD_SEALS works on shmem only), and a
 * client given a descriptor it can map read-write may also ftruncate(2) it. The server therefore
 * never maps the file itself: every access of ours is pread/pwrite, which read a cut-off range as
 * zeros (short read) and re-grow the file on write, where a load or store through a mapping would
 * raise SIGBUS and kill the server. `view` and `writeTarget` lend nothing (their callers read and
 * write instead); `checkSize` (and `touched`) put a cut file back to its size.
 * Peers get their own open file description (`reopenForPeer`), as with memfds, so no fcntl of
 * theirs (O_APPEND, O_DIRECT) reaches ours; `fd` is our only description of the file, so that
 * `heldElsewhere(fd)` counts every other.
 */

import {
  closeSync,
  constants,
  fdatasync,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { dataRanges, dupFd, randomHex, replaceFd, writebackLater } from '../native/index.ts';
import { VfioError } from './errors.ts';
import type { MemoryAccount, MemoryBudget } from './memory-budget.ts';
import {
  closeLater,
  copyPopulated,
  copyPopulatedLater,
  PopulatedPages,
  preadFully,
  punchOutside,
  type SharedMemory,
} from './shared-memory.ts';

/** A SharedMemory in a file: its path, and a flush to disk (fdatasync). */
export interface FileMemory extends SharedMemory {
  /** The file (in the state directory). */
  readonly path: string;
  /** fdatasync(2): every write so far, a client's through its mapping included, is on disk. */
  sync(): void;
  /** Grows the file back to `size` when a peer cut it (one fstat when it did not). */
  checkSize(): void;
}

/** Options of `openFileMemory`: the budget it counts against, fdatasync after each write. */
export interface FileMemoryOptions {
  readonly budget?: MemoryBudget;
  /** fdatasync after each write (serve --sync). */
  readonly sync?: boolean;
  /**
   * A new file (O_EXCL: an existing one is refused, never truncated, as it may hold a saved
   * GPU RAM) rather than what the file holds. Otherwise the memory is `restored`.
   */
  readonly fresh?: boolean;
  /** Told when a file found shorter than `size` (a peer cut it) was grown back. */
  readonly onRegrown?: (path: string, found: bigint) => void;
}

/**
 * The memory `name` of `size` bytes in the file `path`: created sparse (all holes) when
 * `fresh` (refused if it exists) or absent, else used as it is (the caller has checked its size).
 * @throws VfioError ENOMEM when the file cannot be opened or sized.
 */
export function openFileMemory(
  path: string,
  name: string,
  size: bigint,
  options: FileMemoryOptions = {},
): FileMemory {
  let fd: number;
  try {
    const { O_RDWR, O_CREAT, O_NOFOLLOW, O_EXCL } = constants;
    fd = openSync(path, O_RDWR | O_CREAT | O_NOFOLLOW | (options.fresh ? O_EXCL : 0), 0o600);
  } catch (err) {
    throw new VfioError('ENOMEM', `cannot open memory file ${path}: ${err}`);
  }
  try {
    if (fstatSync(fd, { bigint: true }).size < size) ftruncateSync(fd, Number(size));
  } catch (err) {
    closeSync(fd);
    throw new VfioError('ENOMEM', `cannot size memory file ${path} to ${size} bytes: ${err}`);
  }
  let open = true;
  const populated = new PopulatedPages(fd, size);
  const account: MemoryAccount | undefined = options.budget?.open(name, fd);
  /** Counts this server's writes, so that renewLater's commit sees one made during its copy. */
  let writes = 0;

  const place = (offset: bigint, data: Uint8Array): void => {
    let done = 0;
    while (done < data.length) {
      done += writeSync(fd, data, done, data.length - done, Number(offset) + done);
    }
    if (options.sync) fdatasyncSync(fd);
  };

  const write = (offset: bigint, data: Uint8Array, charged: boolean): void => {
    writes++;
    if (account === undefined) {
      place(offset, data);
      return;
    }
    const end = offset + BigInt(data.length);
    account.release();
    const need = populated.holes(offset, end);
    if (charged) account.charge(offset, data.length, need);
    place(offset, data);
    if (need === 0n) return;
    populated.add(...populated.pages(offset, end));
    account.refresh();
  };

  /** A peer may have cut the file: grow it back (the cut range reads as zeros, as it did). */
  const regrow = (): void => {
    const found = fstatSync(fd, { bigint: true }).size;
    if (found >= size) return;
    ftruncateSync(fd, Number(size));
    options.onRegrown?.(path, found);
  };

  /** A new, empty file beside `path` for renew to fill and rename over it. @throws VfioError ENOMEM */
  const createRenewFile = (): { tmp: string; fresh: number } => {
    const tmp = `${path}.renew-${randomHex(6)}`;
    try {
      const { O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
      return { tmp, fresh: openSync(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600) };
    } catch (err) {
      throw new VfioError('ENOMEM', `cannot renew memory file ${path}: ${err}`);
    }
  };
  return {
    name,
    path,
    fd,
    size,
    restored: !options.fresh,
    read: (offset, buf) => preadFully(fd, offset, buf),
    write: (offset, data) => write(offset, data, true),
    writeThrough: (offset, data) => write(offset, data, true),
    writeOwn: (offset, data) => write(offset, data, false),
    // Lending the bytes needs a mapping of ours, which a peer's ftruncate could make SIGBUS.
    view: () => null,
    writeTarget: () => null,
    dropWriteTarget() {
      account?.release();
    },
    dataRanges: (start, end) => dataRanges(fd, start, end),
    touched() {
      if (!open) return 0n;
      regrow();
      return account !== undefined
        ? account.refresh()
        : fstatSync(fd, { bigint: true }).blocks * 512n;
    },
    clear(kept) {
      if (!open) return;
      writes++;
      punchOutside(fd, size, kept);
      populated.forget();
      account?.refresh();
    },
    sync() {
      if (open) fdatasyncSync(fd);
    },
    checkSize() {
      if (open) regrow();
    },
    renew() {
      if (!open) return;
      // A new inode in the file's place, renamed over it: a client of the last server that
      // pinned the old file's pages keeps only those.
      const { tmp, fresh } = createRenewFile();
      try {
        ftruncateSync(fresh, Number(size));
        copyPopulated(fd, fresh, size);
        if (options.sync) fdatasyncSync(fresh);
        renameSync(tmp, path);
        if (options.sync) syncDirectory(dirname(path)); // the rename itself on disk
      } catch (err) {
        closeSync(fresh);
        rmSync(tmp, { force: true });
        throw new VfioError('ENOMEM', `cannot renew memory file ${path}: ${err}`);
      }
      replaceFd(fd, fresh);
    },
    async renewLater() {
      if (!open) return null;
      const { tmp, fresh } = createRenewFile();
      const drop = (): void => {
        closeSync(fresh);
        rmSync(tmp, { force: true });
      };
      const began = writes;
      try {
        ftruncateSync(fresh, Number(size));
        if (!(await copyPopulatedLater(fd, fresh, size, () => open))) {
          drop();
          return null;
        }
        // The copy's blocks allocated here, off the event loop, not in commit's rename (ext4).
        await (options.sync ? fdatasyncLater(fresh) : writebackLater(fresh));
      } catch (err) {
        drop();
        throw new VfioError('ENOMEM', `cannot renew memory file ${path}: ${err}`);
      }
      let done = false;
      return {
        commit() {
          if (done) return false;
          done = true;
          if (!open || writes !== began) {
            drop();
            return false;
          }
          try {
            renameSync(tmp, path);
            if (options.sync) syncDirectory(dirname(path)); // the rename itself on disk
          } catch (err) {
            drop();
            throw new VfioError('ENOMEM', `cannot renew memory file ${path}: ${err}`);
          }
          const old = dupFd(fd);
          replaceFd(fd, fresh);
          closeLater(old);
          return true;
        },
        abandon() {
          if (!done) drop();
          done = true;
        },
      };
    },
    close() {
      account?.close();
      if (open) closeSync(fd);
      open = false;
    },
  };
}

const fdatasyncLater = promisify(fdatasync);

/** fsync(2) of a directory, so that a rename in it survives a power loss. */
function syncDirectory(dir: string): void {
  const d = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(d);
  } finally {
    closeSync(d);
  }
}
