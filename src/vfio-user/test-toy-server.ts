/**
 * A toy vfio-user server for the wire tests, run as its own process (node --import tsx
 * test-toy-server.ts SOCKET): VfioUserListener + ServerConnection + negotiateVersion over a
 * 64-byte scratch "device" (region 0). No device model. Prints "ready", serves every client.
 * REGION_READ of region 1 reads the client's memory at 0x1000 by DMA_READ first (a server→client
 * request inside a handler's turn); DEVICE_RESET answers after a 20 ms delay (an async handler).
 */
import { closeFd, fdFlags } from '../native/index.ts';
import { VfioError } from '../vfio/errors.ts';
import { Command, DeviceInfoFlag } from './constants.ts';
import { messageSizeLimit } from './framer.ts';
import { VfioUserListener } from './listener.ts';
import { type HandlerResult, type RequestHandler, ServerConnection } from './server-connection.ts';
import { negotiateVersion } from './version-negotiation.ts';

const path = process.argv[2]!;
const scratch = new Uint8Array(64);
let lastFdsCloexec = false;

const handler: RequestHandler = async (request, ctx): Promise<HandlerResult> => {
  switch (request.command) {
    case Command.VERSION: {
      const n = negotiateVersion(request, {
        major: 0,
        minor: 0,
        capabilities: { maxMsgFds: 8, maxDataXferSize: 1 << 20, writeMultiple: false },
      });
      ctx.connection.setLimits({
        maxMessageSize: messageSizeLimit(n.server.maxDataXferSize),
        maxFds: n.server.maxMsgFds,
      });
      return { reply: { command: Command.VERSION, ...n.reply } };
    }
    case Command.DEVICE_GET_INFO:
      return {
        reply: {
          command: Command.DEVICE_GET_INFO,
          argsz: 16,
          flags: DeviceInfoFlag.PCI | DeviceInfoFlag.RESET,
          numRegions: 9,
          numIrqs: 5,
        },
      };
    case Command.REGION_READ: {
      if (request.region === 1) {
        const data = await ctx.connection.dmaRead(0x1000n, request.count);
        return { reply: { command: Command.REGION_READ, offset: request.offset, region: 1, data } };
      }
      if (request.region === 2) {
        // Report whether the fds of the last DMA_MAP arrived close-on-exec.
        return {
          reply: {
            command: Command.REGION_READ,
            offset: 0n,
            region: 2,
            data: Uint8Array.of(lastFdsCloexec ? 1 : 0),
          },
        };
      }
      const end = Number(request.offset) + request.count;
      if (request.region !== 0 || end > scratch.length)
        throw new VfioError('EFAULT', `read past the scratch region`);
      return {
        reply: {
          command: Command.REGION_READ,
          offset: request.offset,
          region: 0,
          data: scratch.slice(Number(request.offset), end),
        },
      };
    }
    case Command.REGION_WRITE: {
      if (request.region !== 0 || Number(request.offset) + request.data.length > scratch.length) {
        throw new VfioError('EFAULT', 'write past the scratch region');
      }
      scratch.set(request.data, Number(request.offset));
      return {
        reply: {
          command: Command.REGION_WRITE,
          offset: request.offset,
          region: 0,
          count: request.data.length,
        },
      };
    }
    case Command.DMA_MAP: {
      const fds = ctx.takeFds();
      lastFdsCloexec = fds.every((fd) => fdFlags(fd).cloexec) && fds.length > 0;
      for (const fd of fds) closeFd(fd);
      return { reply: { command: Command.DMA_MAP } };
    }
    case Command.DEVICE_SET_IRQS:
      // fds not taken: ServerConnection closes them.
      return { reply: { command: Command.DEVICE_SET_IRQS } };
    case Command.DEVICE_RESET:
      await new Promise((r) => setTimeout(r, 20));
      scratch.fill(0);
      return { reply: { command: Command.DEVICE_RESET } };
    case Command.DEVICE_GET_REGION_INFO:
      throw new Error('a bug in a handler');
    default:
      throw new VfioError('EINVAL', `unsupported command ${request.command}`);
  }
};

const listener = new VfioUserListener(path, (fd) => {
  new ServerConnection(fd, handler, { maxMessageSize: messageSizeLimit(1 << 20), maxFds: 1 }, {});
});
process.on('SIGTERM', () => {
  listener.close();
  process.exit(0);
});
console.log('ready');
