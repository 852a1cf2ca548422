/**
 * One NPU2 ATSD register block, emulated in a 64 KiB memfd page (the POWER page the kernel maps
 * for it), shared by every open bridge whose ATSD address it is (the 5.12 fallback makes
 * several bridges share entry 0). Registers are 64-bit big-endian: LAUNCH 0x00, AVA 0x08,
 * STAT 0x10 (bit 0, the MSB, = pending). Follows the protocol the kernel used
 * (npu-dma.c mmio_invalidate(): write AVA, barrier, write LAUNCH, poll STAT until 0).
 *
 * How a launch runs:
 * 1. A LAUNCH write arrives: a region write that stores byte 7 of LAUNCH, its least significant
 *    byte (the whole 8-byte value is taken after the write, so a 64-bit store or two 32-bit
 *    stores high word first launch once), or a non-zero LAUNCH word the watcher finds in the page.
 * 2. STAT becomes pending (0x8000000000000000) at once, in the page itself, so a region read or a
 *    client polling its mapping sees it. AVA is latched then.
 * 3. The invalidation runs asynchronously, on the next turn of the event loop (setImmediate), or
 *    at once when `settle()` is called: it applies to the ATS caches with the LPID the firmware
 *    has bound to this register at that moment; then LAUNCH and STAT are cleared (0).
 *    Launches arriving while one is pending queue behind it; STAT stays pending until the
 *    queue is empty.
 *
 * Launches through a mapping: another process writing the memfd page cannot trap into us, so
 * while the page is mapped a timer calls `pollMappedLaunches()` (also callable directly): a
 * non-zero LAUNCH with nothing pending is a launch. Limits: a LAUNCH word of 0 cannot be seen
 * through a mapping (it is a valid launch: 4K VA, PID 0, partition scope); two launches written
 * between polls without waiting for STAT are seen as the last one; a launch written while one is
 * pending is seen only after that one completes, unless its completion clears LAUNCH first (the
 * kernel always waits for STAT before the next launch).
 * STAT writes by a client are not protected; STAT is rewritten at each state change.
 * A mapping lets a client change the page at any moment, so each value is read once per use
 * (LAUNCH when polled or after a region write, AVA when the launch is queued), through our own
 * file description (pread), and only decoded as bit fields, never used as a size or index.
 */
import type { DeviceMemory } from './device-memory.ts';

/** PAGE_SIZE on POWER: the ATSD region's size and its only valid mmap length. */
export const ATSD_PAGE_SIZE = 0x10000n;

/** Register offsets in the page (npu-dma.c XTS_ATSD_LAUNCH 0, _AVA 1, _STAT 2, in u64 units). */
export const AtsdRegister = { LAUNCH: 0x00, AVA: 0x08, STAT: 0x10 } as const;

/** STAT bit 0 (IBM numbering): an invalidation is in flight. */
export const ATSD_STAT_PENDING = 1n << 63n;

/** Performs one launch on the caches; returns how many entries it dropped. */
export type AtsdExecutor = (launch: bigint, ava: bigint, source: string) => number;

interface PendingLaunch {
  readonly launch: bigint;
  readonly ava: bigint;
  readonly source: string;
}

const POLL_INTERVAL_MS = 1;

/**
 * One emulated ATSD register block (LAUNCH, AVA, STAT) in a 64 KiB memfd page; runs launches as the
 * module header describes.
 */
export class AtsdRegisterPage {
  private readonly queue: PendingLaunch[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  private timer: NodeJS.Timeout | undefined;
  private mappings = 0;
  /** Launches completed, for inspection. */
  completed = 0;

  constructor(
    readonly address: bigint,
    readonly memory: DeviceMemory,
    private readonly execute: AtsdExecutor,
  ) {}

  /** A register as the page holds it now. */
  readRegister(offset: number): bigint {
    const b = new Uint8Array(8);
    this.memory.read(BigInt(offset), b);
    return new DataView(b.buffer).getBigUint64(0, false);
  }

  private writeRegister(offset: number, value: bigint): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, value, false);
    this.memory.writeOwn(BigInt(offset), b);
  }

  get pending(): boolean {
    return this.queue.length > 0;
  }

  /** A region write landed at [offset, offset+count): starts a launch if it stored LAUNCH's last byte. */
  afterRegionWrite(offset: bigint, count: number, source: string): void {
    if (offset <= 7n && offset + BigInt(count) > 7n)
      this.launch(this.readRegister(AtsdRegister.LAUNCH), source);
    else if (offset < 0x18n && offset + BigInt(count) > 0x10n) this.writeStat();
  }

  /** Starts a launch of `word` with the AVA the page holds now. */
  launch(word: bigint, source: string): void {
    this.queue.push({ launch: word, ava: this.readRegister(AtsdRegister.AVA), source });
    this.writeStat();
    this.scheduled ??= setImmediate(() => {
      this.scheduled = undefined;
      this.settle();
    });
  }

  /** Completes every pending launch now. */
  settle(): void {
    if (this.scheduled) {
      clearImmediate(this.scheduled);
      this.scheduled = undefined;
    }
    while (this.queue.length > 0) {
      const next = this.queue[0] as PendingLaunch;
      this.execute(next.launch, next.ava, next.source);
      this.completed++;
      this.queue.shift();
      this.writeRegister(AtsdRegister.LAUNCH, 0n);
    }
    this.writeStat();
  }

  private writeStat(): void {
    this.writeRegister(AtsdRegister.STAT, this.pending ? ATSD_STAT_PENDING : 0n);
  }

  /**
   * Looks for a launch written through a mapping: a non-zero LAUNCH while nothing is pending.
   * @returns whether a launch was started.
   */
  pollMappedLaunches(source = 'mapping'): boolean {
    if (this.pending) return false;
    const word = this.readRegister(AtsdRegister.LAUNCH);
    if (word === 0n) return false;
    this.launch(word, source);
    return true;
  }

  /** A mapping was handed out: poll while any exists. */
  mapped(): void {
    this.mappings++;
    this.timer ??= setInterval(() => this.pollMappedLaunches(), POLL_INTERVAL_MS).unref();
  }

  /** A mapping's device was released. */
  unmapped(): void {
    if (this.mappings > 0) this.mappings--;
    if (this.mappings === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  get mappingCount(): number {
    return this.mappings;
  }
}

/** The ATSD register pages of a host by physical address. */
export class AtsdRegisterSet {
  private readonly pages = new Map<bigint, AtsdRegisterPage>();

  /** The page at `address`, created with `create` the first time. */
  get(address: bigint, create: () => AtsdRegisterPage): AtsdRegisterPage {
    let page = this.pages.get(address);
    if (!page) {
      page = create();
      this.pages.set(address, page);
    }
    return page;
  }

  peek(address: bigint): AtsdRegisterPage | undefined {
    return this.pages.get(address);
  }

  all(): AtsdRegisterPage[] {
    return [...this.pages.values()];
  }

  /** Completes everything pending on every page. */
  settleAll(): void {
    for (const p of this.pages.values()) p.settle();
  }
}
