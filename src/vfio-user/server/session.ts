/**
 * One client connected to one device (vfio-user.rst "Connection Initiation"; libvfio-user's
 * vfu_ctx attached to one socket): receives framed messages from its MessageTransport (never a
 * socket: message-transport.ts), dispatches them in order, sends the reply (none with NO_REPLY, not even on error) and turns every VfioError into an error reply
 * with its errno in this one place. Framing errors end only this connection, with one log
 * line. On disconnect everything the client held is released: DMA maps (unmapped, fds closed),
 * the device (closing it drops its eventfds, mappings and pre-registration, and unmaps the GPU
 * from its LPID), and the partition membership (given back to the PartitionPolicy). Device state
 * lives in the device model and survives.
 */

import { messageOf } from '../../errors/index.ts';
import { DeviceMigration, migStateName } from '../../migration/index.ts';
import { closeFd, FastPathTable, isSystemCallError } from '../../native/index.ts';
import type { DmaPort, MmapGrant, VfioPciDevice } from '../../vfio/index.ts';
import { Errno, VfioError } from '../../vfio/index.ts';
import type { BodyPlacement, CloseReason, FramedMessage } from '../wire/index.ts';
import {
  Command,
  commandName,
  decodeRegionAccessHead,
  effectiveCapabilities,
  errorReplyHeader,
  HEADER_SIZE,
  isReply,
  type MessageHeader,
  MessageType,
  messageSizeLimit,
  messageType,
  REGION_ACCESS_HEAD_SIZE,
  replyHeader,
  wantsReply,
} from '../wire/index.ts';
import { dispatch } from './dispatch.ts';
import {
  type GivenMemory,
  lookAhead,
  type RegionMemory,
  refuseWhileMemoryHeld,
  uidOf,
} from './memory-holders.ts';
import type { MessageReceiver, MessageTransport } from './message-transport.ts';
import type { PartitionPolicy } from './partition-policy.ts';
import { DmaTable } from './server-dma.ts';
import { SERVER_LIMITS } from './server-version.ts';
import { FdBag, type HandlerReply, type SessionState } from './session-state.ts';

/**
 * Options of `Session`: device, partition policy, the peer's pid, log, and the close and change
 * callbacks.
 */
export interface SessionOptions {
  readonly device: VfioPciDevice;
  /** Which LPID the device joins when this client opens it (the server owner's policy). */
  readonly partitions: PartitionPolicy;
  /** The uids the device's memory went to, across its sessions (the server's; optional). */
  readonly given?: GivenMemory;
  /** The peer process (SO_PEERCRED): its connections form one partition. */
  readonly peerPid: number;
  /** The peer's uid (SO_PEERCRED); undefined: looked up from /proc/PID. */
  readonly peerUid?: number;
  readonly log: (line: string) => void;
  /** The client's connect (device opened) and disconnect lines (server.ts `info`). */
  readonly info?: (line: string) => void;
  /** Refusals a VMM expects when it probes (server.ts `debug`); not warnings. */
  readonly debug?: (line: string) => void;
  /** Called once the session has released everything. */
  readonly onClosed: (session: Session) => void;
  /** Called when the device was opened or released (partition tables changed). */
  readonly onChange?: () => void;
  /**
   * Sinks listening to the tracepoints a region access reports (Tracer.listening): the native
   * fast path is off while slot 0 is not 0. Absent: no tracer can listen.
   */
  readonly traceActivity?: Int32Array;
}

/**
 * REGION_WRITE data from this size on is placed (in the region, or the session's reused
 * buffer); SharedMemory writes data received in place without a copy from this size on too.
 */
const PLACED_WRITE_MIN_BYTES = 16 * 1024;
/** MIG_DATA_WRITE's argsz and size before its data. */
const MIG_DATA_HEAD_SIZE = 8;

/** The framer limits the server enforces from the first byte: what VERSION announces. */
export const SERVER_FRAMER_LIMITS = {
  maxMessageSize: messageSizeLimit(SERVER_LIMITS.maxDataXferSize),
  maxFds: SERVER_LIMITS.maxMsgFds,
};

/**
 * One client's conversation: VERSION first, then one handler per command over a `MessageTransport`;
 * a handler's VfioError becomes an error reply with its errno; closing releases everything the
 * client held.
 */
export class Session implements SessionState, MessageReceiver {
  /** The session's only way out: replies go here, never to a socket directly. */
  readonly transport: MessageTransport;
  /** The client's DMA_MAP'd ranges (address → backing), which the device's DMA goes through. */
  readonly dma = new DmaTable();
  /** Region index → its mmap grant, made at the first REGION_INFO that sends the region's fd. */
  readonly grants = new Map<number, MmapGrant>();
  /** What this server announces in VERSION (max_msg_fds, max_data_xfer_size, …). */
  readonly limits = SERVER_LIMITS;
  /** Whether VERSION has been negotiated; every other command is refused before it. */
  negotiated = false;
  /** The client's capabilities from its VERSION (defaults until then). */
  client = effectiveCapabilities(null);
  /** The device's migration state machine and its DMA dirty log (VFIO_DEVICE_FEATURE_MIGRATION). */
  readonly migration: DeviceMigration;
  readonly #options: SessionOptions;
  #open = false;
  /** The partition LPID the device joined at open (for the disconnect line). */
  #lpid = 0;
  #closeAfterReply = false;
  /** The native fast path's table while the device is open. */
  #fastTable: FastPathTable | undefined;
  /** device.plainGeneration when the table was made: a BAR's memory made since adds ranges. */
  #fastGeneration = -1;
  /** Where large REGION_WRITE data is received; grown on demand, free again once handled. */
  #writeData = new Uint8Array(0);
  /**
   * While a look through /proc for the device's memory is under way (lookAhead): the VERSION
   * that waits for it, then what followed, handled in order once it is in.
   */
  #waiting: FramedMessage[] | undefined;
  /** What renewAhead moved before the open, for the open's log line. */
  #renewedAhead:
    | { readonly renewed: readonly number[]; readonly uids: readonly number[] }
    | undefined;
  /** MIG_DATA_WRITE's two placement buffers, used in turn (see placeBody). */
  readonly #migrationData = [new Uint8Array(0), new Uint8Array(0)];
  #migrationTurn = 0;

  /**
   * Serves `transport`, which must deliver to this session's MessageReceiver methods
   * (`handleMessage`, `placeBody`, `handleClose`): the server creates connections before it
   * knows whether they become sessions.
   */
  constructor(transport: MessageTransport, options: SessionOptions) {
    this.#options = options;
    this.transport = transport;
    this.migration = new DeviceMigration(options.device);
  }

  /** The client's DMA as the device reaches it, its writes logged while DMA logging runs. */
  #loggedDma(): DmaPort {
    return {
      read: (address, length) => this.dma.read(address, length),
      write: (address, data) => {
        this.dma.write(address, data);
        this.migration.dmaLog.record(address, data.length);
      },
    };
  }

  /** The device this session serves. */
  get device(): VfioPciDevice {
    return this.#options.device;
  }

  /** The client's pid (SO_PEERCRED), for log lines and /proc lookups. */
  get peerPid(): number {
    return this.#options.peerPid;
  }

  /** One line to the server's log, as given in the session's options. */
  log(message: string): void {
    this.#options.log(message);
  }

  /**
   * Partition LPID, device open, then "KVM set" (the GPU joins the partition). Refused (EBUSY)
   * while a process of another uid still holds the device's memory (memory-holders.ts).
   */
  openDevice(): void {
    const { partitions, peerPid, device } = this.#options;
    const refuse = (err: unknown): never => {
      this.#closeAfterReply = true;
      if (err instanceof VfioError && err.code === 'EBUSY')
        throw new VfioError('EBUSY', `refusing pid ${peerPid}: ${err.reason}`);
      throw err;
    };
    // Before the open, as the kernel refuses the group's open; after the first open again for
    // memory its hooks made then (a memory that exists already is known before: a restarted
    // server's files, so a refused open does not open and release the device for nothing).
    const peerUid = this.#options.peerUid ?? uidOf(peerPid);
    let held: ReturnType<typeof refuseWhileMemoryHeld> = [];
    const guard = (memories: readonly RegionMemory[]): void => {
      held = [
        ...held,
        ...refuseWhileMemoryHeld(device, peerPid, peerUid, this.#options.given, memories),
      ];
      this.#renewMemory(peerUid, memories);
    };
    const known = device.mappedMemory();
    try {
      guard(known);
    } catch (err) {
      refuse(err);
    }
    const lpid = partitions.acquire(peerPid, device.name);
    let opened = false;
    try {
      device.open();
      opened = true;
      const made = device.mappedMemory().filter((m) => !known.some((k) => k.memory === m.memory));
      if (made.length > 0) guard(made);
    } catch (err) {
      if (opened) device.close();
      partitions.release(peerPid, device.name);
      refuse(err);
    }
    this.#open = true;
    this.#lpid = lpid;
    this.#options.info?.(
      `${device.name}: connected: pid ${peerPid}, partition of pid ${peerPid}, LPID ${lpid}`,
    );
    for (const { region, holders, unseen } of held) {
      const who = holders.map((h) => `pid ${h.pid} (${h.ways.join(', ')})`);
      if (unseen)
        who.push(
          `a process this server cannot inspect (it went to no uid but the client's, ${peerUid})`,
        );
      this.#options.info?.(
        `${device.name}: region ${region} is also held by ${who.join(', ')}, of the client's uid: let in`,
      );
    }
    device.attachDma(this.#loggedDma()); // the device's DMA reaches what this client mapped
    try {
      device.attachKvm(lpid);
    } catch (err) {
      // The kernel's notifier returned NOTIFY_BAD and the open went on.
      this.log(`${device.name}: KVM set (LPID ${lpid}) failed: ${messageOf(err)}`);
    }
    this.#attachFastPath();
    this.#options.onChange?.();
  }

  /**
   * Region `index`'s memory goes to the client: the next client of another uid gets it renewed.
   * @throws VfioError EIO when a state directory could not record it (GivenMemory.given).
   */
  memoryGiven(index: number): void {
    const given = this.#options.given;
    const memory = this.device.mappedMemory().find((m) => m.region === index)?.memory;
    if (given === undefined || memory === undefined) return;
    given.given(memory.name, this.#options.peerUid ?? uidOf(this.peerPid));
  }

  /** Fresh memory for the device when it went to another uid since (memory-holders.ts). */
  #renewMemory(peerUid: number | undefined, memories: readonly RegionMemory[]): void {
    const { given, device, peerPid } = this.#options;
    const now = given?.renewFor(device, peerUid, memories);
    const ahead = this.#renewedAhead;
    this.#renewedAhead = undefined;
    const moved =
      ahead === undefined
        ? now
        : {
            renewed: [...ahead.renewed, ...(now?.renewed ?? [])],
            left: now?.left ?? [],
            uids: [...new Set([...ahead.uids, ...(now?.uids ?? [])])].sort((a, b) => a - b),
          };
    if (moved === undefined || moved.uids.length === 0) return;
    const to = moved.uids.map((u) => (u < 0 ? 'clients of the last server' : `uid ${u}`));
    if (moved.renewed.length > 0)
      this.#options.info?.(
        `${device.name}: region ${moved.renewed.join(', ')} moved to fresh memory for pid ${peerPid}: it was handed to ${to.join(', ')} (pages pinned there keep the old bytes)`,
      );
    if (moved.left.length > 0)
      this.log(
        `${device.name}: region ${moved.left.join(', ')} not moved to fresh memory for pid ${peerPid}: a process of its uid holds it (handed to ${to.join(', ')} before)`,
      );
  }

  /**
   * Hands the device's plain ranges to the transport's native fast path (once the device is
   * open: its regions exist and VERSION is done). Without it every access still works.
   */
  #attachFastPath(): void {
    if (this.transport.attachFastPath === undefined) return;
    this.#fastGeneration = this.device.plainGeneration;
    const ranges = this.device.plainRanges();
    if (ranges.length === 0) return;
    let table: FastPathTable;
    try {
      table = new FastPathTable(
        ranges,
        this.limits.maxDataXferSize,
        this.#options.traceActivity ?? null,
      );
    } catch (err) {
      // Out of fds (EMFILE duplicating one): every access still works, in JavaScript.
      if (!isSystemCallError(err)) throw err;
      this.log(`${this.device.name}: no native fast path: ${err.message}`);
      return;
    }
    this.transport.attachFastPath(table);
    this.#fastTable?.close(); // its replacement serves from now on (the watcher is idle now)
    this.#fastTable = table;
  }

  /** Ends the session (its release runs from the connection's close). */
  close(): void {
    this.transport.close();
  }

  /**
   * Where a large REGION_WRITE's data goes (the connection's placer), decided once its 16-byte
   * head is in: straight into the region's memory when the region lends it for this write (GPU
   * RAM), else one reused buffer; never a fresh zero-filled body per request. The transport
   * asks only once every earlier message of the connection has been handled (commands are
   * processed in the order received), so the region holds what they left and the buffer is
   * free again. Data received in place is in the region before the handler commits it
   * (tracepoints, page bookkeeping): a connection lost inside such a message leaves the bytes
   * that arrived, as a DMA cut short would.
   */
  placeBody(header: MessageHeader): BodyPlacement | null {
    if (messageType(header.flags) !== MessageType.COMMAND) return null;
    if (header.command === Command.MIG_DATA_WRITE) {
      // Migration data: into one of two reused buffers, in turn, so that each write's data stays
      // as it is until the next write has been handled (the loader stores a record spanning
      // two writes from both, without a copy).
      const bytes = header.size - HEADER_SIZE - MIG_DATA_HEAD_SIZE;
      if (bytes < PLACED_WRITE_MIN_BYTES || bytes > this.limits.maxDataXferSize) return null;
      return { head: MIG_DATA_HEAD_SIZE, data: () => this.#migrationBuffer(bytes) };
    }
    if (header.command !== Command.REGION_WRITE) return null;
    const bytes = header.size - HEADER_SIZE - REGION_ACCESS_HEAD_SIZE;
    if (bytes < PLACED_WRITE_MIN_BYTES || bytes > this.limits.maxDataXferSize) return null;
    return { head: REGION_ACCESS_HEAD_SIZE, data: (head) => this.#writeTarget(head, bytes) };
  }

  #writeTarget(head: Uint8Array, bytes: number): Uint8Array {
    const { offset, region, count } = decodeRegionAccessHead(head, 'REGION_WRITE request');
    // Only once the device is open (VERSION done): earlier writes must fail without effect.
    if (this.#open && count === bytes) {
      const inPlace = this.device.writeTarget(region, offset, count);
      if (inPlace !== null) return inPlace;
    }
    return this.#reusedBuffer(bytes);
  }

  #migrationBuffer(bytes: number): Uint8Array {
    this.#migrationTurn ^= 1;
    const i = this.#migrationTurn;
    if ((this.#migrationData[i] as Uint8Array).length < bytes)
      this.#migrationData[i] = new Uint8Array(bytes);
    return (this.#migrationData[i] as Uint8Array).subarray(0, bytes);
  }

  #reusedBuffer(bytes: number): Uint8Array {
    if (this.#writeData.length < bytes) this.#writeData = new Uint8Array(bytes);
    return this.#writeData.subarray(0, bytes);
  }

  /** One framed message from the client; its fds are the session's. */
  handleMessage(message: FramedMessage): void {
    if (this.#waiting !== undefined) {
      this.#waiting.push(message);
      this.transport.pause?.(); // the rest waits in the socket
      return;
    }
    if (this.#mustLookFirst(message)) return;
    this.#handle(message);
  }

  /**
   * A VERSION whose open must look through /proc first (memory-holders.ts lookAhead), or whose
   * device's memory is due for renewal (GivenMemory.renewAhead: seconds per GiB), waits for
   * that look and copy, made off the event loop, while other sessions are served; then it and what
   * followed are handled in order. A client gone meanwhile leaves only its messages' fds, closed.
   */
  #mustLookFirst(message: FramedMessage): boolean {
    const { header } = message;
    if (this.negotiated || header.command !== Command.VERSION || isReply(header)) return false;
    if (this.transport.closed) return false;
    let look: Promise<void> | undefined;
    try {
      look = lookAhead(this.device);
    } catch (err) {
      // A memory that cannot be asked about: the open's own look (refuseWhileMemoryHeld) says why.
      this.log(`${this.device.name}: no look ahead through /proc: ${messageOf(err)}`);
    }
    // Memory due for renewal (memory-holders.ts GivenMemory.renewAhead) is copied meanwhile too.
    const { given, peerUid, peerPid } = this.#options;
    const renew = given?.renewAhead(this.device, peerUid ?? uidOf(peerPid));
    if (look === undefined && renew === undefined) return false;
    this.#waiting = [message];
    this.transport.pause?.();
    void Promise.all([look, renew]).then(([, renewed]) => {
      if (renewed !== undefined && renewed.renewed.length > 0) this.#renewedAhead = renewed;
      this.#looked();
    });
    return true;
  }

  #looked(): void {
    const waiting = this.#waiting ?? [];
    this.#waiting = undefined;
    for (let i = 0; i < waiting.length; i++) {
      const message = waiting[i] as FramedMessage;
      if (this.transport.closed) {
        for (const fd of message.fds) closeFd(fd);
        continue;
      }
      if (this.#mustLookFirst(message)) {
        for (const later of waiting.slice(i + 1)) this.handleMessage(later); // they wait too
        return;
      }
      this.#handle(message);
    }
    if (!this.transport.closed) this.transport.resume?.();
  }

  #handle(message: FramedMessage): void {
    const fds = new FdBag(message.fds);
    try {
      // Released already (a reply failed and closed the connection while later messages of
      // it waited): handling them would act for a client that is gone, e.g. reopen the device.
      if (this.transport.closed) return;
      if (isReply(message.header)) {
        this.log(
          `${this.device.name}: ignoring a reply (msg ${message.header.msgId}): the server sends no requests`,
        );
        return;
      }
      const result = this.#run(message, fds);
      fds.closeRest(); // before the reply: a client that counts our fds sees them gone
      this.#answer(message.header, result);
      if (this.#open && this.device.plainGeneration !== this.#fastGeneration)
        this.#attachFastPath();
    } catch (err) {
      this.log(
        `${this.device.name}: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
      );
    } finally {
      fds.closeRest();
    }
    if (this.#closeAfterReply) this.close();
  }

  /** The handler's reply, or the errno of its failure. */
  #run(message: FramedMessage, fds: FdBag): HandlerReply | number {
    try {
      return dispatch(this, message, fds);
    } catch (err) {
      const what = `${this.device.name}: ${commandName(message.header.command)} (msg ${message.header.msgId})`;
      if (err instanceof VfioError) {
        // A VMM asks for every region and IRQ index it knows (QEMU: region 8, VGA, of any
        // device); the kernel answers EINVAL without a word: a probe, not a warning.
        const probe =
          err.code === 'EINVAL' &&
          (message.header.command === Command.DEVICE_GET_REGION_INFO ||
            message.header.command === Command.DEVICE_GET_IRQ_INFO);
        if (probe) this.#options.debug?.(`${what}: ${err.message}`);
        else this.log(`${what}: ${err.message}`);
        return err.errno;
      }
      this.log(
        `${what}: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
      );
      return Errno.EIO;
    }
  }

  #answer(request: MessageHeader, result: HandlerReply | number): void {
    if (!wantsReply(request) || this.transport.closed) return;
    if (typeof result === 'number') {
      this.transport.send(errorReplyHeader(request, result));
      return;
    }
    try {
      this.transport.send(
        replyHeader(request, 0),
        result.parts,
        result.fds ?? [],
        result.borrowed === true,
      );
    } catch (err) {
      // A reply with fds that must wait is queued with duplicates; out of fds (EMFILE), the
      // client still gets a reply, in its place, so later replies keep their order.
      if (!isSystemCallError(err) || this.transport.closed) throw err;
      this.log(
        `${this.device.name}: ${commandName(request.command)} (msg ${request.msgId}): cannot queue the reply: ${err.message}`,
      );
      this.transport.send(errorReplyHeader(request, Errno.ENOMEM));
    }
  }

  /** The connection closed: release everything the client held. */
  handleClose(reason: CloseReason): void {
    if (this.#open) {
      // An error close has its own line (below): this one does not repeat its reason.
      const why = reason.kind === 'error' ? 'closed by the server' : 'connection closed';
      this.#options.info?.(
        `${this.device.name}: disconnected: pid ${this.peerPid}, partition of pid ${this.peerPid}, LPID ${this.#lpid} (${why}); device released`,
      );
    }
    if (reason.kind === 'error') {
      this.log(
        `${this.device.name}: closing the connection of pid ${this.peerPid}: ${reason.error.message}`,
      );
    }
    try {
      this.#release();
    } catch (err) {
      this.log(
        `${this.device.name}: release failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
      );
    }
    this.#options.onClosed(this);
  }

  #release(): void {
    this.transport.attachFastPath?.(null);
    this.#fastTable?.close(); // its fds now, not at the next garbage collection
    this.#fastTable = undefined;
    this.dma.clear();
    // The client's own descriptions (server-device.ts grantFor): ours go now; what the client
    // still holds of them is what the next open looks for (memory-holders.ts).
    for (const grant of this.grants.values()) closeFd(grant.fd);
    this.grants.clear();
    // The device runs again; a saving or loading session is dropped. A load cut mid-stream
    // leaves memory partly the stream's (kept, as GPU RAM survives a close): say so.
    const cut = this.migration.close();
    if (cut !== undefined)
      this.log(
        `${this.device.name}: migration stream cut in ${migStateName(cut.state)} after ${cut.bytes} bytes loaded: its memory is partly the stream's; migration state reset to RUNNING`,
      );
    if (!this.#open) return;
    this.#open = false;
    const { device, partitions, peerPid } = this.#options;
    device.attachDma(undefined);
    device.detachKvm();
    device.close();
    partitions.release(peerPid, device.name);
    this.#options.onChange?.();
  }
}
