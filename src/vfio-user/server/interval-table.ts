/**
 * Disjoint half-open intervals [address, address + size) of the 64-bit DMA space, sorted by
 * address in leaves of at most `LEAF_MAX` (a two-level B+-tree): the overlap check, the exact
 * lookup an unmap needs and the lookup of the interval holding an address are two binary
 * searches (O(log n)); insert and remove move at most `LEAF_MAX` items in a leaf and, on a split
 * or an emptied leaf, n / LEAF_MAX leaf references. (One flat sorted array was tried first: V8's
 * splice turns quadratic past ~10,000 items; 65,535 random inserts took 10 s.) libvfio-user keeps
 * the same table in a B-tree keyed by the last address (lib/dma.c dma_controller_add_region,
 * lib/btree.c); the kernel's type1 IOMMU in an rbtree (vfio_iommu_type1.c vfio_find_dma).
 */
import { hex } from '../../text/index.ts';

/** Items per leaf before it splits in two. */
const LEAF_MAX = 256;

/** A half-open interval [address, address + size) of DMA space (bytes). */
export interface Interval {
  readonly address: bigint;
  readonly size: bigint;
}

/**
 * Disjoint intervals in address order, as the module header describes: insert (refusing overlaps),
 * exact remove, lookup of the interval holding an address.
 */
export class IntervalTable<T extends Interval> {
  /** Non-empty leaves, each sorted by address, in address order; disjoint, so also by end. */
  #leaves: T[][] = [];
  #count = 0;

  /** How many intervals the table holds. */
  get size(): number {
    return this.#count;
  }

  /** Every interval, in address order (a copy). */
  values(): T[] {
    return this.#leaves.flat();
  }

  /** Index of the last leaf whose first address is ≤ `address`, or -1. */
  #leafOf(address: bigint): number {
    let lo = 0;
    let hi = this.#leaves.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#leaves[mid] as T[])[0]!.address <= address) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  /** Index in `leaf` of the first interval whose address is > `address` (upper bound). */
  static #after<T extends Interval>(leaf: readonly T[], address: bigint): number {
    let lo = 0;
    let hi = leaf.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((leaf[mid] as T).address <= address) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The interval with the greatest address ≤ `address`, if any. */
  #floor(address: bigint): T | undefined {
    const leaf = this.#leaves[this.#leafOf(address)];
    return leaf === undefined ? undefined : leaf[IntervalTable.#after(leaf, address) - 1];
  }

  /**
   * An interval sharing at least one address with [address, address + size), if any (size > 0).
   * Only the last interval starting before the end can overlap: those before it end before it
   * starts.
   */
  overlapping(address: bigint, size: bigint): T | undefined {
    const r = this.#floor(address + size - 1n);
    return r !== undefined && r.address + r.size > address ? r : undefined;
  }

  /** The interval holding `address`, if any. */
  containing(address: bigint): T | undefined {
    const r = this.#floor(address);
    return r !== undefined && address - r.address < r.size ? r : undefined;
  }

  /** The interval that is exactly [address, address + size), if any. */
  exact(address: bigint, size: bigint): T | undefined {
    const r = this.#floor(address);
    return r !== undefined && r.address === address && r.size === size ? r : undefined;
  }

  /**
   * Adds `item` (size > 0).
   * @throws RangeError when it overlaps an interval already present (check `overlapping` first).
   */
  insert(item: T): void {
    if (this.overlapping(item.address, item.size) !== undefined) {
      throw new RangeError(`interval ${hex(item.address)} overlaps the table`);
    }
    this.#count++;
    if (this.#leaves.length === 0) {
      this.#leaves.push([item]);
      return;
    }
    // Below every leaf it goes first in the first one.
    const li = Math.max(0, this.#leafOf(item.address));
    const leaf = this.#leaves[li] as T[];
    const i = IntervalTable.#after(leaf, item.address);
    if (i === leaf.length) leaf.push(item);
    else leaf.splice(i, 0, item);
    if (leaf.length > LEAF_MAX) this.#leaves.splice(li + 1, 0, leaf.splice(LEAF_MAX >>> 1));
  }

  /** Removes `item` (the very object); false when it is not in the table. */
  remove(item: T): boolean {
    const li = this.#leafOf(item.address);
    const leaf = this.#leaves[li];
    if (leaf === undefined) return false;
    const i = IntervalTable.#after(leaf, item.address) - 1;
    if (leaf[i] !== item) return false;
    this.#count--;
    if (leaf.length === 1) this.#leaves.splice(li, 1);
    else if (i === leaf.length - 1) leaf.pop();
    else leaf.splice(i, 1);
    return true;
  }

  /** Removes every interval and returns them in address order. */
  clear(): T[] {
    const all = this.values();
    this.#leaves = [];
    this.#count = 0;
    return all;
  }
}
