/**
 * A device's memory still held by a client that has gone: the kernel keeps a VFIO device open
 * until the last mapping of it goes (each vma holds the device file, vma->vm_file), and a group
 * that is still open cannot be opened by another VMM (vfio_group_fops_open: EBUSY). Here the
 * session ends when the socket closes, but the memory a client was given (a descriptor per
 * region, its own open file description: vfio/shared-memory.ts reopenForPeer) and any mapping
 * of it outlive the socket; so the next client is refused with EBUSY while another process
 * still holds any of it, and the log names who.
 *
 * Two looks: a write lease (otherWriters, fcntl F_SETLEASE) tells whether any open file
 * description for writing but ours exists, whoever holds it, by a descriptor or only by a
 * mapping; /proc/PID/fd and /proc/PID/maps then name the holders this process may inspect
 * (its own uid's; root's view is whole). The new client itself may hold its previous mapping
 * (one process may open its device again). Limits: a description opened read-only is not seen
 * by the lease (only by /proc, so only within our uid; the memfd is mode 0600 so no other uid
 * can open one), and where leases are off (fs.leases-enable=0) only /proc is looked at.
 */
import { fstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { isSystemCallError, otherWriters } from '../../native/index.ts';
import type { VfioPciDevice } from '../../vfio/index.ts';
import { VfioError } from '../../vfio/index.ts';

/** A process holding a device's memory: its pid and how (`fd 7`, `a mapping`). */
export interface MemoryHolder {
  readonly pid: number;
  /** How it holds it, e.g. "fd 7" or "a mapping", in /proc's order. */
  readonly ways: readonly string[];
}

interface FileIdentity {
  readonly dev: bigint;
  readonly ino: bigint;
  /** /proc/PID/fd's link text for it ("/memfd:NAME (deleted)", or the file's path). */
  readonly link: string;
}

/** glibc's gnu_dev_major / gnu_dev_minor of a stat dev (what /proc/PID/maps prints in hex). */
function devOf(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
}

/**
 * The processes other than those in `except` that hold the file `fd` is open on (same device
 * and inode), by a descriptor (/proc/PID/fd) or a mapping (/proc/PID/maps), sorted by pid.
 * Processes this one may not inspect (another uid's, or gone meanwhile) are passed over.
 * @throws SystemCallError EBADF when `fd` is not open.
 */
export function memoryHolders(fd: number, except: ReadonlySet<number>): MemoryHolder[] {
  const st = fstatSync(fd, { bigint: true });
  const id: FileIdentity = {
    dev: st.dev,
    ino: st.ino,
    link: readlinkSync(`/proc/self/fd/${fd}`),
  };
  const holders: MemoryHolder[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const pid = Number(entry);
    if (except.has(pid)) continue;
    const ways = [...descriptorsOf(pid, id)];
    if (mapsOf(pid, id)) ways.push('a mapping');
    if (ways.length > 0) holders.push({ pid, ways });
  }
  return holders.sort((a, b) => a.pid - b.pid);
}

/** "fd N" for each descriptor of `pid` open on the file (nothing when it cannot be read). */
function* descriptorsOf(pid: number, id: FileIdentity): Generator<string> {
  let names: string[];
  try {
    names = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return; // another uid's, or gone
  }
  for (const n of names) {
    const path = `/proc/${pid}/fd/${n}`;
    try {
      // The link text first (cheap), then the inode: another server's memfd has the same name.
      if (readlinkSync(path) !== id.link) continue;
      const st = statSync(path, { bigint: true });
      if (st.ino === id.ino && st.dev === id.dev) yield `fd ${n}`;
    } catch {
      // closed meanwhile
    }
  }
}

/** Whether a mapping of `pid` is of the file (`maps`: "start-end perms offset MA:MI inode path"). */
function mapsOf(pid: number, id: FileIdentity): boolean {
  let maps: string;
  try {
    maps = readFileSync(`/proc/${pid}/maps`, 'latin1');
  } catch {
    return false;
  }
  const ino = ` ${id.ino} `;
  for (const line of maps.split('\n')) {
    if (!line.includes(ino)) continue;
    const f = line.split(/\s+/);
    const [major, minor] = (f[3] ?? '').split(':').map((h) => Number.parseInt(h, 16));
    if (major === undefined || minor === undefined || Number.isNaN(major) || Number.isNaN(minor))
      continue;
    if (f[4] === String(id.ino) && devOf(major, minor) === id.dev) return true;
  }
  return false;
}

/** Whether another open file description for writing of `fd`'s file exists; undefined: unknown. */
function othersWrite(fd: number): boolean | undefined {
  try {
    return otherWriters(fd);
  } catch (err) {
    if (isSystemCallError(err)) return undefined; // no leases here (EINVAL): /proc decides
    throw err;
  }
}

/**
 * Refuses the open of `device` by `peerPid` while a process other than this one and the peer
 * still holds memory a mapping of one of its regions reaches (device.mappedMemory()): a
 * previous client that kept its mapping or its descriptor, or one it handed them to.
 * @throws VfioError EBUSY naming the region and the holders (pid and how), or saying the holder
 *   is a process this server cannot inspect.
 */
export function refuseWhileMemoryHeld(device: VfioPciDevice, peerPid: number): void {
  for (const { region, fd } of device.mappedMemory()) {
    const leased = othersWrite(fd);
    if (leased === false) continue;
    const holders = memoryHolders(fd, new Set([process.pid]));
    const others = holders.filter((h) => h.pid !== peerPid);
    if (others.length > 0) {
      const who = others.map((h) => `pid ${h.pid} (${h.ways.join(', ')})`).join(', ');
      throw new VfioError(
        'EBUSY',
        `region ${region} of ${device.name} is still held by ${who}; the device stays in use until that lets go of it`,
      );
    }
    // The new client's own earlier mapping, or nobody we can see: the lease asks again, as a
    // holder may have gone between the two looks. Without leases, /proc is all there is.
    if (holders.length > 0 || leased === undefined || othersWrite(fd) !== true) continue;
    throw new VfioError(
      'EBUSY',
      `region ${region} of ${device.name} is still held by a process this server cannot inspect (another uid's); the device stays in use until that lets go of it`,
    );
  }
}
