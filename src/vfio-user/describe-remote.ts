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
import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { closeFd, isSystemCallError } from '../native/index.ts';
import { VARIANT_VOCABULARIES } from '../variants/index.ts';
import {
  type DeviceDescription,
  type DeviceSnapshot,
  describeSnapshot,
  type QueryError,
  queryErrorOf,
} from '../vfio/describe.ts';
import { VfioError } from '../vfio/errors.ts';
import { VFIO_PCI_NUM_IRQS } from '../vfio/irqs.ts';
import { regionOffset, VFIO_PCI_CONFIG_REGION_INDEX } from '../vfio/region-info.ts';
import { QEMU_MSG_TIMEOUT_MS, VfioUserClient } from './client.ts';
import { checkConfigSize } from './client-bounds.ts';
import { readDevicesList } from './devices-list.ts';
import { ReplyError } from './wire-errors.ts';

const PCI_NAME = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i;

/** The error of a failed query as the wire shows it: its errno, no reason. */
function wireError(err: unknown): QueryError {
  if (err instanceof ReplyError) return queryErrorOf(err.remoteErrno);
  throw err;
}

async function regionReply(client: VfioUserClient, index: number): Promise<Uint8Array> {
  const r = await client.regionInfo(index);
  if (r.fd === null) return r.raw;
  closeFd(r.fd);
  const raw = r.raw.slice();
  new DataView(raw.buffer).setBigUint64(24, regionOffset(index), true);
  return raw;
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

/**
 * The PCI name of the device behind `socket`: its file name (serve names sockets
 * DDDD:BB:DD.F.sock), else the entry of a devices.json beside it, else the file name.
 * @throws VfioError EINVAL for a devices.json beside it that is not serve's (devices-list.ts).
 */
export function deviceNameForSocket(socket: string): string {
  const base = basename(socket).replace(/\.sock$/, '');
  if (PCI_NAME.test(base)) return base.toLowerCase();
  const list = join(dirname(socket), 'devices.json');
  if (existsSync(list)) {
    const hit = readDevicesList(list).find((e) => e.socket === socket);
    if (hit !== undefined) return hit.address;
  }
  return base;
}

/** A failed conversation with a device socket, as one line that names it: `SOCKET: reason`. */
export class DeviceSocketError extends Error {
  override readonly name = 'DeviceSocketError';
  constructor(
    readonly socket: string,
    override readonly cause: Error,
  ) {
    super(`${socket}: ${cause.message}`);
  }
}

/** `err` naming `socket` when it is an expected failure (VfioError, a system call's); else as is. */
export function atSocket(socket: string, err: unknown): unknown {
  return err instanceof VfioError || isSystemCallError(err)
    ? new DeviceSocketError(socket, err as Error)
    : err;
}

/**
 * Connects to `socket`, describes its device, disconnects. Each reply is awaited as long as
 * QEMU awaits it (5 s).
 * @throws DeviceSocketError `SOCKET: reason` when nobody listens there, for an error reply
 *   (e.g. EBUSY: another client holds it) and for a reply outside the client's bounds.
 */
export async function describeRemote(socket: string): Promise<DeviceDescription> {
  let client: VfioUserClient;
  try {
    client = await VfioUserClient.connect(socket, { replyTimeoutMs: QEMU_MSG_TIMEOUT_MS });
  } catch (e) {
    throw atSocket(socket, e);
  }
  try {
    const snapshot = await snapshotRemote(client, deviceNameForSocket(socket));
    return describeSnapshot(snapshot, VARIANT_VOCABULARIES);
  } catch (e) {
    throw atSocket(socket, e);
  } finally {
    client.close();
  }
}

/** The device sockets of a serve directory, in address order (what `inspect --dt` shows). */
export function socketsInDir(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.sock'))
    .sort()
    .map((f) => join(dir, f));
}

/** `inspect SOCKET` / `inspect --socket-dir DIR` arguments. */
export interface RemoteInspectArgs {
  readonly sockets: readonly string[];
  /** The device name when one socket was named (prints like `inspect --dt ADDRESS`). */
  readonly address: string | undefined;
  readonly hex: boolean;
  readonly json: boolean;
}

export class RemoteInspectUsageError extends Error {
  override readonly name = 'RemoteInspectUsageError';
}

/**
 * Arguments of the wire forms of inspect, or null when argv is the in-process form (--dt) or
 * names no socket.
 * @throws RemoteInspectUsageError for bad usage, VfioError ENOENT for a missing directory.
 */
export function parseRemoteInspectArgs(argv: string[]): RemoteInspectArgs | null {
  if (argv.includes('--dt') || argv.includes('--help') || argv.includes('-h')) return null;
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw new RemoteInspectUsageError(
      err instanceof Error ? (err.message.split(/\.\s/)[0] ?? err.message) : String(err),
    );
  }
  const { values, positionals } = parsed;
  const dir = values['socket-dir'];
  if (dir === undefined && positionals.length === 0) return null;
  if (dir !== undefined && positionals.length > 0)
    throw new RemoteInspectUsageError('give SOCKET or --socket-dir DIR, not both');
  if (positionals.length > 1)
    throw new RemoteInspectUsageError(`one SOCKET at a time (got ${positionals.length})`);
  const options = { hex: values.hex ?? false, json: values.json ?? false };
  if (dir !== undefined) {
    if (!existsSync(dir)) throw new VfioError('ENOENT', `no socket directory ${dir}`);
    return { sockets: socketsInDir(dir), address: undefined, ...options };
  }
  const socket = positionals[0] as string;
  return { sockets: [socket], address: deviceNameForSocket(socket), ...options };
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      'socket-dir': { type: 'string' },
      hex: { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
}

/** The descriptions for parsed wire arguments, one connection at a time. */
export async function inspectOverWire(args: RemoteInspectArgs): Promise<DeviceDescription[]> {
  const out: DeviceDescription[] = [];
  for (const socket of args.sockets) out.push(await describeRemote(socket));
  return out;
}
