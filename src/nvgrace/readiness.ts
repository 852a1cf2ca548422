/**
 * nvgrace_gpu_wait_device_ready() (drivers/vfio/pci/nvgrace-gpu/main.c:867-903, constants
 * :30-35): at probe the driver
 * maps BAR0 and polls two registers — the C2C link status at 0x1498 and the HBM training
 * status at 0x200BC — until both read STATUS_READY (0xFF), every POLL_QUANTUM_MS (1 s) for
 * POLL_TIMEOUT_MS (30 s); otherwise the probe fails with ETIME. The emulation reads the
 * registers from the emulated BAR0 and keeps time on a virtual clock: a poll costs no real
 * second, so a device that never becomes ready fails at once, naming what it read.
 */

import { hex } from '../text/index.ts';
import { VfioError } from '../vfio/index.ts';

/** C2C_LINK_BAR0_OFFSET: the C2C link status register's offset in BAR0. */
export const C2C_LINK_BAR0_OFFSET = 0x1498;
/** HBM_TRAINING_BAR0_OFFSET: the HBM training status register's offset in BAR0. */
export const HBM_TRAINING_BAR0_OFFSET = 0x200bc;
/** STATUS_READY: what both status registers read once the device is ready. */
export const STATUS_READY = 0xff;
/** POLL_QUANTUM_MS: milliseconds between polls. */
export const POLL_QUANTUM_MS = 1000;
/** POLL_TIMEOUT_MS: milliseconds of polling before the probe fails with ETIME. */
export const POLL_TIMEOUT_MS = 30 * 1000;

/** What the probe saw: how many polls and the virtual milliseconds they took. */
export interface ReadyResult {
  readonly polls: number;
  readonly elapsedMs: number;
}

/**
 * Polls `read32(offset)` of BAR0 as the driver does, time passing by `POLL_QUANTUM_MS` a poll
 * (`readyAt(ms)` lets the emulated hardware change its registers at a virtual time).
 * @throws VfioError ETIME when the registers are not both STATUS_READY within 30 s
 */
export function waitDeviceReady(
  read32: (offset: number) => number,
  advance: (elapsedMs: number) => void = () => {},
): ReadyResult {
  let elapsedMs = 0;
  let polls = 0;
  let c2c = 0;
  let hbm = 0;
  for (;;) {
    advance(elapsedMs);
    polls++;
    c2c = read32(C2C_LINK_BAR0_OFFSET);
    hbm = read32(HBM_TRAINING_BAR0_OFFSET);
    if (c2c === STATUS_READY && hbm === STATUS_READY) return { polls, elapsedMs };
    elapsedMs += POLL_QUANTUM_MS; // msleep(POLL_QUANTUM_MS)
    if (elapsedMs > POLL_TIMEOUT_MS) break; // time_after(jiffies, timeout)
  }
  throw new VfioError(
    'ETIME',
    `device not ready after ${POLL_TIMEOUT_MS / 1000} s (${polls} polls): C2C link status ${hex(c2c)} at BAR0+${hex(C2C_LINK_BAR0_OFFSET)}, HBM training ${hex(hbm)} at BAR0+${hex(HBM_TRAINING_BAR0_OFFSET)} (ready is ${hex(STATUS_READY)})`,
  );
}
