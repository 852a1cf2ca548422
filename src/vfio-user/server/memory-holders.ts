/**
 * A device's memory still held by a client that has gone: the kernel keeps a VFIO device open
 * until the last mapping of it goes (each vma holds the device file, vma->vm_file), and a group
 * that is still open cannot be opened by another VMM (vfio_group_fops_open: EBUSY). Here the
 * session ends when the socket closes, but the memory a client was given (a descriptor per
 * region, its own open file description: vfio/shared-memory.ts reopenForPeer) and any mapping
 * of it outlive the socket. So the next client is refused with EBUSY while a process of
 * another uid still holds any of it, and the log names who and how.
 *
 * One uid is one trust domain: a process of the client's own uid may hold the memory (it is let
 * in, and the log says who holds it), as it could open the server's descriptors itself through
 * /proc/<serve pid>/fd (ptrace read access, which every process of a uid has to the others);
 * that is also how `migrate` drives a device whose VMM's guest keeps writing through its mapping.
 * The client itself may hold its earlier mapping (one process may open its device again) where
 * this process can see it (root, or the client's uid is ours); unseen, it counts as another's.
 * Not seen at all: pages held with no open file description (io_uring registered buffers, pages
 * spliced into a pipe), which reach the memory after their holder closed and unmapped it; for
 * those, see GivenMemory.
 *
 * Pages held with no open file description (io_uring registered buffers, spliced pages) are
 * seen by neither look below: GivenMemory renews the device's memory instead, before a client
 * of another uid than those it went to opens it.
 *
 * Two looks: a write lease (heldElsewhere, fcntl F_SETLEASE) tells whether any open file
 * description but ours exists, whoever holds it, read-write or read-only, by a descriptor or
 * only by a mapping; /proc/PID/fd and /proc/PID/maps then name the holders this process may
 * inspect (its own uid's; root's view is whole). One the lease sees and /proc does not is a
 * process of another uid. Where leases are off (fs.leases-enable=0) only /proc is looked at.
 */
import { fstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { heldElsewhere, isSystemCallError } from '../../native/index.ts';
import type { VfioPciDevice } from '../../vfio/index.ts';
import { VfioError } from '../../vfio/index.ts';

/** A process holding a device's memory: its pid, its uid and how (`fd 7`, `a mapping`). */
export interface MemoryHolder {
  readonly pid: number;
  /** Its effective uid (the owner of /proc/PID). */
  readonly uid: number;
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
    const uid = ways.length > 0 ? uidOf(pid) : undefined;
    if (uid !== undefined) holders.push({ pid, uid, ways });
  }
  return holders.sort((a, b) => a.pid - b.pid);
}

/** The effective uid of `pid` (the owner of /proc/PID); undefined once it is gone. */
export function uidOf(pid: number): number | undefined {
  try {
    return statSync(`/proc/${pid}`).uid;
  } catch {
    return undefined;
  }
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

/** Whether another open file description of `fd`'s file exists (any mode); undefined: unknown. */
function leaseSaysHeld(fd: number): boolean | undefined {
  try {
    return heldElsewhere(fd);
  } catch (err) {
    if (isSystemCallError(err)) return undefined; // no leases here (EINVAL): /proc decides
    throw err;
  }
}

/**
 * Refuses the open of `device` by `peerPid` while a process of another uid than `peerUid` (the
 * peer's, SO_PEERCRED; undefined: not known, so every holder counts as another's)
 * still holds memory a mapping of one of its regions reaches (device.mappedMemory()): a
 * previous client that kept its mapping or its descriptor, or one it handed them to.
 * @returns the holders let in (the peer's own uid's, the peer itself left out), for the log
 * @throws VfioError EBUSY naming the region and the holders (pid, uid and how), or saying the
 *   holder is a process this server cannot inspect (another uid's).
 */
export function refuseWhileMemoryHeld(
  device: VfioPciDevice,
  peerPid: number,
  peerUid: number | undefined,
): { readonly region: number; readonly holders: readonly MemoryHolder[] }[] {
  const tolerated: { region: number; holders: MemoryHolder[] }[] = [];
  for (const { region, memory } of device.mappedMemory()) {
    const fd = memory.fd;
    const leased = leaseSaysHeld(fd);
    if (leased === false) continue;
    const all = recentHolders(device, fd);
    const others = all.filter((h) => h.pid !== peerPid && h.uid !== peerUid);
    if (others.length > 0) {
      const who = others.map((h) => `pid ${h.pid} of uid ${h.uid} (${h.ways.join(', ')})`);
      throw new VfioError(
        'EBUSY',
        `region ${region} of ${device.name} is still held by ${who.join(', ')}; the device stays in use until that lets go of it`,
      );
    }
    const holders = all.filter((h) => h.pid !== peerPid);
    if (holders.length > 0) tolerated.push({ region, holders });
    // Nobody we can see but the peer, or nobody at all: the lease asks again (a holder may have
    // gone between the two looks). The peer's own description would count: it is let in.
    if (all.length > 0 || leased === undefined || leaseSaysHeld(fd) !== true) continue;
    throw new VfioError(
      'EBUSY',
      `region ${region} of ${device.name} is still held by a process this server cannot inspect (another uid's); the device stays in use until that lets go of it`,
    );
  }
  return tolerated;
}

/** How long a look through /proc answers for the same memory (ms). */
const HOLDERS_TTL_MS = 1000;
const looks = new WeakMap<VfioPciDevice, Map<number, { at: number; holders: MemoryHolder[] }>>();

/**
 * The holders of `fd` (every process but this one), from a look through /proc at most
 * HOLDERS_TTL_MS old: a look reads every process's fd table and maps (~70-150 ms with ~100
 * processes on a loaded 2-vCPU VM, the event loop blocked meanwhile), and a client that keeps
 * the memory and connects again and again would otherwise cost one per connect.
 */
function recentHolders(device: VfioPciDevice, fd: number): MemoryHolder[] {
  let byFd = looks.get(device);
  if (byFd === undefined) {
    byFd = new Map();
    looks.set(device, byFd);
  }
  const now = Date.now();
  const last = byFd.get(fd);
  if (last !== undefined && now - last.at < HOLDERS_TTL_MS) return last.holders;
  const holders = memoryHolders(fd, new Set([process.pid]));
  byFd.set(fd, { at: now, holders });
  return holders;
}

/** A uid not known: the holder is gone, or the memory came from a state directory. */
const UNKNOWN_UID = -1;

/**
 * The uids a device's memory was handed to (by a session's region grant) since it was last
 * renewed, kept per device by its server. Pages can be held with no open file description
 * (io_uring registered buffers over a mapping, pages spliced into a pipe), which neither the
 * lease nor /proc sees; so before a client of another uid opens the device, each memory nobody
 * holds a file of is renewed (SharedMemory.renew: a copy under the same descriptors), and the
 * old pages stay with whoever pinned them. A restored state directory keeps no uids: its
 * memory counts as handed to an unknown one, so its first client gets it renewed.
 */
export class GivenMemory {
  readonly #uids = new Set<number>();

  /** `unknownBefore`: the memory went to uids not known here (a restored state directory). */
  constructor(unknownBefore = false) {
    if (unknownBefore) this.#uids.add(UNKNOWN_UID);
  }

  /** A session handed memory of the device to a peer of `uid` (undefined: not known). */
  given(uid: number | undefined): void {
    this.#uids.add(uid ?? UNKNOWN_UID);
  }

  /**
   * Before a peer of `peerUid` opens `device`: when its memory went to another uid since, renews each
   * memory no other open file description holds (one that is held by the client's own uid,
   * let in, is left: renewing it would cut that holder off).
   * @returns the regions renewed and those left, for the log; both empty when nothing was due.
   * @throws VfioError ENOMEM when a copy cannot be made (out of memory or descriptors).
   */
  renewFor(
    device: VfioPciDevice,
    peerUid: number | undefined,
  ): {
    readonly renewed: readonly number[];
    readonly left: readonly number[];
    readonly uids: readonly number[];
  } {
    const uids = [...this.#uids].filter((u) => u !== peerUid).sort((a, b) => a - b);
    if (uids.length === 0) return { renewed: [], left: [], uids };
    const renewed: number[] = [];
    const left: number[] = [];
    for (const { region, memory } of device.mappedMemory()) {
      if (memory.renew === undefined || leaseSaysHeld(memory.fd) === true) left.push(region);
      else {
        memory.renew();
        renewed.push(region);
      }
    }
    if (left.length === 0) this.#uids.clear();
    return { renewed, left, uids };
  }
}
