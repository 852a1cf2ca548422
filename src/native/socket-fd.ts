/**
 * The raw fd behind a `net.Socket`. Node keeps it on the undocumented `_handle.fd` of its
 * libuv-backed Pipe/TCP wrap; this is the only place in the project that reaches for it.
 * Prefer sockets the addon opens itself (`listenUnix`, `connectUnix`): reading a fd that libuv
 * also reads loses SCM_RIGHTS data.
 */
import type { Socket } from 'node:net';
import { addon } from './addon.ts';

interface HandleWithFd {
  _handle?: { fd?: unknown } | null;
}

/**
 * The fd of a connected `net.Socket` (still owned by Node: do not close it).
 * @throws TypeError when the socket has no open handle (destroyed, or not fd-backed).
 */
export function socketFd(socket: Socket): number {
  const fd = (socket as unknown as HandleWithFd)._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new TypeError('socket has no open file descriptor');
  return fd;
}

/**
 * Takes a connection away from Node: returns a close-on-exec, non-blocking duplicate of its
 * fd that the caller owns, then destroys the `net.Socket` (which pauses libuv's reading and
 * closes Node's copy). Call it before any data event has been delivered.
 * @throws TypeError as `socketFd`, SystemCallError if dup fails.
 */
export function takeOverSocket(socket: Socket): number {
  socket.pause();
  const fd = addon().dupFd(socketFd(socket));
  addon().setNonBlocking(fd, true);
  socket.destroy();
  return fd;
}
