/**
 * Faults the fuzzer has found, by name, with the test that recognises a draft that would hit
 * one. `fuzz --avoid NAME` steers the plan around them so that, while a fix is made elsewhere,
 * a run can look for the next fault; by default nothing is avoided. Both below are fixed now
 * (npm test's run avoids nothing); the names stay so that a run made with them replays.
 */
import { Command } from '../vfio-user/index.ts';
import type { FdKind, PlannedFrame } from './plan.ts';
import { HEADER_BYTES, readHeader } from './wire.ts';

/** What a fault's test looks at: the command number as sent, the payload, the fds. */
interface FrameView {
  readonly command: number;
  readonly payload: Uint8Array;
  readonly fds: readonly FdKind[];
}

/**
 * Faults the fuzzer once found, by name, with what they were: `--avoid NAME` keeps a run from
 * drawing them.
 */
export const KNOWN_FAULTS = {
  /**
   * Issue 7 item 5: a DMA_MAP with an fd maps its whole size at once, in 1 GiB windows, so a
   * size of 2^40 and more stalls every device (and 2^63 never ends). Fixed: DMA maps are lazy
   * (server-dma.ts).
   */
  'dma-map-huge': (d: FrameView) =>
    d.command === Command.DMA_MAP &&
    d.fds.length > 0 &&
    d.payload.length >= 32 &&
    new DataView(d.payload.buffer, d.payload.byteOffset).getBigUint64(24, true) > 1n << 32n,
  /**
   * Found by this fuzzer: an interrupt is a blocking write(2) of 1 to the client's eventfd
   * (vfio/irqs.ts signal). A blocking eventfd whose counter the client left at its maximum
   * makes that write block forever: the whole server (every device) hangs at the next
   * interrupt. The kernel's eventfd_signal() never blocks. Fixed: vfio/irqs.ts signals with
   * eventfdSignal (native/eventfd.c), which saturates instead.
   */
  'eventfd-full': (d: FrameView) =>
    d.command === Command.DEVICE_SET_IRQS && d.fds.includes('eventfd-full'),
} as const;

/** A name of `KNOWN_FAULTS`. */
export type KnownFault = keyof typeof KNOWN_FAULTS;

/** Whether `name` is one of `KNOWN_FAULTS`. */
export function isKnownFault(name: string): name is KnownFault {
  return Object.hasOwn(KNOWN_FAULTS, name);
}

/** Whether frame `f` would hit one of the faults in `avoid`. */
export function matchesKnownFault(f: PlannedFrame, avoid: ReadonlySet<KnownFault>): boolean {
  if (avoid.size === 0 || f.bytes.length < HEADER_BYTES) return false;
  const view: FrameView = {
    command: readHeader(f.bytes).command,
    payload: f.bytes.subarray(HEADER_BYTES),
    fds: f.fds,
  };
  for (const name of avoid) if (KNOWN_FAULTS[name](view)) return true;
  return false;
}
