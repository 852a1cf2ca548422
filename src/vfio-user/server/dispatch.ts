/**
 * The server's one dispatch switch (libvfio-user lib/libvfio-user.c exec_command): decode the
 * payload, make sure VERSION came first, call the command's handler. Handlers throw VfioError;
 * the session turns it into the error reply. Commands a client may not send (DMA_READ and
 * DMA_WRITE go server → client) and unknown numbers are EINVAL,
 * as libvfio-user answers them.
 */
import { VfioError } from '../../vfio/index.ts';
import type { FramedMessage } from '../wire/index.ts';
import {
  Command,
  commandName,
  decodePlacedRequest,
  decodeRequest,
  encodeReplyParts,
} from '../wire/index.ts';
import {
  handleDeviceGetInfo,
  handleDeviceGetIrqInfo,
  handleDeviceGetRegionInfo,
  handleDeviceGetRegionIoFds,
  handleDeviceReset,
  handleDeviceSetIrqs,
} from './server-device.ts';
import { handleDeviceFeature, handleMigDataRead, handleMigDataWrite } from './server-migration.ts';
import { handleRegionRead, handleRegionWrite, handleRegionWriteMulti } from './server-region.ts';
import { handleVersion } from './server-version.ts';
import { EMPTY_REPLY, type FdBag, type HandlerReply, type SessionState } from './session-state.ts';

function handleDmaMap(
  s: SessionState,
  r: Parameters<SessionState['dma']['map']>[0],
  fds: FdBag,
): HandlerReply {
  if (fds.count > 1) throw new VfioError('EINVAL', `DMA_MAP with ${fds.count} fds (at most 1)`);
  s.dma.map(r, fds.takeAll()[0]);
  return EMPTY_REPLY;
}

function handleDmaUnmap(
  s: SessionState,
  r: Parameters<SessionState['dma']['unmap']>[0],
): HandlerReply {
  s.dma.unmap(r);
  return { parts: encodeReplyParts({ command: Command.DMA_UNMAP, ...r, argsz: 24 }) };
}

/**
 * Runs one command message. Fds the handler did not take stay in `fds` (the caller closes them).
 * @throws VfioError with the errno of the error reply.
 */
export function dispatch(s: SessionState, message: FramedMessage, fds: FdBag): HandlerReply {
  const command = message.header.command;
  const request =
    message.placed === undefined
      ? decodeRequest(command, message.payload)
      : decodePlacedRequest(command, message.payload, message.placed);
  if (!s.negotiated && request.command !== Command.VERSION) {
    throw new VfioError(
      'EINVAL',
      `${commandName(command)} before VERSION: VERSION must be the first command`,
    );
  }
  switch (request.command) {
    case Command.VERSION:
      return handleVersion(s, request);
    case Command.DMA_MAP:
      return handleDmaMap(s, request, fds);
    case Command.DMA_UNMAP:
      return handleDmaUnmap(s, request);
    case Command.DEVICE_GET_INFO:
      return handleDeviceGetInfo(s, request);
    case Command.DEVICE_GET_REGION_INFO:
      return handleDeviceGetRegionInfo(s, request);
    case Command.DEVICE_GET_REGION_IO_FDS:
      return handleDeviceGetRegionIoFds(s, request);
    case Command.DEVICE_GET_IRQ_INFO:
      return handleDeviceGetIrqInfo(s, request);
    case Command.DEVICE_SET_IRQS:
      return handleDeviceSetIrqs(s, request, fds);
    case Command.REGION_READ:
      return handleRegionRead(s, request);
    case Command.REGION_WRITE:
      return handleRegionWrite(s, request);
    case Command.DEVICE_RESET:
      return handleDeviceReset(s);
    case Command.REGION_WRITE_MULTI:
      return handleRegionWriteMulti(s, request);
    case Command.DEVICE_FEATURE:
      return handleDeviceFeature(s, request);
    case Command.DMA_READ:
    case Command.DMA_WRITE:
      throw new VfioError('EINVAL', `${commandName(command)} goes from server to client only`);
    case Command.MIG_DATA_READ:
      return handleMigDataRead(s, request);
    case Command.MIG_DATA_WRITE:
      return handleMigDataWrite(s, request);
  }
}
