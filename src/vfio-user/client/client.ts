/**
 * VfioUserClient: what a VMM (or a test, or `inspect`) uses to drive a vfio-user device
 * (QEMU hw/vfio-user/ as the model): VERSION negotiation, device/region/IRQ info, region
 * access (posted writes with NO_REPLY, WRITE_MULTI), DMA map/unmap with or without an fd,
 * interrupts through eventfds, reset, and region mappings through the fds the server hands out.
 */
import { closeFd } from '../../native/index.ts';
import { hex } from '../../text/index.ts';
import { KNOWN_REGION_CAPABILITIES, type KnownCapabilityValue } from '../../variants/index.ts';
import type { SparseMmapArea } from '../../vfio/index.ts';
import {
  type DecodedRegionInfo,
  decodeRegionInfo,
  VFIO_REGION_INFO_SIZE,
  VfioError,
} from '../../vfio/index.ts';
import type {
  DeviceInfoPayload,
  DmaUnmapPayload,
  IrqInfoPayload,
  RegionInfoFixed,
  VersionPayload,
  WriteMultiEntry,
} from '../wire/index.ts';
import {
  Command,
  DEFAULT_MAX_DATA_XFER_SIZE,
  DmaMapFlag,
  DmaUnmapFlag,
  type EffectiveCapabilities,
  effectiveCapabilities,
  HEADER_SIZE,
  IrqSetFlag,
  messageSizeLimit,
  QEMU_MAX_MSG_FDS,
  RegionFlag,
  type VersionCapabilities,
} from '../wire/index.ts';
import {
  checkArgszSettled,
  checkDeviceInfo,
  checkEcho,
  checkMappable,
  checkRegionAccess,
  checkRegionArgsz,
  checkRegionInfo,
  checkServerCapabilities,
} from './client-bounds.ts';
import { ClientChannel } from './client-channel.ts';
import type { DmaBacking } from './client-dma.ts';
import { MappedRegion } from './mapped-region.ts';

/** What this client proposes by default: QEMU's capabilities, without migration. */
export const CLIENT_CAPABILITIES: VersionCapabilities = {
  maxMsgFds: QEMU_MAX_MSG_FDS,
  maxDataXferSize: DEFAULT_MAX_DATA_XFER_SIZE,
  pgsizes: 4096,
  maxDmaMaps: 65535,
  writeMultiple: true,
};

/**
 * Options of `VfioUserClient.connect`: the version and capabilities to propose, whether to
 * negotiate at all, and the reply timeout (ms).
 */
export interface ConnectOptions {
  /** Version to propose; QEMU proposes 0.0. */
  major?: number;
  minor?: number;
  /** Capabilities to propose (null: no JSON at all). */
  capabilities?: VersionCapabilities | null;
  /** Skip VERSION (tests that speak first with raw frames). */
  negotiate?: boolean;
  /**
   * Give up on a request whose reply has not fully arrived after this long (ETIMEDOUT; the
   * connection closes). Default: wait as long as the connection lives.
   */
  replyTimeoutMs?: number;
}

/** QEMU's wait for a reply (hw/vfio-user/pci.c, property x-msg-timeout, default 5000 ms). */
export const QEMU_MSG_TIMEOUT_MS = 5000;

/**
 * A DEVICE_GET_REGION_INFO reply: raw payload, fixed fields, decoded capability chain, and the fd
 * that came with it (the caller's).
 */
export interface RegionInfoResult {
  /** The reply payload exactly as received. */
  raw: Uint8Array;
  info: RegionInfoFixed;
  /**
   * The same, with the capability chain walked (src/vfio/region-info.ts) and decoded with
   * every variant's kinds, as a VMM built against include/uapi/linux/vfio.h decodes them.
   */
  decoded: DecodedRegionInfo<KnownCapabilityValue>;
  /** The region's fd when it is mmap-able (the caller owns it), else null. */
  fd: number | null;
}

/**
 * Arguments of `setIrqs` (struct vfio_irq_set): index, start, count, flags, and eventfds or data.
 */
export interface SetIrqsArgs {
  index: number;
  start?: number;
  count: number;
  /** DATA_* | ACTION_* flags; DATA_EVENTFD|ACTION_TRIGGER when eventfds are given. */
  flags?: number;
  /** One eventfd per vector (sent in chunks of the server's max_msg_fds). */
  eventfds?: readonly number[];
  /** One bool byte per vector with DATA_BOOL. */
  data?: Uint8Array;
}

/**
 * A vfio-user client (what QEMU's hw/vfio-user does): VERSION negotiation, then one method per
 * command; errors are ReplyError (the server's errno) or VfioError (a malformed reply,
 * EPROTO/EINVAL).
 */
export class VfioUserClient {
  /** The socket underneath: requests, pending replies, the DMA table the server reads through. */
  readonly channel: ClientChannel;
  #version: VersionPayload | null = null;
  #server: EffectiveCapabilities = effectiveCapabilities(null);
  /** What this client announced (its receive limits). */
  readonly #own: EffectiveCapabilities;

  private constructor(channel: ClientChannel, own: EffectiveCapabilities) {
    this.channel = channel;
    this.#own = own;
  }

  /**
   * Connects to `path` and negotiates (unless `negotiate: false`).
   * @throws SystemCallError when nobody listens; ReplyError/VfioError if VERSION fails
   *   (ETIMEDOUT when no reply comes within `replyTimeoutMs`).
   */
  static async connect(path: string, options: ConnectOptions = {}): Promise<VfioUserClient> {
    const caps = options.capabilities === undefined ? CLIENT_CAPABILITIES : options.capabilities;
    const own = effectiveCapabilities(caps);
    const channel = ClientChannel.connect(
      path,
      { maxMessageSize: messageSizeLimit(own.maxDataXferSize), maxFds: own.maxMsgFds },
      own.maxDataXferSize,
      options.replyTimeoutMs,
    );
    const client = new VfioUserClient(channel, own);
    if (options.negotiate === false) return client;
    try {
      await client.negotiate(options.major ?? 0, options.minor ?? 0, caps);
    } catch (e) {
      channel.close();
      throw e;
    }
    return client;
  }

  /** The server's VERSION reply (null before negotiation). */
  get version(): VersionPayload | null {
    return this.#version;
  }

  /** The server's capabilities with defaults applied. */
  get serverCapabilities(): EffectiveCapabilities {
    return this.#server;
  }

  /** The largest REGION_READ both ends accept: the smaller max_data_xfer_size. */
  get maxReadSize(): number {
    return Math.min(this.#server.maxDataXferSize, this.#own.maxDataXferSize);
  }

  /** The largest reply payload this client receives (a GET_REGION_INFO argsz beyond it is refused). */
  get maxReplyPayload(): number {
    return messageSizeLimit(this.#own.maxDataXferSize) - HEADER_SIZE;
  }

  /**
   * VERSION: proposes `major.minor` and `caps`; checks the reply keeps the major and does not
   * raise the minor (vfio-user.rst "VFIO_USER_VERSION"), and that its capabilities are within
   * QEMU's bounds (client-bounds.ts checkServerCapabilities).
   * @throws VfioError EINVAL for an incompatible reply; E2BIG for one over 4 KiB.
   */
  async negotiate(
    major: number,
    minor: number,
    caps: VersionCapabilities | null,
  ): Promise<VersionPayload> {
    const { reply } = await this.channel.request({
      command: Command.VERSION,
      major,
      minor,
      capabilities: caps,
    });
    if (reply.major !== major || reply.minor > minor) {
      throw new VfioError(
        'EINVAL',
        `server replied version ${reply.major}.${reply.minor} to ${major}.${minor}`,
      );
    }
    checkServerCapabilities(reply.capabilities);
    this.#version = { major: reply.major, minor: reply.minor, capabilities: reply.capabilities };
    this.#server = effectiveCapabilities(reply.capabilities);
    return this.#version;
  }

  /**
   * DEVICE_GET_INFO.
   * @throws VfioError EINVAL for more than 100 regions or 50 IRQ indexes (QEMU's bounds).
   */
  async getDeviceInfo(argsz = 16): Promise<DeviceInfoPayload> {
    const { reply } = await this.channel.request({
      command: Command.DEVICE_GET_INFO,
      argsz,
      flags: 0,
      numRegions: 0,
      numIrqs: 0,
    });
    checkDeviceInfo(reply);
    return {
      argsz: reply.argsz,
      flags: reply.flags,
      numRegions: reply.numRegions,
      numIrqs: reply.numIrqs,
    };
  }

  /**
   * One GET_REGION_INFO with `argsz` (QEMU asks with 32 first).
   * @throws VfioError EINVAL for a reply about another region, a cap_offset outside it or a
   *   capability chain that does not walk to its end (client-bounds.ts checkRegionInfo);
   *   E2BIG for a reply longer than `argsz`.
   */
  async getRegionInfo(index: number, argsz = VFIO_REGION_INFO_SIZE): Promise<RegionInfoResult> {
    const {
      reply,
      fds,
      payload: raw,
    } = await this.channel.request(
      {
        command: Command.DEVICE_GET_REGION_INFO,
        argsz,
        flags: 0,
        index,
        capOffset: 0,
        size: 0n,
        offset: 0n,
      },
      [],
      { keepFds: true },
    );
    for (const extra of fds.slice(1)) closeFd(extra);
    const fd = fds[0] ?? null;
    const decoded = decodeRegionInfo(raw, KNOWN_REGION_CAPABILITIES);
    try {
      checkRegionInfo(index, raw, decoded);
    } catch (e) {
      if (fd !== null) closeFd(fd);
      throw e;
    }
    return { raw, info: reply.info, decoded, fd };
  }

  /**
   * GET_REGION_INFO the way QEMU does it: 32 bytes first, again with the argsz the server needs
   * (once: a second reply wanting still more is refused, where QEMU would ask again).
   * @throws VfioError EINVAL for an argsz past what a reply may carry, or raised twice; as
   *   `getRegionInfo`.
   */
  async regionInfo(index: number): Promise<RegionInfoResult> {
    const first = await this.getRegionInfo(index);
    if (first.info.argsz <= VFIO_REGION_INFO_SIZE) return first;
    if (first.fd !== null) closeFd(first.fd);
    checkRegionArgsz(index, first.info.argsz, this.maxReplyPayload);
    const second = await this.getRegionInfo(index, first.info.argsz);
    try {
      checkArgszSettled(index, first.info.argsz, second.info.argsz);
    } catch (e) {
      if (second.fd !== null) closeFd(second.fd);
      throw e;
    }
    return second;
  }

  /** GET_IRQ_INFO. @throws VfioError EINVAL for a reply about another index. */
  async getIrqInfo(index: number, argsz = 16): Promise<IrqInfoPayload> {
    const { reply } = await this.channel.request({
      command: Command.DEVICE_GET_IRQ_INFO,
      argsz,
      flags: 0,
      index,
      count: 0,
    });
    checkEcho('GET_IRQ_INFO of index', index, reply.index);
    return { argsz: reply.argsz, flags: reply.flags, index: reply.index, count: reply.count };
  }

  /**
   * SET_IRQS. Eventfds go in chunks of the server's max_msg_fds, one message per chunk with
   * start advanced (the fix cloud-hypervisor needed, issue #3401). The fds stay the caller's.
   */
  async setIrqs(args: SetIrqsArgs): Promise<void> {
    const start = args.start ?? 0;
    const eventfds = args.eventfds ?? [];
    const data = args.data ?? new Uint8Array(0);
    const flags = args.flags ?? IrqSetFlag.DATA_EVENTFD | IrqSetFlag.ACTION_TRIGGER;
    const send = (s: number, count: number, fds: readonly number[]) =>
      this.channel.request(
        {
          command: Command.DEVICE_SET_IRQS,
          argsz: 20 + data.length,
          flags,
          index: args.index,
          start: s,
          count,
          data,
        },
        fds,
      );
    const chunk = Math.max(1, this.#server.maxMsgFds);
    if (eventfds.length <= chunk) {
      await send(start, args.count, eventfds);
      return;
    }
    for (let i = 0; i < eventfds.length; i += chunk) {
      const fds = eventfds.slice(i, i + chunk);
      await send(start + i, fds.length, fds);
    }
  }

  /**
   * REGION_READ of `count` bytes (at most the server's max_data_xfer_size). With `into` (at
   * least `count` bytes, untouched until the promise settles) the data is received straight
   * into it, with no buffer allocated per reply, and the result is a view of `into`.
   * @throws RangeError when `into` is shorter than `count`; ReplyError for an error reply;
   *   VfioError EINVAL for a reply about another place or with another count, E2BIG (before
   *   receiving it) for one longer than asked.
   */
  async regionRead(
    region: number,
    offset: bigint,
    count: number,
    into?: Uint8Array,
  ): Promise<Uint8Array> {
    if (into !== undefined && into.length < count)
      throw new RangeError(`regionRead: ${count} bytes into a buffer of ${into.length}`);
    const { reply } = await this.channel.request(
      { command: Command.REGION_READ, offset, region, count },
      [],
      into === undefined ? {} : { into },
    );
    checkRegionAccess(
      'REGION_READ',
      { region, offset, count },
      { region: reply.region, offset: reply.offset, count: reply.data.length },
    );
    if (into === undefined || reply.data.buffer === into.buffer) return reply.data;
    // Not placed: the reply is no longer than `count`, so it fits.
    into.set(reply.data);
    return into.subarray(0, reply.data.length);
  }

  /**
   * REGION_WRITE; `posted` sends it with NO_REPLY and resolves at once with the length (errors
   * then go unreported, as the spec says).
   * @throws ReplyError for an error reply; VfioError EINVAL for a reply about another place or
   *   with another count.
   */
  async regionWrite(
    region: number,
    offset: bigint,
    data: Uint8Array,
    options: { posted?: boolean } = {},
  ): Promise<number> {
    if (options.posted) {
      this.channel.post({ command: Command.REGION_WRITE, offset, region, data });
      return data.length;
    }
    const { reply } = await this.channel.request({
      command: Command.REGION_WRITE,
      offset,
      region,
      data,
    });
    checkRegionAccess('REGION_WRITE', { region, offset, count: data.length }, reply);
    return reply.count;
  }

  /**
   * REGION_WRITE_MULTI (posted by default, as QEMU sends it); resolves with wr_cnt when not posted.
   * @throws VfioError EINVAL when the reply's wr_cnt is not the number of entries sent.
   */
  async regionWriteMulti(
    writes: WriteMultiEntry[],
    options: { posted?: boolean } = { posted: true },
  ): Promise<bigint> {
    if (options.posted) {
      this.channel.post({ command: Command.REGION_WRITE_MULTI, writes });
      return BigInt(writes.length);
    }
    const { reply } = await this.channel.request({ command: Command.REGION_WRITE_MULTI, writes });
    checkEcho('REGION_WRITE_MULTI of wr_cnt', BigInt(writes.length), reply.count);
    return reply.count;
  }

  /**
   * DMA_MAP of [address, address+size). With an fd backing, the fd is sent (and kept mapped
   * here to answer DMA_READ/WRITE); with bytes or nothing, no fd goes.
   * @throws ReplyError the server's errno (the mapping is dropped here again), VfioError EIO
   *   when the connection closes first
   */
  async dmaMap(args: {
    address: bigint;
    size: bigint;
    flags?: number;
    backing?: DmaBacking;
  }): Promise<void> {
    const flags = args.flags ?? DmaMapFlag.READ | DmaMapFlag.WRITE;
    const backing = args.backing ?? null;
    const withFd = backing !== null && 'fd' in backing;
    this.channel.dma.add(args.address, args.size, (flags & DmaMapFlag.WRITE) !== 0, backing);
    try {
      await this.channel.request(
        {
          command: Command.DMA_MAP,
          argsz: 32,
          flags,
          offset: withFd ? (backing.offset ?? 0n) : 0n,
          address: args.address,
          size: args.size,
        },
        withFd ? [backing.fd] : [],
      );
    } catch (e) {
      this.channel.dma.remove(args.address, args.size);
      throw e;
    }
  }

  /** DMA_UNMAP of exactly one earlier mapping, or every mapping with `all`. */
  async dmaUnmap(
    args: { address: bigint; size: bigint } | { all: true },
  ): Promise<DmaUnmapPayload> {
    const all = 'all' in args;
    const address = all ? 0n : args.address;
    const size = all ? 0n : args.size;
    const { reply } = await this.channel.request({
      command: Command.DMA_UNMAP,
      argsz: 24,
      flags: all ? DmaUnmapFlag.ALL : 0,
      address,
      size,
    });
    this.channel.dma.remove(address, size, all);
    return { argsz: reply.argsz, flags: reply.flags, address: reply.address, size: reply.size };
  }

  /**
   * DEVICE_RESET (VFIO_DEVICE_RESET over the wire); resolves on the server's reply.
   * @throws ReplyError the server's errno, VfioError EIO when the connection closes first
   */
  async reset(): Promise<void> {
    await this.channel.request({ command: Command.DEVICE_RESET });
  }

  /**
   * Maps region `index` through the fd of its region-info reply: the whole region, or the
   * areas of its SPARSE_MMAP capability.
   * @throws VfioError EINVAL when the region is not mmap-able or came without an fd, or its
   *   areas are too many, outside the region or past the end of its fd (checkMappable).
   */
  async mapRegion(index: number): Promise<MappedRegion> {
    const r = await this.regionInfo(index);
    if ((r.info.flags & RegionFlag.MMAP) === 0 || r.fd === null) {
      if (r.fd !== null) closeFd(r.fd);
      throw new VfioError(
        'EINVAL',
        `region ${index} is not mmap-able (flags ${hex(r.info.flags)})`,
      );
    }
    const sparse = r.decoded.caps.find((c) => c.value.kind === 'sparse-mmap')?.value;
    const areas: SparseMmapArea[] | null = sparse?.kind === 'sparse-mmap' ? sparse.areas : null;
    try {
      checkMappable(index, r.fd, r.info.offset, r.info.size, areas);
    } catch (e) {
      closeFd(r.fd);
      throw e;
    }
    return MappedRegion.map(
      index,
      r.fd,
      r.info.offset,
      r.info.size,
      areas,
      (r.info.flags & RegionFlag.WRITE) !== 0,
    );
  }

  /** Sends bytes verbatim; see `expectReply`. */
  sendRaw(bytes: Uint8Array, fds: readonly number[] = []): void {
    this.channel.sendRaw(bytes, fds);
  }

  /**
   * Awaits the reply to a message sent with `sendRaw` under `msgId` (its command, `command`).
   * @throws VfioError EBUSY when `msgId` is already awaited
   */
  expectReply(msgId: number, command: number) {
    return this.channel.expectReply(msgId, command);
  }

  /** Closes the connection; pending requests reject with EIO. */
  close(): void {
    this.channel.close();
  }
}
