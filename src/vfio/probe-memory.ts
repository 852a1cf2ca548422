/**
 * Memory for probing a device instead of serving it (`dt doctor` opens every function with its
 * variant to learn what the init registers, once per kernel it replays): the SharedMemory shape
 * kept in this process, a page allocated at its first write, and no descriptor. A sparse memfd
 * per GPU RAM region, ATSD page and BAR costs a memfd_create, a reopen and two closes each, the
 * largest part of a probe; what the init registers does not depend on where the bytes live.
 */
import { VfioError } from './errors.ts';
import type { SharedMemory } from './shared-memory.ts';

const PAGE = 4096n;

/**
 * A `SharedMemory` of `size` bytes in this process (name and size as createMemfdMemory's). Its
 * `fd` is -1: nothing can map it or send it to a peer (a probe serves no client); `view` and
 * `writeTarget` lend nothing (callers then read or write through a buffer of their own).
 * @throws VfioError EINVAL on a write outside [0, size), a read before 0, either after close.
 */
export function createProbeMemory(name: string, size: bigint): SharedMemory {
  /** Written pages by page number. */
  const pages = new Map<bigint, Uint8Array>();
  let open = true;
  const check = (offset: bigint, length: number, what: string) => {
    if (!open) throw new VfioError('EINVAL', `${name}: ${what} after close`);
    if (offset < 0n || offset + BigInt(length) > size)
      throw new VfioError(
        'EINVAL',
        `${name}: ${what} of ${length} bytes at ${offset} outside ${size}`,
      );
  };
  /** Calls `each(page bytes or undefined, offset in page, offset in buffer, count)` over a span. */
  const span = (
    offset: bigint,
    length: number,
    each: (page: bigint, at: number, done: number, count: number) => void,
  ) => {
    let done = 0;
    while (done < length) {
      const abs = offset + BigInt(done);
      const page = abs / PAGE;
      const at = Number(abs - page * PAGE);
      const count = Math.min(length - done, Number(PAGE) - at);
      each(page, at, done, count);
      done += count;
    }
  };
  const write = (offset: bigint, data: Uint8Array) => {
    check(offset, data.length, 'write');
    span(offset, data.length, (page, at, done, count) => {
      let bytes = pages.get(page);
      if (!bytes) {
        bytes = new Uint8Array(Number(PAGE));
        pages.set(page, bytes);
      }
      bytes.set(data.subarray(done, done + count), at);
    });
  };
  return {
    name,
    fd: -1,
    size,
    read(offset, buf) {
      // As pread: bytes past the end read as zero.
      check(offset < size ? offset : 0n, 0, 'read');
      span(offset, buf.length, (page, at, done, count) => {
        const bytes = pages.get(page);
        if (bytes) buf.set(bytes.subarray(at, at + count), done);
        else buf.fill(0, done, done + count);
      });
    },
    write,
    writeThrough: write,
    writeOwn: write,
    view: () => null,
    writeTarget: () => null,
    dropWriteTarget() {},
    dataRanges(start, end) {
      const out: [bigint, bigint][] = [];
      for (const page of [...pages.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
        const from = page * PAGE > start ? page * PAGE : start;
        const to = (page + 1n) * PAGE < end ? (page + 1n) * PAGE : end;
        if (from >= to) continue;
        const last = out.at(-1);
        if (last && last[1] === from) last[1] = to;
        else out.push([from, to]);
      }
      return out;
    },
    touched: () => BigInt(pages.size) * PAGE,
    clear(kept = []) {
      // As punchOutside: every byte outside `kept` reads as zero; a page with none kept is gone.
      for (const [page, bytes] of [...pages]) {
        const base = page * PAGE;
        let keeps = false;
        let at = 0n;
        for (const [from, to] of kept) {
          const a = from > base ? from - base : 0n;
          const b = to < base + PAGE ? to - base : PAGE;
          if (a >= b) continue;
          if (a > at) bytes.fill(0, Number(at), Number(a));
          if (b > at) at = b;
          keeps = true;
        }
        if (!keeps) pages.delete(page);
        else if (at < PAGE) bytes.fill(0, Number(at));
      }
    },
    close() {
      pages.clear();
      open = false;
    },
  };
}
