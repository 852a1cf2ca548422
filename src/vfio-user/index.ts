/**
 * The vfio-user layer's public face (QEMU docs/interop/vfio-user.rst), in three rooms:
 * - `wire/`: numbers, the header, message types and their codecs, the framer, the
 *   little-endian cursors, and the socket transport (`Connection`: framed messages with fds
 *   over a UNIX socket), which server and client share;
 * - `server/`: the listener, one `Session` per client (over a `MessageTransport`), the
 *   dispatch switch and its handlers, the DMA table; partition policy is given from outside;
 * - `client/`: what a VMM or a test uses to talk to a server.
 * Other layers import from here only.
 */
export * from './client/index.ts';
export * from './server/index.ts';
export * from './wire/index.ts';
