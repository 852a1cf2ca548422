/**
 * A cap on the device memory a server holds: the pages populated in the memfds behind GPU RAM,
 * BARs and ATSD pages (shared-memory.ts), all devices together. Sparse memfds cost nothing until
 * touched, so six 128 GiB GPU RAM apertures are no cost at start and up to 6 × 16 GiB of real
 * memory once a guest has used them: past the host's memory, the OOM killer ends the server.
 *
 * What is counted: each memory's populated bytes as the kernel has them (fstat st_blocks × 512,
 * which shmem keeps per page allocated, whoever touched it), read again after every write of
 * ours that fills a hole, before refusing one, and by `refresh()` (serve runs it periodically).
 * What is refused: a write of ours (a region write) that would populate `need` more bytes when
 * in use (populated + reserved) + need would pass the limit; it fails with ENOMEM before any byte is placed, and
 * overwriting pages already populated always succeeds.
 *
 * Limits:
 * - A client's own mapping populates pages without asking (a fault in the client cannot be
 *   refused here): those pages are counted when found (at once for the memory being written,
 *   at the next refresh for the others), so a guest touching memory through its mappings can
 *   pass the budget; then every region write that needs a new page fails with ENOMEM.
 * - Our reads never populate (pread of a hole gives zeros without allocating a page, and holes
 *   are never read through our mapping).
 * - A write received in place (`SharedMemory.writeTarget`) is reserved before its bytes arrive;
 *   each memory holds at most one reservation, which ends with its next write or write target,
 *   so a client that disconnects inside a message holds nothing.
 */

import { fstatSync } from 'node:fs';
import { hex } from '../text/index.ts';
import { VfioError } from './errors.ts';

/** A refused write, for the caller's tracepoint. */
export interface MemoryRefusal {
  /** The memory's name ("vfio-nvlink2:gpu-ram:0002:01:00.0", "0002:01:00.0-BAR1"...). */
  readonly name: string;
  readonly offset: bigint;
  readonly count: number;
  /** Bytes the write would have populated. */
  readonly need: bigint;
  /** Bytes populated in every memory, plus those reserved, when it was refused. */
  readonly inUse: bigint;
  readonly budget: bigint;
}

const UNITS = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'] as const;

/** "1 MiB", "1.5 GiB", "4000 bytes": binary units, at most two decimals. */
export function formatBytes(bytes: bigint | number): string {
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const text = unit === 0 ? String(value) : String(Math.round(value * 100) / 100);
  return `${text} ${UNITS[unit]}`;
}

/** Populated bytes of `fd` (st_blocks counts 512-byte units). @throws SystemCallError EBADF */
function populatedBytes(fd: number): bigint {
  return fstatSync(fd, { bigint: true }).blocks * 512n;
}

/** One memory's share of a budget. */
export class MemoryAccount {
  #touched = 0n;
  #reserved = 0n;
  #closed = false;

  constructor(
    private readonly budget: MemoryBudget,
    readonly name: string,
    private readonly fd: number,
  ) {}

  /** Populated bytes when last read. */
  get touched(): bigint {
    return this.#touched;
  }

  /** Reads the populated bytes again (one fstat); returns them. */
  refresh(): bigint {
    if (this.#closed) return 0n;
    const now = populatedBytes(this.fd);
    this.budget.adjustTouched(now - this.#touched);
    this.#touched = now;
    return now;
  }

  /**
   * Ends this memory's reservation (see `reserve`).
   * @returns the bytes it held (0n without one).
   */
  release(): bigint {
    const held = this.#reserved;
    this.budget.adjustReserved(-held);
    this.#reserved = 0n;
    return held;
  }

  /**
   * Admits a write of `count` bytes at `offset` that populates `need` more bytes.
   * @throws VfioError ENOMEM when it would pass the budget (after the refusal is reported).
   */
  charge(offset: bigint, count: number, need: bigint): void {
    if (need === 0n || this.fits(need)) return;
    const refusal: MemoryRefusal = {
      name: this.name,
      offset,
      count,
      need,
      inUse: this.budget.inUse,
      budget: this.budget.limit ?? 0n,
    };
    this.budget.refuse(refusal);
    throw new VfioError(
      'ENOMEM',
      `${this.name}: writing ${count} bytes at ${hex(offset)} would populate ${formatBytes(need)} more, past the memory budget of ${formatBytes(refusal.budget)} (${formatBytes(refusal.inUse)} in use)`,
    );
  }

  /**
   * Holds `need` bytes for a write whose bytes are about to be received in place; false (and
   * nothing held) when they do not fit. Replaces this memory's earlier reservation.
   */
  reserve(need: bigint): boolean {
    this.release();
    if (need === 0n) return true;
    if (!this.fits(need)) return false;
    this.#reserved = need;
    this.budget.adjustReserved(need);
    return true;
  }

  /** Whether `need` more bytes fit: this memory read again, then, before a no, every memory. */
  private fits(need: bigint): boolean {
    const limit = this.budget.limit;
    this.refresh();
    if (limit === undefined || this.budget.inUse + need <= limit) return true;
    this.budget.refresh();
    return this.budget.inUse + need <= limit;
  }

  /** Leaves the budget (the memory is closed). */
  close(): void {
    this.release();
    this.budget.adjustTouched(-this.#touched);
    this.#touched = 0n;
    this.#closed = true;
    this.budget.forget(this);
  }
}

/**
 * The memory budget of every device of a server, as the module header describes: accounts,
 * populated bytes, refusals with ENOMEM.
 */
export class MemoryBudget {
  readonly #accounts = new Set<MemoryAccount>();
  #touched = 0n;
  #reserved = 0n;
  #refused = 0;

  /**
   * @param limit bytes every memory may populate together; undefined counts without refusing.
   * @param onRefuse called for each refused write (a tracepoint), before the ENOMEM is thrown.
   * @throws RangeError for a negative limit.
   */
  constructor(
    readonly limit: bigint | undefined,
    private readonly onRefuse?: (refusal: MemoryRefusal) => void,
  ) {
    if (limit !== undefined && limit < 0n)
      throw new RangeError('a memory budget is never negative');
  }

  /** Bytes populated in every memory, as last read. */
  get touched(): bigint {
    return this.#touched;
  }

  /** `touched` plus what writes being received in place have reserved: what the limit caps. */
  get inUse(): bigint {
    return this.#touched + this.#reserved;
  }

  /** Writes refused so far. */
  get refused(): number {
    return this.#refused;
  }

  /** The memories counted, with their populated bytes as last read. */
  get accounts(): readonly MemoryAccount[] {
    return [...this.#accounts];
  }

  /** Counts the memfd `fd` (populated pages already there included). */
  open(name: string, fd: number): MemoryAccount {
    const account = new MemoryAccount(this, name, fd);
    this.#accounts.add(account);
    account.refresh();
    return account;
  }

  /** Reads every memory again (one fstat each); returns their populated bytes. */
  refresh(): bigint {
    for (const a of this.#accounts) a.refresh();
    return this.#touched;
  }

  /** @internal MemoryAccount's bookkeeping. */
  adjustTouched(delta: bigint): void {
    this.#touched += delta;
  }

  /** @internal */
  adjustReserved(delta: bigint): void {
    this.#reserved += delta;
  }

  /** @internal */
  refuse(refusal: MemoryRefusal): void {
    this.#refused++;
    this.onRefuse?.(refusal);
  }

  /** @internal */
  forget(account: MemoryAccount): void {
    this.#accounts.delete(account);
  }
}
