/**
 * The GPU's address-translation cache (ATS: the GPU caches CPU page-table translations it got
 * through the NPU's nest MMU) and what an ATSD launch drops from it. A launch carries no LPID:
 * the firmware binds one to each ATSD register (skiboot hw/npu2.c npu2_map_lpar(),
 * NPU2_XTS_MMIO_ATSDn_LPARID), so `invalidate` takes the bound LPID besides LAUNCH and AVA.
 *
 * What the fields select (ats-cache-launch.ts has the layout):
 * - scope: PRS=1 entries of process scope (a PID's translations), PRS=0 partition scope;
 *   always only entries of the bound LPID.
 * - IS: 0 the page holding AVA of size AP (an entry of another size is not hit, as with tlbie);
 *   1 every entry of PID (process scope) or every partition-scoped entry (partition scope);
 *   2 every entry of the LPID in the chosen scope; 3 every entry of the LPID. (The reference
 *   documents 0 and 1; 2 and 3 follow tlbie's IS=2/3 restricted to the bound LPID.)
 * - RIC: 0 TLB entries, 1 page-walk-cache entries, 2 both; 3 is reserved and drops nothing.
 * - F (no flush): matching entries are only marked stale (they stay and may still be used)
 *   until a later launch with F=0, which drops them together with its own matches. This is our
 *   model of "no flush"; the kernel always launched with F=0.
 * - R, LP, B, L and the OpenCAPI bits do not select anything here (the kernel never set R).
 */
import {
  type AtsdLaunchFields,
  type AtsPageSize,
  decodeLaunch,
  PAGE_BYTES,
  pageSizeOfAp,
} from './ats-cache-launch.ts';

/** Whose translation an entry is: a process's (PRS=1) or the partition's (PRS=0). */
export type AtsScope = 'process' | 'partition';
/** A translation (TLB) or a page-walk-cache entry. */
export type AtsKind = 'tlb' | 'pwc';

/**
 * One cached translation: LPID, PID, page (effective address `ea` aligned to `pageSize`), scope and
 * kind.
 */
export interface AtsEntry {
  readonly lpid: number;
  /** PID of a process-scoped entry; ignored (0) for partition scope. */
  readonly pid: number;
  /** Effective address of the page (aligned to its size). */
  readonly ea: bigint;
  readonly pageSize: AtsPageSize;
  readonly scope: AtsScope;
  readonly kind: AtsKind;
}

/** An entry as the cache holds it: `stale` after a no-flush launch hit it. */
export interface CachedAtsEntry extends AtsEntry {
  readonly stale: boolean;
}

/** What one ATSD launch did: its decoded fields and the entries it dropped. */
export interface AtsInvalidation {
  readonly fields: AtsdLaunchFields;
  /** Entries dropped by this launch (including stale ones a flushing launch cleared). */
  readonly dropped: readonly AtsEntry[];
  /** Entries marked stale by a no-flush launch. */
  readonly staled: readonly AtsEntry[];
}

/**
 * Entries for `AtsCache.populate`: `count` (default 1) consecutive pages of `pageSize` from `ea`,
 * for `lpid`/`pid`, process scope and TLB kind unless given.
 */
export interface PopulateRequest {
  readonly lpid: number;
  readonly pid?: number;
  /** First page; aligned down to the page size. */
  readonly ea: bigint;
  readonly pageSize: AtsPageSize;
  readonly count?: number;
  readonly scope?: AtsScope;
  readonly kind?: AtsKind;
}

function entryKey(e: AtsEntry): string {
  return `${e.kind}/${e.scope}/${e.lpid}/${e.pid}/${e.pageSize}/${e.ea.toString(16)}`;
}

/** Does the launch select `e` (ignoring F)? */
export function launchSelects(
  fields: AtsdLaunchFields,
  ava: bigint,
  lpid: number,
  e: AtsEntry,
): boolean {
  if (e.lpid !== lpid) return false;
  if (fields.ric === 3) return false;
  if (fields.ric === 0 && e.kind !== 'tlb') return false;
  if (fields.ric === 1 && e.kind !== 'pwc') return false;
  const scope: AtsScope = fields.prs ? 'process' : 'partition';
  if (fields.is !== 3 && e.scope !== scope) return false;
  switch (fields.is) {
    case 0: {
      const size = pageSizeOfAp(fields.ap);
      if (size === undefined || e.pageSize !== size) return false;
      if (scope === 'process' && e.pid !== fields.pid) return false;
      return e.ea === (ava & ~(PAGE_BYTES[size] - 1n));
    }
    case 1:
      return scope === 'partition' || e.pid === fields.pid;
    default:
      return true;
  }
}

/**
 * The address-translation cache of one GPU: entries inserted by tests or the emulation, dropped by
 * ATSD launches (`invalidate`) as the module header describes.
 */
export class AtsCache {
  private readonly map = new Map<string, CachedAtsEntry>();

  /** @param name the GPU's PCI name, for messages. */
  constructor(readonly name: string) {}

  /** Adds (or refreshes, clearing `stale`) one entry; `ea` is aligned down to its page. */
  insert(entry: Omit<AtsEntry, 'kind' | 'scope' | 'pid'> & Partial<AtsEntry>): AtsEntry {
    const e: CachedAtsEntry = {
      lpid: entry.lpid,
      pid: entry.scope === 'partition' ? 0 : (entry.pid ?? 0),
      ea: entry.ea & ~(PAGE_BYTES[entry.pageSize] - 1n),
      pageSize: entry.pageSize,
      scope: entry.scope ?? 'process',
      kind: entry.kind ?? 'tlb',
      stale: false,
    };
    this.map.set(entryKey(e), e);
    return e;
  }

  /** Inserts `count` consecutive pages from `ea`. */
  populate(req: PopulateRequest): AtsEntry[] {
    const step = PAGE_BYTES[req.pageSize];
    const base = req.ea & ~(step - 1n);
    return Array.from({ length: req.count ?? 1 }, (_, i) =>
      this.insert({ ...req, ea: base + BigInt(i) * step }),
    );
  }

  /** Every entry, in insertion order. */
  entries(): CachedAtsEntry[] {
    return [...this.map.values()];
  }

  get size(): number {
    return this.map.size;
  }

  clear(): void {
    this.map.clear();
  }

  /**
   * Applies one ATSD launch: `launch` and `ava` as written to the register, `lpid` the LPID the
   * firmware bound to that register.
   */
  invalidate(launch: bigint, ava: bigint, lpid: number): AtsInvalidation {
    const fields = decodeLaunch(launch);
    const dropped: AtsEntry[] = [];
    const staled: AtsEntry[] = [];
    for (const [key, e] of this.map) {
      const hit = launchSelects(fields, ava, lpid, e);
      if (fields.f) {
        if (hit && !e.stale) {
          this.map.set(key, { ...e, stale: true });
          staled.push(e);
        }
      } else if (hit || e.stale) {
        this.map.delete(key);
        dropped.push(e);
      }
    }
    return { fields, dropped, staled };
  }
}

/** The ATS caches of all GPUs of a host, by GPU PCI name, created on first use. */
export class AtsCacheSet {
  private readonly caches = new Map<string, AtsCache>();

  get(gpuName: string): AtsCache {
    let cache = this.caches.get(gpuName);
    if (!cache) {
      cache = new AtsCache(gpuName);
      this.caches.set(gpuName, cache);
    }
    return cache;
  }

  has(gpuName: string): boolean {
    return this.caches.has(gpuName);
  }

  all(): AtsCache[] {
    return [...this.caches.values()];
  }
}
