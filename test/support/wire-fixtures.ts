/**
 * Wire fixtures for the tests: each message as a typed value and as bytes packed by hand
 * (frames.ts, DataView), independently of ByteWriter and the codecs (vfio-user.rst tables, offsets from the
 * end of the header). Test-only.
 */

import { Command, type Reply, type Request } from '../../src/vfio-user/index.ts';
import { pack } from './frames.ts';

export interface RequestFixture {
  name: string;
  value: Request;
  payload: Uint8Array;
}

export interface ReplyFixture {
  name: string;
  value: Reply;
  payload: Uint8Array;
}

const b = (...xs: number[]) => Uint8Array.from(xs);
const NUL = b(0);
const QEMU_JSON =
  '{"capabilities":{"max_msg_fds":16,"max_data_xfer_size":1048576,"max_dma_maps":65535,"pgsizes":4096,"write_multiple":true,"migration":{"pgsize":4096,"max_bitmap_size":268435456}}}';

export const REQUEST_FIXTURES: RequestFixture[] = [
  {
    name: 'VERSION 0.0 with QEMU-like capabilities',
    value: {
      command: Command.VERSION,
      major: 0,
      minor: 0,
      capabilities: {
        maxMsgFds: 16,
        maxDataXferSize: 1048576,
        maxDmaMaps: 65535,
        pgsizes: 4096,
        writeMultiple: true,
        migration: { pgsize: 4096, maxBitmapSize: 268435456 },
      },
    },
    payload: pack(['u16', 0], ['u16', 0], ['text', QEMU_JSON], ['bytes', NUL]),
  },
  {
    name: 'VERSION 0.2 without JSON',
    value: { command: Command.VERSION, major: 0, minor: 2, capabilities: null },
    payload: pack(['u16', 0], ['u16', 2]),
  },
  {
    name: 'DMA_MAP',
    value: {
      command: Command.DMA_MAP,
      argsz: 32,
      flags: 3,
      offset: 0x1000n,
      address: 0x8000_0000n,
      size: 0x4000_0000n,
    },
    payload: pack(
      ['u32', 32],
      ['u32', 3],
      ['u64', 0x1000n],
      ['u64', 0x8000_0000n],
      ['u64', 0x4000_0000n],
    ),
  },
  {
    name: 'DMA_UNMAP all',
    value: { command: Command.DMA_UNMAP, argsz: 24, flags: 2, address: 0n, size: 0n },
    payload: pack(['u32', 24], ['u32', 2], ['u64', 0n], ['u64', 0n]),
  },
  {
    name: 'DEVICE_GET_INFO',
    value: { command: Command.DEVICE_GET_INFO, argsz: 16, flags: 0, numRegions: 0, numIrqs: 0 },
    payload: pack(['u32', 16], ['u32', 0], ['u32', 0], ['u32', 0]),
  },
  {
    name: 'DEVICE_GET_REGION_INFO',
    value: {
      command: Command.DEVICE_GET_REGION_INFO,
      argsz: 32,
      flags: 0,
      index: 9,
      capOffset: 0,
      size: 0n,
      offset: 0n,
    },
    payload: pack(['u32', 32], ['u32', 0], ['u32', 9], ['u32', 0], ['u64', 0n], ['u64', 0n]),
  },
  {
    name: 'DEVICE_GET_REGION_IO_FDS',
    value: { command: Command.DEVICE_GET_REGION_IO_FDS, argsz: 1024, flags: 0, index: 0, count: 0 },
    payload: pack(['u32', 1024], ['u32', 0], ['u32', 0], ['u32', 0]),
  },
  {
    name: 'DEVICE_GET_IRQ_INFO',
    value: { command: Command.DEVICE_GET_IRQ_INFO, argsz: 16, flags: 0, index: 2, count: 0 },
    payload: pack(['u32', 16], ['u32', 0], ['u32', 2], ['u32', 0]),
  },
  {
    name: 'DEVICE_SET_IRQS eventfd trigger',
    value: {
      command: Command.DEVICE_SET_IRQS,
      argsz: 20,
      flags: 0x24,
      index: 2,
      start: 0,
      count: 4,
      data: new Uint8Array(0),
    },
    payload: pack(['u32', 20], ['u32', 0x24], ['u32', 2], ['u32', 0], ['u32', 4]),
  },
  {
    name: 'DEVICE_SET_IRQS bool mask',
    value: {
      command: Command.DEVICE_SET_IRQS,
      argsz: 23,
      flags: 0x0a,
      index: 0,
      start: 0,
      count: 3,
      data: b(1, 0, 1),
    },
    payload: pack(
      ['u32', 23],
      ['u32', 0x0a],
      ['u32', 0],
      ['u32', 0],
      ['u32', 3],
      ['bytes', b(1, 0, 1)],
    ),
  },
  {
    name: 'REGION_READ',
    value: { command: Command.REGION_READ, offset: 0x10n, region: 7, count: 4 },
    payload: pack(['u64', 0x10n], ['u32', 7], ['u32', 4]),
  },
  {
    name: 'REGION_WRITE',
    value: {
      command: Command.REGION_WRITE,
      offset: 0x2000_0000_00n,
      region: 9,
      data: b(1, 2, 3, 4, 5, 6, 7, 8),
    },
    payload: pack(
      ['u64', 0x2000_0000_00n],
      ['u32', 9],
      ['u32', 8],
      ['bytes', b(1, 2, 3, 4, 5, 6, 7, 8)],
    ),
  },
  {
    name: 'DMA_READ',
    value: { command: Command.DMA_READ, address: 0x8000_1000n, count: 64n },
    payload: pack(['u64', 0x8000_1000n], ['u64', 64n]),
  },
  {
    name: 'DMA_WRITE',
    value: { command: Command.DMA_WRITE, address: 0x8000_1000n, data: b(0xde, 0xad) },
    payload: pack(['u64', 0x8000_1000n], ['u64', 2n], ['bytes', b(0xde, 0xad)]),
  },
  { name: 'DEVICE_RESET', value: { command: Command.DEVICE_RESET }, payload: new Uint8Array(0) },
  {
    name: 'REGION_WRITE_MULTI',
    value: {
      command: Command.REGION_WRITE_MULTI,
      writes: [
        { offset: 4n, region: 0, data: b(0xaa, 0xbb, 0xcc, 0xdd) },
        { offset: 8n, region: 2, data: b(1, 2, 3, 4, 5, 6, 7, 8) },
      ],
    },
    payload: pack(
      ['u64', 2n],
      ['u64', 4n],
      ['u32', 0],
      ['u32', 4],
      ['bytes', b(0xaa, 0xbb, 0xcc, 0xdd, 0, 0, 0, 0)],
      ['u64', 8n],
      ['u32', 2],
      ['u32', 8],
      ['bytes', b(1, 2, 3, 4, 5, 6, 7, 8)],
    ),
  },
  {
    name: 'DEVICE_FEATURE probe migration',
    value: {
      command: Command.DEVICE_FEATURE,
      argsz: 16,
      flags: (1 << 18) | (1 << 16) | 1,
      data: new Uint8Array(0),
    },
    payload: pack(['u32', 16], ['u32', (1 << 18) | (1 << 16) | 1]),
  },
  {
    name: 'MIG_DATA_READ',
    value: { command: Command.MIG_DATA_READ, argsz: 4104, size: 4096 },
    payload: pack(['u32', 4104], ['u32', 4096]),
  },
  {
    name: 'MIG_DATA_WRITE',
    value: { command: Command.MIG_DATA_WRITE, argsz: 11, data: b(9, 8, 7) },
    payload: pack(['u32', 11], ['u32', 3], ['bytes', b(9, 8, 7)]),
  },
];

const SPARSE_CAP = pack(
  ['u16', 1],
  ['u16', 1],
  ['u32', 0],
  ['u32', 1],
  ['u32', 0],
  ['u64', 0n],
  ['u64', 0x1000n],
);

export const REPLY_FIXTURES: ReplyFixture[] = [
  {
    name: 'VERSION reply with short JSON',
    value: {
      command: Command.VERSION,
      major: 0,
      minor: 0,
      capabilities: { maxMsgFds: 16, maxDataXferSize: 1048576 },
    },
    payload: pack(
      ['u16', 0],
      ['u16', 0],
      ['text', '{"capabilities":{"max_msg_fds":16,"max_data_xfer_size":1048576}}'],
      ['bytes', NUL],
    ),
  },
  { name: 'DMA_MAP reply', value: { command: Command.DMA_MAP }, payload: new Uint8Array(0) },
  {
    name: 'DMA_UNMAP reply',
    value: {
      command: Command.DMA_UNMAP,
      argsz: 24,
      flags: 0,
      address: 0x8000_0000n,
      size: 0x1000n,
    },
    payload: pack(['u32', 24], ['u32', 0], ['u64', 0x8000_0000n], ['u64', 0x1000n]),
  },
  {
    name: 'DEVICE_GET_INFO reply',
    value: { command: Command.DEVICE_GET_INFO, argsz: 16, flags: 3, numRegions: 11, numIrqs: 5 },
    payload: pack(['u32', 16], ['u32', 3], ['u32', 11], ['u32', 5]),
  },
  {
    name: 'DEVICE_GET_REGION_INFO reply with a sparse-mmap cap',
    value: {
      command: Command.DEVICE_GET_REGION_INFO,
      info: { argsz: 64, flags: 0xf, index: 0, capOffset: 32, size: 0x100_0000n, offset: 0n },
      capabilities: SPARSE_CAP,
    },
    payload: pack(
      ['u32', 64],
      ['u32', 0xf],
      ['u32', 0],
      ['u32', 32],
      ['u64', 0x100_0000n],
      ['u64', 0n],
      ['bytes', SPARSE_CAP],
    ),
  },
  {
    name: 'DEVICE_GET_REGION_IO_FDS reply',
    value: {
      command: Command.DEVICE_GET_REGION_IO_FDS,
      argsz: 16,
      flags: 0,
      index: 0,
      count: 0,
      subRegions: new Uint8Array(0),
    },
    payload: pack(['u32', 16], ['u32', 0], ['u32', 0], ['u32', 0]),
  },
  {
    name: 'DEVICE_GET_IRQ_INFO reply',
    value: { command: Command.DEVICE_GET_IRQ_INFO, argsz: 16, flags: 0x9, index: 2, count: 32 },
    payload: pack(['u32', 16], ['u32', 0x9], ['u32', 2], ['u32', 32]),
  },
  {
    name: 'DEVICE_SET_IRQS reply',
    value: { command: Command.DEVICE_SET_IRQS },
    payload: new Uint8Array(0),
  },
  {
    name: 'REGION_READ reply',
    value: { command: Command.REGION_READ, offset: 0n, region: 7, data: b(0xde, 0x10, 0xb9, 0x1d) },
    payload: pack(['u64', 0n], ['u32', 7], ['u32', 4], ['bytes', b(0xde, 0x10, 0xb9, 0x1d)]),
  },
  {
    name: 'REGION_WRITE reply',
    value: { command: Command.REGION_WRITE, offset: 4n, region: 7, count: 2 },
    payload: pack(['u64', 4n], ['u32', 7], ['u32', 2]),
  },
  {
    name: 'DMA_READ reply',
    value: { command: Command.DMA_READ, address: 0x1000n, data: b(1, 2, 3) },
    payload: pack(['u64', 0x1000n], ['u64', 3n], ['bytes', b(1, 2, 3)]),
  },
  {
    name: 'DMA_WRITE reply',
    value: { command: Command.DMA_WRITE, address: 0x1000n, count: 3n },
    payload: pack(['u64', 0x1000n], ['u64', 3n]),
  },
  {
    name: 'DEVICE_RESET reply',
    value: { command: Command.DEVICE_RESET },
    payload: new Uint8Array(0),
  },
  {
    name: 'REGION_WRITE_MULTI reply',
    value: { command: Command.REGION_WRITE_MULTI, count: 2n },
    payload: pack(['u64', 2n]),
  },
  {
    name: 'DEVICE_FEATURE reply',
    value: { command: Command.DEVICE_FEATURE, argsz: 16, flags: 0x10001, data: pack(['u64', 1n]) },
    payload: pack(['u32', 16], ['u32', 0x10001], ['u64', 1n]),
  },
  {
    name: 'MIG_DATA_READ reply',
    value: { command: Command.MIG_DATA_READ, argsz: 10, data: b(5, 6) },
    payload: pack(['u32', 10], ['u32', 2], ['bytes', b(5, 6)]),
  },
  {
    name: 'MIG_DATA_WRITE reply',
    value: { command: Command.MIG_DATA_WRITE },
    payload: new Uint8Array(0),
  },
];
