/**
 * Device commands on the server (vfio-user.rst "VFIO_USER_DEVICE_GET_INFO",
 * "_GET_REGION_INFO", "_GET_REGION_IO_FDS", "_GET_IRQ_INFO", "_SET_IRQS", "_DEVICE_RESET",
 * "_DEVICE_FEATURE"): thin calls into the one vfio-pci device model, whose answers are the
 * kernel's ioctl answers.
 *
 * GET_REGION_INFO answers with the device's region info as the kernel built it (its fields
 * and capability chain, encoded by the one struct vfio_region_info codec), with three changes
 * the protocol requires:
 * - when the reply carries an fd (the region is mmap-able and argsz held the capabilities),
 *   its `offset` is "the offset that should be given to the mmap() system call", not the
 *   kernel's index << 40;
 * - when argsz cannot hold the capabilities, the kernel still sets the CAPS flag (with
 *   cap_offset 0); vfio-user's CAPS "indicates additional capabilities found in the reply", so
 *   it is cleared, as libvfio-user does — QEMU 10.1 rejects CAPS with a cap_offset outside
 *   [32, argsz] on its first, argsz-32 query (hw/vfio-user/device.c), which would fail every
 *   BAR carrying MSIX_MAPPABLE;
 * - argsz is "the size required for the full reply payload", where the kernel echoes a
 *   larger caller's argsz.
 * The kernel's values are otherwise sent as they are (flags, index, cap_offset, size, chain).
 * The fd comes from the region's mmap op, run once per session at the first region-info that
 * can carry it (the kernel's mmap moment: the GPU RAM op allows one mapping per open device);
 * later requests resend the same fd.
 */
import { readlinkSync } from 'node:fs';
import { hex } from '../../text/index.ts';
import type { MmapGrant, RegionInfoReply } from '../../vfio/index.ts';
import { reopenForPeer, VFIO_REGION_INFO_SIZE, VfioError } from '../../vfio/index.ts';
import type { RequestOf } from '../wire/index.ts';
import { Command, encodeReplyParts, IrqSetFlag, RegionFlag } from '../wire/index.ts';
import { EMPTY_REPLY, type FdBag, type HandlerReply, type SessionState } from './session-state.ts';

const DEVICE_INFO_SIZE = 16;
const IRQ_SET_HEAD = 20;

/**
 * DEVICE_GET_INFO: the device's struct vfio_device_info (flags, num_regions, num_irqs).
 * @throws VfioError EINVAL when argsz is under 16.
 */
export function handleDeviceGetInfo(
  s: SessionState,
  r: RequestOf<Command.DEVICE_GET_INFO>,
): HandlerReply {
  if (r.argsz < DEVICE_INFO_SIZE)
    throw new VfioError('EINVAL', `DEVICE_GET_INFO argsz ${r.argsz} is under 16`);
  const info = s.device.info();
  return {
    parts: encodeReplyParts({
      command: Command.DEVICE_GET_INFO,
      argsz: DEVICE_INFO_SIZE,
      flags: info.flags,
      numRegions: info.numRegions,
      numIrqs: info.numIrqs,
    }),
  };
}

/** The session's grant for region `index`, running the mmap op the first time. */
function grantFor(s: SessionState, index: number, reply: RegionInfoReply): MmapGrant | undefined {
  const cached = s.grants.get(index);
  if (cached || !reply.mmap) return cached;
  try {
    s.memoryGiven(index); // recorded before any descriptor of it goes out (a restart knows)
    const made = reply.mmap({ offset: 0n, length: reply.info.size, userAddress: 0n });
    // A description of the client's own (not the region's fd): when it lets go is seen.
    const grant = { ...made, fd: reopenForPeer(made.fd, `region ${index} of ${s.device.name}`) };
    s.grants.set(index, grant);
    return grant;
  } catch (err) {
    if (!(err instanceof VfioError)) throw err;
    s.log(`${s.device.name}: region ${index} is not mapped: ${err.message}`);
    return undefined;
  }
}

/**
 * DEVICE_GET_REGION_INFO: the kernel's region info with the protocol's changes (module header), and
 * the region's fd when it is mmap-able.
 */
export function handleDeviceGetRegionInfo(
  s: SessionState,
  r: RequestOf<Command.DEVICE_GET_REGION_INFO>,
): HandlerReply {
  const reply = s.device.regionInfo(r.index, r.argsz, r.capOffset);
  const grant = reply.mmap ? grantFor(s, r.index, reply) : undefined;
  const { info, chain } = reply;
  const capsLeftOut = (info.flags & RegionFlag.CAPS) !== 0 && chain.length === 0;
  const parts = encodeReplyParts({
    command: Command.DEVICE_GET_REGION_INFO,
    info: {
      ...info,
      argsz: capsLeftOut ? info.argsz : VFIO_REGION_INFO_SIZE + chain.length,
      flags: capsLeftOut ? info.flags & ~RegionFlag.CAPS : info.flags,
      offset: grant ? grant.fdOffset : info.offset,
    },
    capabilities: chain,
  });
  return grant ? { parts, fds: [grant.fd] } : { parts };
}

/**
 * DEVICE_GET_REGION_IO_FDS: no ioeventfds are offered, so a valid region answers with zero
 * sub-regions.
 * @throws VfioError EINVAL for argsz under 16, non-zero flags, or an unknown region.
 */
export function handleDeviceGetRegionIoFds(
  s: SessionState,
  r: RequestOf<Command.DEVICE_GET_REGION_IO_FDS>,
): HandlerReply {
  if (r.argsz < 16)
    throw new VfioError('EINVAL', `DEVICE_GET_REGION_IO_FDS argsz ${r.argsz} is under 16`);
  if (r.flags !== 0)
    throw new VfioError('EINVAL', `DEVICE_GET_REGION_IO_FDS flags ${hex(r.flags)} must be 0`);
  s.device.describeRegion(r.index);
  return {
    parts: encodeReplyParts({
      command: Command.DEVICE_GET_REGION_IO_FDS,
      argsz: 16,
      flags: 0,
      index: r.index,
      count: 0,
      subRegions: new Uint8Array(0),
    }),
  };
}

/**
 * DEVICE_GET_IRQ_INFO: the device's struct vfio_irq_info for the index (vfio_pci_ioctl
 * VFIO_DEVICE_GET_IRQ_INFO).
 */
export function handleDeviceGetIrqInfo(
  s: SessionState,
  r: RequestOf<Command.DEVICE_GET_IRQ_INFO>,
): HandlerReply {
  const info = s.device.irqInfo(r.index, r.argsz);
  return {
    parts: encodeReplyParts({
      command: Command.DEVICE_GET_IRQ_INFO,
      argsz: 16,
      flags: info.flags,
      index: info.index,
      count: info.count,
    }),
  };
}

/**
 * vfio.c/virt/lib eventfd_ctx_fdget(), as vfio_pci_intrs.c calls it for every descriptor:
 * EBADF for one that is not open, EINVAL for anything but an eventfd (a directory, a socket
 * or a memfd would fail or take the interrupt's 8-byte write).
 * @throws VfioError EBADF, EINVAL
 */
function checkEventfds(fds: readonly number[]): void {
  for (const [i, fd] of fds.entries()) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      throw new VfioError('EBADF', `DEVICE_SET_IRQS: descriptor ${i} is not open`);
    }
    if (target !== 'anon_inode:[eventfd]') {
      throw new VfioError(
        'EINVAL',
        `DEVICE_SET_IRQS: descriptor ${i} is ${target}, not an eventfd`,
      );
    }
  }
}

/**
 * DEVICE_SET_IRQS (vfio_pci_set_irqs_ioctl). The device owns the eventfds once SET_IRQS
 * succeeds; on failure they are closed by dispatch, and so are fds that came without
 * DATA_EVENTFD (nothing takes them).
 * @throws VfioError EINVAL for argsz under 20, fds not one per vector, or an fd that is not an
 *   eventfd; EBADF for an fd that is not open; the device's errno (EINVAL…) from setIrqs.
 */
export function handleDeviceSetIrqs(
  s: SessionState,
  r: RequestOf<Command.DEVICE_SET_IRQS>,
  fds: FdBag,
): HandlerReply {
  if (r.argsz < IRQ_SET_HEAD)
    throw new VfioError('EINVAL', `DEVICE_SET_IRQS argsz ${r.argsz} is under 20`);
  if (fds.count > 0 && fds.count !== r.count) {
    throw new VfioError('EINVAL', `DEVICE_SET_IRQS: ${fds.count} fds for ${r.count} vectors`);
  }
  const eventfds = (r.flags & IrqSetFlag.DATA_EVENTFD) !== 0 ? fds.peek() : [];
  checkEventfds(eventfds);
  s.device.setIrqs(r.index, r.start, r.count, r.flags, r.data, eventfds);
  if (eventfds.length > 0) fds.takeAll();
  return EMPTY_REPLY;
}

/**
 * DEVICE_RESET: the device's function-level reset (vfio_pci_ioctl VFIO_DEVICE_RESET); the
 * migration state returns to RUNNING (the only way out of ERROR, vfio.h).
 */
export function handleDeviceReset(s: SessionState): HandlerReply {
  s.device.reset();
  s.migration.reset();
  return EMPTY_REPLY;
}
