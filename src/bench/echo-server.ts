/**
 * The floor's far end: a raw responder on a UNIX socket, hosted in the same child process as
 * the vfio-user server so the floor and the server measurements cross the same two processes.
 * It answers in vfio-user's shapes without a device behind them: a REGION_READ-shaped request
 * (header + 16-byte head with `count`) gets header + head + `count` bytes from a buffer filled
 * once; a REGION_WRITE-shaped one (header + head + data) gets header + head. Nothing is decoded
 * beyond the two fields that size the reply.
 */
import { acceptConnection, closeFd, FdEvent, FdWatcher, listenUnix } from '../native/index.ts';
import { FRAME_HEADER_BYTES, RawStream } from './raw-stream.ts';

/** vfio-user command numbers the responder tells apart (vfio-user.rst "Commands"). */
export const ECHO_REGION_READ = 9;
/** VFIO_USER_REGION_WRITE's command number (vfio-user.rst "Commands"). */
export const ECHO_REGION_WRITE = 10;
/** Bytes of the region-access head after the header: offset u64, region u32, count u32. */
export const ACCESS_HEAD_BYTES = 16;
/** Largest request or reply: 1 MiB of data plus header and head, as max_data_xfer_size. */
export const ECHO_MAX_DATA = 1024 * 1024;
const MAX_FRAME = FRAME_HEADER_BYTES + ACCESS_HEAD_BYTES + ECHO_MAX_DATA;
const REPLY_FLAG = 1;

/** A listening echo responder: its socket path, and `close` to stop it. */
export interface EchoServer {
  readonly path: string;
  close(): void;
}

/**
 * Listens on `path` and answers every connection until `close()`.
 * @throws SystemCallError from listen (EADDRINUSE, ENAMETOOLONG).
 */
export function startEchoServer(path: string): EchoServer {
  const listenFd = listenUnix(path);
  const data = new Uint8Array(ECHO_MAX_DATA).fill(0xa5);
  const streams = new Set<RawStream>();
  const accepter = new FdWatcher(listenFd, FdEvent.READABLE, () => {
    for (let fd = acceptConnection(listenFd); fd !== null; fd = acceptConnection(listenFd)) {
      streams.add(serveConnection(fd, data, streams));
    }
  });
  return {
    path,
    close() {
      accepter.close();
      closeFd(listenFd);
      for (const s of [...streams]) s.close();
    },
  };
}

function serveConnection(fd: number, data: Uint8Array, streams: Set<RawStream>): RawStream {
  const stream: RawStream = new RawStream(fd, MAX_FRAME, {
    onFrame(frame) {
      stream.send(replyTo(frame, data));
    },
    onClose() {
      streams.delete(stream);
    },
  });
  return stream;
}

/** The reply parts for one request frame (fresh header and head: the frame view is reused). */
function replyTo(frame: Uint8Array, data: Uint8Array): Uint8Array[] {
  const v = new DataView(frame.buffer, frame.byteOffset, frame.length);
  const command = v.getUint16(2, true);
  const count =
    command === ECHO_REGION_READ && frame.length >= FRAME_HEADER_BYTES + ACCESS_HEAD_BYTES
      ? Math.min(v.getUint32(FRAME_HEADER_BYTES + 12, true), data.length)
      : 0;
  const head = frame.slice(0, FRAME_HEADER_BYTES + ACCESS_HEAD_BYTES);
  const hv = new DataView(head.buffer);
  hv.setUint32(4, head.length + count, true);
  hv.setUint32(8, REPLY_FLAG, true);
  return count > 0 ? [head, data.subarray(0, count)] : [head];
}
