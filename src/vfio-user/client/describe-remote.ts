/**
 * `inspect` over the wire: the DeviceSnapshot of src/vfio/describe.ts built from a vfio-user
 * client's replies instead of the in-process device, so `inspect SOCKET` and `inspect --dt`
 * describe a device with the same model and print the same thing. Queries are QEMU's
 * (vfio-user.rst; hw/vfio-user/device.c): VERSION 0.0, DEVICE_GET_INFO, GET_REGION_INFO with
 * argsz 32 then the argsz the reply names, GET_IRQ_INFO, the whole config space by REGION_READ.
 *
 * Two things differ on the wire by protocol, and are put back to the VFIO view the
 * description shows:
 * - an fd-backed region's `offset` is where to mmap that fd (vfio-user), not the kernel's
 *   VFIO_PCI_INDEX_TO_OFFSET(index); the description shows the latter;
 * - an error reply carries only an errno: the server's sentence stays in its log, so a failed
 *   query reads `EINVAL (errno 22)` both ways (describe.ts queryErrorOf).
 */
import { asError, CodedError, errorCode } from '../../errors/index.ts';
import { closeFd, isSystemCallError } from '../../native/index.ts';
import { VARIANT_VOCABULARIES } from '../../variants/index.ts';
import {
  type DeviceDescription,
  type DeviceSnapshot,
  decodeRegionInfoStruct,
  describeSnapshot,
  encodeRegionInfoStruct,
  type QueryError,
  queryErrorOf,
  regionOffset,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_NUM_IRQS,
  VfioError,
} from '../../vfio/index.ts';
import { ReplyError } from '../wire/index.ts';
import { QEMU_MSG_TIMEOUT_MS, VfioUserClient } from './client.ts';
import { checkConfigSize } from './client-bounds.ts';

/** The error of a failed query as the wire shows it: its errno, no reason. */
function wireError(err: unknown): QueryError {
  if (err instanceof ReplyError) return queryErrorOf(err.remoteErrno);
  throw err;
}

async function regionReply(client: VfioUserClient, index: number): Promise<Uint8Array> {
  const r = await client.regionInfo(index);
  if (r.fd === null) return r.raw;
  closeFd(r.fd);
  const { fields, chain } = decodeRegionInfoStruct(r.raw);
  return encodeRegionInfoStruct({ ...fields, offset: regionOffset(index) }, chain);
}

/** PCI_BASE_ADDRESS_0 .. PCI_BASE_ADDRESS_5 + 4. */
const BAR_REGISTERS_START = 0x10;
const BAR_REGISTERS_END = 0x28;

async function readAll(client: VfioUserClient, region: number, size: number): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  const chunk = client.maxReadSize;
  for (let at = 0; at < size; at += chunk) {
    out.set(await client.regionRead(region, BigInt(at), Math.min(chunk, size - at)), at);
  }
  return out;
}

/**
 * The replies of a negotiated client's device (`name` is what the description calls it).
 * @throws VfioError for a reply outside the client's bounds (client-bounds.ts) or a config
 *   space over 4 KiB; ReplyError when device info or the config space cannot be read.
 */
export async function snapshotRemote(
  client: VfioUserClient,
  name: string,
): Promise<DeviceSnapshot> {
  const info = await client.getDeviceInfo();
  const regions: DeviceSnapshot['regions'][number][] = [];
  for (let index = 0; index < info.numRegions; index++) {
    regions.push(
      await regionReply(client, index).then(
        (reply) => ({ reply }),
        (e: unknown) => ({ error: wireError(e) }),
      ),
    );
  }
  const irqs: DeviceSnapshot['irqs'][number][] = [];
  for (let index = 0; index < Math.min(info.numIrqs, VFIO_PCI_NUM_IRQS); index++) {
    irqs.push(
      await client.getIrqInfo(index).then(
        (i) => ({ info: i }),
        (e: unknown) => ({ error: wireError(e) }),
      ),
    );
  }
  const cfg = await client.getRegionInfo(VFIO_PCI_CONFIG_REGION_INDEX);
  if (cfg.fd !== null) closeFd(cfg.fd);
  checkConfigSize(VFIO_PCI_CONFIG_REGION_INDEX, cfg.info.size);
  const config = await readAll(client, VFIO_PCI_CONFIG_REGION_INDEX, Number(cfg.info.size));
  // Each BAR register on its own, as QEMU reads them (hw/vfio/pci.c vfio_bar_prepare): a
  // variant may emulate them only for accesses that touch no other (nvgrace-gpu's BAR2-5).
  for (let at = BAR_REGISTERS_START; at < BAR_REGISTERS_END; at += 4)
    config.set(await client.regionRead(VFIO_PCI_CONFIG_REGION_INDEX, BigInt(at), 4), at);
  return { name, info, regions, irqs, config };
}

/** A failed conversation with a device socket, as one line that names it: `SOCKET: reason`. */
export class DeviceSocketError extends CodedError {
  override readonly name: string = 'DeviceSocketError';
  constructor(
    readonly socket: string,
    override readonly cause: Error,
  ) {
    // The cause's code: its errno name (a device's refusal, or the host's socket call).
    super(errorCode(cause) ?? 'EIO', `${socket}: ${cause.message}`);
  }
}

/** `err` naming `socket` when it is an expected failure (VfioError, a system call's); else as is. */
export function atSocket(socket: string, err: unknown): unknown {
  return err instanceof VfioError || isSystemCallError(err)
    ? new DeviceSocketError(socket, asError(err))
    : err;
}

/**
 * Connects to `socket`, describes its device (called `name`), disconnects. Each reply is awaited as long as
 * QEMU awaits it (5 s).
 * @throws DeviceSocketError `SOCKET: reason` when nobody listens there, for an error reply
 *   (e.g. EBUSY: another client holds it) and for a reply outside the client's bounds.
 */
export async function describeRemote(socket: string, name: string): Promise<DeviceDescription> {
  let client: VfioUserClient;
  try {
    client = await VfioUserClient.connect(socket, { replyTimeoutMs: QEMU_MSG_TIMEOUT_MS });
  } catch (e) {
    throw atSocket(socket, e);
  }
  try {
    const snapshot = await snapshotRemote(client, name);
    return describeSnapshot(snapshot, VARIANT_VOCABULARIES);
  } catch (e) {
    throw atSocket(socket, e);
  } finally {
    client.close();
  }
}
