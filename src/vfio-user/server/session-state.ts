/**
 * What a command handler sees of its session (one client connected to one device) and what it
 * returns: reply payload parts plus the fds to attach. Handlers never touch the socket
 * (libvfio-user's split between tran_sock.c and the handlers of libvfio-user.c).
 */

import type { DeviceMigration } from '../../migration/index.ts';
import { closeFd } from '../../native/index.ts';
import type { MmapGrant, VfioPciDevice } from '../../vfio/index.ts';
import type { EffectiveCapabilities } from '../wire/index.ts';
import type { DmaTable } from './server-dma.ts';

/** What a handler may use of its session: the device, DMA table, region grants and limits. */
export interface SessionState {
  readonly device: VfioPciDevice;
  readonly dma: DmaTable;
  /**
   * Per region index, the grant of the region's mmap op, taken once per session, its `fd` the
   * session's own open file description of the memory (reopenForPeer), closed when it ends.
   */
  readonly grants: Map<number, MmapGrant>;
  /** The server's own limits (what VERSION announces). */
  readonly limits: EffectiveCapabilities;
  /** The device's migration state machine for this session (src/migration). */
  readonly migration: DeviceMigration;
  /** Whether VERSION has been negotiated. */
  negotiated: boolean;
  /** The client's capabilities from its VERSION (defaults before). */
  client: EffectiveCapabilities;
  /** Opens the device for this session (partition, LPID, KVM set). @throws VfioError */
  openDevice(): void;
  /**
   * Region `index`'s memory goes to the client (a grant): its uid is remembered.
   * @throws VfioError EIO when it cannot be recorded (the grant is then not made).
   */
  memoryGiven(index: number): void;
  log(message: string): void;
}

/** A handler's successful answer: payload parts and the fds to send with them (not owned). */
export interface HandlerReply {
  readonly parts: readonly Uint8Array[];
  readonly fds?: readonly number[];
  /** The parts include views of live memory (a region's): the transport copies them if queued. */
  readonly borrowed?: boolean;
}

/** A reply with no payload. */
export const EMPTY_REPLY: HandlerReply = { parts: [] };

/** The fds that came with a message: a handler takes what it uses; the rest are closed. */
export class FdBag {
  #fds: number[];

  constructor(fds: readonly number[]) {
    this.#fds = fds.length === 0 ? [] : [...fds];
  }

  /** How many fds are still in the bag (not taken by a handler). */
  get count(): number {
    return this.#fds.length;
  }

  /** The fds without taking them. */
  peek(): readonly number[] {
    return [...this.#fds];
  }

  /** Takes every fd (the caller owns them now). */
  takeAll(): number[] {
    const fds = this.#fds;
    this.#fds = [];
    return fds;
  }

  /** Closes what nobody took. */
  closeRest(): void {
    for (const fd of this.takeAll()) closeFd(fd);
  }
}
