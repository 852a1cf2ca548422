/**
 * The fuzzer's well-behaved client, the project's own VfioUserClient speaking as a VMM would:
 * before the run it learns each device's regions and IRQs (what the planner aims at), reads
 * one byte of every region (so memory the server creates on first use exists before the fd
 * baseline is taken) and writes the canaries; after the run it checks every device is still
 * served right — VERSION, DEVICE_GET_INFO the same as before, a REGION_WRITE read back by a
 * REGION_READ — and that every canary reads back unchanged. Every wait is bounded.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { messageOf } from '../errors/index.ts';
import { closeFd } from '../native/index.ts';
import { NVLINK2_RAM_REGION_TYPE } from '../nvlink2/index.ts';
import type { ServedDevice } from '../serve-dir/index.ts';
import { hex } from '../text/index.ts';
import { VfioUserClient } from '../vfio-user/index.ts';
import { CANARY_END, canariesFor, GPU_RAM_REGION } from './canary.ts';
import type { FuzzDevice } from './plan.ts';
import { Random } from './random.ts';

const OP_TIMEOUT_MS = 60_000;
const CONNECT_ATTEMPTS = 1500;
/** Where the round trip writes: GPU RAM past the canaries, else BAR2 (a bridge's). */
const GPU_CHECK_OFFSET = CANARY_END + (1n << 30n);
const BRIDGE_CHECK_REGION = 2;
const BRIDGE_CHECK_OFFSET = 0x800n;
const CHECK_BYTES = 4096;

/** `p`, or a rejection naming `what` after OP_TIMEOUT_MS. */
async function bounded<T>(what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: no answer in ${OP_TIMEOUT_MS} ms`)),
      OP_TIMEOUT_MS,
    );
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Connects and negotiates, retrying while the server still releases an earlier client (EBUSY).
 * @throws the last attempt's error (ReplyError EBUSY, a SystemCallError) after CONNECT_ATTEMPTS.
 */
export async function connectWhenFree(socket: string): Promise<VfioUserClient> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await bounded(`connect ${socket}`, VfioUserClient.connect(socket));
    } catch (e) {
      if (attempt >= CONNECT_ATTEMPTS) throw e;
      await sleep(20);
    }
  }
}

/** A device as read before the run (DEVICE_GET_INFO, regions, IRQs), to compare with after it. */
export interface DeviceFacts {
  readonly device: FuzzDevice;
  /** DEVICE_GET_INFO before the run: flags, regions, IRQ indexes. */
  readonly info: { flags: number; numRegions: number; numIrqs: number };
}

function isGpuRam(raw: { decoded: { caps: { value: { kind: string; type?: number } }[] } }) {
  return raw.decoded.caps.some(
    (c) => c.value.kind === 'type' && c.value.type === NVLINK2_RAM_REGION_TYPE,
  );
}

/**
 * Learns a device, touches one byte of each region, and (on a GPU) writes its canaries.
 * @throws Error naming the device when any step fails.
 */
export async function prepareDevice(
  served: ServedDevice,
  seed: number,
  index: number,
): Promise<DeviceFacts> {
  const c = await connectWhenFree(served.socket);
  try {
    const what = served.address;
    const info = await bounded(`${what}: DEVICE_GET_INFO`, c.getDeviceInfo());
    const regionSizes: bigint[] = [];
    let gpu = false;
    for (let r = 0; r < info.numRegions; r++) {
      try {
        const ri = await bounded(`${what}: region ${r} info`, c.regionInfo(r));
        if (ri.fd !== null) closeFd(ri.fd);
        regionSizes.push(ri.info.size);
        if (r === GPU_RAM_REGION && isGpuRam(ri)) gpu = true;
        if (ri.info.size > 0n) await bounded(`${what}: read region ${r}`, c.regionRead(r, 0n, 1));
      } catch {
        regionSizes.push(0n); // no such region (VGA), or not readable
      }
    }
    const irqCounts: number[] = [];
    for (let i = 0; i < info.numIrqs; i++) {
      irqCounts.push((await bounded(`${what}: IRQ ${i} info`, c.getIrqInfo(i))).count);
    }
    if (gpu) {
      for (const k of canariesFor(seed, index)) {
        await bounded(`${what}: canary write`, c.regionWrite(GPU_RAM_REGION, k.offset, k.bytes));
      }
    }
    return {
      device: { address: served.address, socket: served.socket, gpu, regionSizes, irqCounts },
      info: { flags: info.flags, numRegions: info.numRegions, numIrqs: info.numIrqs },
    };
  } finally {
    c.close();
  }
}

/** One failed check: the device and what was wrong. */
export interface CheckFailure {
  readonly device: string;
  readonly what: string;
}

/** Serves `facts.device` right, and its canaries are intact? Failures, none when all is well. */
export async function checkDevice(
  facts: DeviceFacts,
  seed: number,
  index: number,
): Promise<CheckFailure[]> {
  const d = facts.device;
  const fail = (what: string): CheckFailure => ({ device: d.address, what });
  let c: VfioUserClient;
  try {
    c = await connectWhenFree(d.socket);
  } catch (e) {
    return [fail(`VERSION: ${messageOf(e)}`)];
  }
  const failures: CheckFailure[] = [];
  try {
    const info = await bounded(`${d.address}: DEVICE_GET_INFO`, c.getDeviceInfo());
    const now = { flags: info.flags, numRegions: info.numRegions, numIrqs: info.numIrqs };
    if (JSON.stringify(now) !== JSON.stringify(facts.info)) {
      failures.push(
        fail(`DEVICE_GET_INFO ${JSON.stringify(now)}, before ${JSON.stringify(facts.info)}`),
      );
    }
    const region = d.gpu ? GPU_RAM_REGION : BRIDGE_CHECK_REGION;
    const offset = d.gpu ? GPU_CHECK_OFFSET : BRIDGE_CHECK_OFFSET;
    const data = new Random(seed, 0x0c4ec000 + index).bytes(CHECK_BYTES);
    const written = await bounded(
      `${d.address}: REGION_WRITE`,
      c.regionWrite(region, offset, data),
    );
    const back = await bounded(
      `${d.address}: REGION_READ`,
      c.regionRead(region, offset, data.length),
    );
    if (written !== data.length || !Buffer.from(back).equals(Buffer.from(data))) {
      failures.push(
        fail(
          `region ${region} at ${hex(offset)}: wrote ${written} bytes, read back different data`,
        ),
      );
    }
    if (d.gpu) {
      for (const k of canariesFor(seed, index)) {
        const now = await bounded(
          `${d.address}: canary read`,
          c.regionRead(GPU_RAM_REGION, k.offset, k.bytes.length),
        );
        if (!Buffer.from(now).equals(Buffer.from(k.bytes))) {
          const at = firstDifference(now, k.bytes);
          failures.push(fail(`GPU RAM canary at ${hex(k.offset + BigInt(at))} changed`));
        }
      }
    }
  } catch (e) {
    failures.push(fail(messageOf(e)));
  } finally {
    c.close();
  }
  return failures;
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return Math.min(a.length, b.length);
}
