/**
 * Descriptors of each kind the fuzzer attaches (plan.ts FdKind), made when a frame is sent.
 * The fuzzer closes its copies once sendmsg took them (the kernel holds them in flight); a
 * held socket's other end stays open, unread, until the connection ends, so that anything
 * the server writes to it fills its buffer.
 */
import { openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import {
  closeFd,
  eventfdCreate,
  eventfdWrite,
  memfdCreate,
  setNonBlocking,
  socketPair,
} from '../native/index.ts';
import type { FdKind } from './plan.ts';

/** An eventfd counter's largest value (eventfd(2): a write that would pass it blocks). */
const EVENTFD_MAX = 0xffff_ffff_ffff_fffen;
const DMA_MEMFD_BYTES = 256n * 1024n;

/** The fds made for one frame: those to send, and those to keep open until the connection ends. */
export interface MadeFds {
  /** The fds to send. */
  readonly send: number[];
  /** Fds to keep open until the connection ends (the other ends of held sockets). */
  readonly held: number[];
}

function makeOne(kind: FdKind, held: number[]): number {
  switch (kind) {
    case 'eventfd':
      return eventfdCreate(0, { nonBlocking: true });
    case 'eventfd-full': {
      const fd = eventfdCreate(0);
      eventfdWrite(fd, EVENTFD_MAX);
      return fd;
    }
    case 'memfd':
      return memfdCreate('vfio-nvlink2-fuzz', DMA_MEMFD_BYTES);
    case 'memfd-empty':
      return memfdCreate('vfio-nvlink2-fuzz-empty', 0n);
    case 'socket': {
      const [a, b] = socketPair();
      closeFd(b);
      return a;
    }
    case 'socket-held': {
      const [a, b] = socketPair();
      setNonBlocking(a, false);
      held.push(b);
      return a;
    }
    case 'devnull':
      return openSync('/dev/null', 'r+');
    case 'directory':
      return openSync(tmpdir(), 'r');
  }
}

/** Makes one fd per kind. @throws SystemCallError (EMFILE...) after closing what it made. */
export function makeFds(kinds: readonly FdKind[]): MadeFds {
  const send: number[] = [];
  const held: number[] = [];
  try {
    for (const k of kinds) send.push(makeOne(k, held));
  } catch (e) {
    closeAll(send);
    closeAll(held);
    throw e;
  }
  return { send, held };
}

/** Closes every fd, ignoring any already closed. */
export function closeAll(fds: readonly number[]): void {
  for (const fd of fds) {
    try {
      closeFd(fd);
    } catch {
      // already closed
    }
  }
}
