/**
 * Disjoint half-open intervals [address, address + size) of the 64-bit DMA space, kept sorted
 * by address in one array: the overlap check, the exact lookup an unmap needs and the lookup of
 * the interval holding an address are binary searches (O(log n)); insert and remove add one
 * splice, a memmove of at most n pointers (measured in server-dma.test.ts's neighbourhood:
 * 65,535 inserts in random order stay well under a second). libvfio-user keeps the same table in
 * a B-tree keyed by the last address (lib/dma.c dma_controller_add_region, lib/btree.c); the
 * kernel's type1 IOMMU in an rbtree (vfio_iommu_type1.c vfio_find_dma).
 */

export interface Interval {
  readonly address: bigint;
  readonly size: bigint;
}

export class IntervalTable<T extends Interval> {
  /** Sorted by address; disjoint, so also sorted by end. */
  readonly #items: T[] = [];

  get size(): number {
    return this.#items.length;
  }

  /** Every interval, in address order (a copy). */
  values(): T[] {
    return [...this.#items];
  }

  /** Index of the first interval whose address is > `address` (upper bound). */
  #after(address: bigint): number {
    let lo = 0;
    let hi = this.#items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#items[mid] as T).address <= address) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * An interval sharing at least one address with [address, address + size), if any (size > 0).
   * Only the last interval starting before the end can overlap: those before it end before it
   * starts.
   */
  overlapping(address: bigint, size: bigint): T | undefined {
    const i = this.#after(address + size - 1n) - 1;
    const r = this.#items[i];
    return r !== undefined && r.address + r.size > address ? r : undefined;
  }

  /** The interval holding `address`, if any. */
  containing(address: bigint): T | undefined {
    const r = this.#items[this.#after(address) - 1];
    return r !== undefined && address - r.address < r.size ? r : undefined;
  }

  /** The interval that is exactly [address, address + size), if any. */
  exact(address: bigint, size: bigint): T | undefined {
    const r = this.#items[this.#after(address) - 1];
    return r !== undefined && r.address === address && r.size === size ? r : undefined;
  }

  /**
   * Adds `item` (size > 0).
   * @throws RangeError when it overlaps an interval already present (check `overlapping` first).
   */
  insert(item: T): void {
    if (this.overlapping(item.address, item.size) !== undefined) {
      throw new RangeError(`interval 0x${item.address.toString(16)} overlaps the table`);
    }
    const i = this.#after(item.address);
    if (i === this.#items.length) this.#items.push(item);
    else this.#items.splice(i, 0, item);
  }

  /** Removes `item` (the very object); false when it is not in the table. */
  remove(item: T): boolean {
    const i = this.#after(item.address) - 1;
    if (this.#items[i] !== item) return false;
    if (i === this.#items.length - 1) this.#items.pop();
    else this.#items.splice(i, 1);
    return true;
  }

  /** Removes every interval and returns them in address order. */
  clear(): T[] {
    return this.#items.splice(0);
  }
}
