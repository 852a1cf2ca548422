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
 * The client itself may hold its earlier mapping (one process may open its device again); a
 * holder this process cannot see is let in only when the memory went to no uid but the
 * client's (GivenMemory.onlyTo). Not seen at all: pages held with no open file description (io_uring registered buffers, pages
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
 * inspect (its own uid's that are dumpable; root's view is whole). One the lease sees and /proc
 * does not is another uid's, or one not dumpable. Where leases are off (fs.leases-enable=0) only
 * /proc is looked at. The look through /proc runs off the event loop (lookAhead, before the
 * open), and answers for HOLDERS_TTL_MS.
 */
// fs.promises when first used (a lookAhead), not at start-up: loading it cost every serve start
// ~9 M instructions before its sockets listened (issue 8).
import {
  promises as fsp,
  fstatSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
} from 'node:fs';
import { heldElsewhere, isSystemCallError } from '../../native/index.ts';
import type { VfioPciDevice } from '../../vfio/index.ts';
import { VfioError } from '../../vfio/index.ts';

/** A region of a device and the memory its mappings reach (VfioPciDevice.mappedMemory). */
export type RegionMemory = ReturnType<VfioPciDevice['mappedMemory']>[number];

/** A process holding a device's memory: its pid, its uid and how (`fd 7`, `a mapping`). */
export interface MemoryHolder {
  readonly pid: number;
  /** Its effective uid (the owner of /proc/PID). */
  readonly uid: number;
  /** How it holds it, e.g. "fd 7" or "a mapping", in /proc's order. */
  readonly ways: readonly string[];
}

/** A file a look searches for: its device and inode, and /proc/PID/fd's link text for it. */
interface FileIdentity {
  readonly dev: bigint;
  readonly ino: bigint;
  /** "/memfd:NAME (deleted)", or the file's path. */
  readonly link: string;
}

/** The file `fd` is open on. @throws SystemCallError EBADF when `fd` is not open. */
function identityOf(fd: number): FileIdentity {
  const st = fstatSync(fd, { bigint: true });
  return { dev: st.dev, ino: st.ino, link: readlinkSync(`/proc/self/fd/${fd}`) };
}

function keyOf(id: FileIdentity): string {
  return `${id.dev}:${id.ino}`;
}

/** glibc's gnu_dev_major / gnu_dev_minor of a stat dev (what /proc/PID/maps prints in hex). */
function devOf(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
}

/** The indexes of the `ids` a mapping in `maps` ("start-end perms offset MA:MI inode path") is of. */
function mappedIn(maps: string, ids: readonly FileIdentity[]): Set<number> {
  const found = new Set<number>();
  const inodes = ids.map((id) => ` ${id.ino} `);
  for (const line of maps.split('\n')) {
    if (!inodes.some((ino) => line.includes(ino))) continue; // the split only where it may be
    const f = line.split(/\s+/);
    const i = ids.findIndex((id) => f[4] === String(id.ino));
    if (i < 0) continue;
    const [major, minor] = (f[3] ?? '').split(':').map((h) => Number.parseInt(h, 16));
    if (major === undefined || minor === undefined || Number.isNaN(major) || Number.isNaN(minor))
      continue;
    const dev = devOf(major, minor);
    ids.forEach((id, j) => {
      if (f[4] === String(id.ino) && dev === id.dev) found.add(j);
    });
  }
  return found;
}

/** What one look at a process found: per id, how it holds it ("fd N", "a mapping"). */
type Ways = string[][];

/** Adds `pid`'s ways to `out` (per id, sorted by pid once every process was looked at). */
function record(out: MemoryHolder[][], pid: number, uid: number | undefined, ways: Ways): void {
  if (uid === undefined) return; // gone meanwhile
  ways.forEach((w, i) => {
    if (w.length > 0) out[i]?.push({ pid, uid, ways: w });
  });
}

/**
 * Per id, the processes other than those in `except` that hold the file (same device and
 * inode) by a descriptor (/proc/PID/fd) or a mapping (/proc/PID/maps), sorted by pid; the event
 * loop waits meanwhile (see holdersLater). Processes this one may not inspect (another uid's,
 * not dumpable, or gone meanwhile) are passed over.
 */
function holdersNow(ids: readonly FileIdentity[], except: ReadonlySet<number>): MemoryHolder[][] {
  const out: MemoryHolder[][] = ids.map(() => []);
  for (const pid of pidsIn(readdirSync('/proc'), except)) {
    const ways: Ways = ids.map(() => []);
    let names: string[] = [];
    try {
      names = readdirSync(`/proc/${pid}/fd`);
    } catch {
      // another uid's, or gone
    }
    for (const n of names) {
      const path = `/proc/${pid}/fd/${n}`;
      try {
        // The link text first (cheap), then the inode: another server's memfd has the same name.
        const link = readlinkSync(path);
        if (!ids.some((id) => id.link === link)) continue;
        addDescriptor(ways, ids, n, link, statSync(path, { bigint: true }));
      } catch {
        // closed meanwhile
      }
    }
    try {
      for (const i of mappedIn(readFileSync(`/proc/${pid}/maps`, 'latin1'), ids))
        ways[i]?.push('a mapping');
    } catch {
      // another uid's, or gone
    }
    if (ways.some((w) => w.length > 0)) record(out, pid, uidOf(pid), ways);
  }
  return out;
}

/** Processes looked at together by holdersLater: the event loop runs between their reads. */
const LOOK_CHUNK = 8;
/** Descriptors of one process whose links are read together (a bound on reads in flight). */
const LOOK_FDS = 64;

/**
 * holdersNow without holding the event loop: every read of /proc is asynchronous (libuv's
 * threads), LOOK_CHUNK processes at a time, so other sessions are served between them.
 */
async function holdersLater(
  ids: readonly FileIdentity[],
  except: ReadonlySet<number>,
): Promise<MemoryHolder[][]> {
  const out: MemoryHolder[][] = ids.map(() => []);
  const lookAt = async (pid: number): Promise<void> => {
    const ways: Ways = ids.map(() => []);
    const names = await fsp.readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (let at = 0; at < names.length; at += LOOK_FDS)
      await Promise.all(
        names.slice(at, at + LOOK_FDS).map(async (n) => {
          const path = `/proc/${pid}/fd/${n}`;
          try {
            const link = await fsp.readlink(path);
            if (!ids.some((id) => id.link === link)) return;
            addDescriptor(ways, ids, n, link, await fsp.stat(path, { bigint: true }));
          } catch {
            // closed meanwhile
          }
        }),
      );
    // In /proc's order (by number), as holdersNow finds them, whatever order the reads ended in.
    for (const w of ways) w.sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)));
    const maps = await fsp.readFile(`/proc/${pid}/maps`, 'latin1').catch(() => '');
    for (const i of mappedIn(maps, ids)) ways[i]?.push('a mapping');
    if (!ways.some((w) => w.length > 0)) return;
    const uid = await fsp.stat(`/proc/${pid}`).then(
      (st) => st.uid,
      () => undefined,
    );
    record(out, pid, uid, ways);
  };
  const pids = pidsIn(await fsp.readdir('/proc'), except);
  for (let i = 0; i < pids.length; i += LOOK_CHUNK)
    await Promise.all(pids.slice(i, i + LOOK_CHUNK).map(lookAt));
  for (const list of out) list.sort((a, b) => a.pid - b.pid);
  return out;
}

/** The pids among /proc's entries, less `except`, in order. */
function pidsIn(entries: readonly string[], except: ReadonlySet<number>): number[] {
  return entries
    .filter((e) => /^[0-9]+$/.test(e))
    .map(Number)
    .filter((pid) => !except.has(pid))
    .sort((a, b) => a - b);
}

/** Descriptor `n` (link text `link`, stat `st`) is one of an id: "fd N" for each it is. */
function addDescriptor(
  ways: Ways,
  ids: readonly FileIdentity[],
  n: string,
  link: string,
  st: { readonly dev: bigint; readonly ino: bigint },
): void {
  ids.forEach((id, i) => {
    if (id.link === link && st.ino === id.ino && st.dev === id.dev) ways[i]?.push(`fd ${n}`);
  });
}

/** The effective uid of `pid` (the owner of /proc/PID); undefined once it is gone. */
export function uidOf(pid: number): number | undefined {
  try {
    return statSync(`/proc/${pid}`).uid;
  } catch {
    return undefined;
  }
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

/** A region whose memory others of the client's uid hold, let in; `unseen`: holders /proc hides. */
export interface ToleratedHolders {
  readonly region: number;
  /** Those /proc shows (the peer itself left out). */
  readonly holders: readonly MemoryHolder[];
  /**
   * Also held by processes this server cannot inspect (the lease sees them, /proc does not),
   * let in because the memory went to no uid but the peer's (GivenMemory.onlyTo).
   */
  readonly unseen: boolean;
}

/**
 * Refuses the open of `device` by `peerPid` while a process of another uid than `peerUid` (the
 * peer's, SO_PEERCRED; undefined: not known, so every holder counts as another's)
 * still holds memory a mapping of one of its regions reaches (device.mappedMemory()): a
 * previous client that kept its mapping or its descriptor, or one it handed them to. A holder
 * /proc does not show (another uid's while serve is not root, or a process that is not
 * dumpable: one that changed its uid, as QEMU's -run-with user= does, has a root-owned
 * /proc/PID/fd) is let in only when `given` says the memory went to no uid but the peer's.
 * `memories`: those of the device to look at (all by default).
 * @returns the holders let in (the peer's own uid's, the peer itself left out), for the log
 * @throws VfioError EBUSY naming the region and the holders (pid, uid and how), or saying the
 *   holder is a process this server cannot inspect.
 */
export function refuseWhileMemoryHeld(
  device: VfioPciDevice,
  peerPid: number,
  peerUid: number | undefined,
  given?: GivenMemory,
  memories: readonly RegionMemory[] = device.mappedMemory(),
): ToleratedHolders[] {
  const tolerated: ToleratedHolders[] = [];
  for (const { region, memory } of memories) {
    const fd = memory.fd;
    const leased = leaseSaysHeld(fd);
    if (leased === false) continue;
    const all = recentHolders(fd);
    const others = all.filter((h) => h.pid !== peerPid && h.uid !== peerUid);
    if (others.length > 0) {
      const who = others.map((h) => `pid ${h.pid} of uid ${h.uid} (${h.ways.join(', ')})`);
      throw new VfioError(
        'EBUSY',
        `region ${region} of ${device.name} is still held by ${who.join(', ')}; the device stays in use until that lets go of it`,
      );
    }
    const holders = all.filter((h) => h.pid !== peerPid);
    // What /proc shows is all only for root: a holder it hides (another uid's, or one not
    // dumpable) may be there besides those it shows. Nobody shown: the lease asks again (a
    // holder may have gone between the two looks; the peer's own description would count).
    const hidden =
      all.length === 0 ? leased !== undefined && leaseSaysHeld(fd) === true : !seesEveryProcess();
    if (hidden && given?.onlyTo(memory.name, peerUid) !== true) {
      const shown = all.map((h) => `pid ${h.pid} (${h.ways.join(', ')}), `).join('');
      throw new VfioError(
        'EBUSY',
        `region ${region} of ${device.name} is still held by ${shown}${all.length > 0 ? 'maybe also ' : ''}a process this server cannot inspect (another uid's, or one not dumpable), and it went to other uids than the client's (${peerUid ?? 'unknown'}) since it was last renewed; the device stays in use until that lets go of it`,
      );
    }
    const unseen = hidden && all.length === 0;
    if (holders.length > 0 || unseen) tolerated.push({ region, holders, unseen });
  }
  return tolerated;
}

/** Whether /proc shows this process every holder: root's (CAP_SYS_PTRACE) view is whole. */
function seesEveryProcess(): boolean {
  return process.geteuid?.() === 0;
}

/** How long a look through /proc answers for the same memory (ms). */
const HOLDERS_TTL_MS = 1000;
/** The last look at each file (by device and inode: several devices may share one). */
const looks = new Map<string, { readonly at: number; readonly holders: MemoryHolder[] }>();
/** Looks under way (holdersLater), by file: a second open of the same memory joins it. */
const pending = new Map<string, Promise<void>>();

function freshLook(key: string, now: number): MemoryHolder[] | undefined {
  const last = looks.get(key);
  return last !== undefined && now - last.at < HOLDERS_TTL_MS ? last.holders : undefined;
}

function remember(key: string, holders: MemoryHolder[]): void {
  const now = Date.now();
  for (const [k, v] of looks) if (now - v.at >= HOLDERS_TTL_MS) looks.delete(k); // renewed files
  looks.set(key, { at: now, holders });
}

/**
 * The holders of `fd` (every process but this one), from a look through /proc at most
 * HOLDERS_TTL_MS old: a look reads every process's fd table and maps (10-150 ms with ~100
 * processes on a loaded 2-vCPU VM), and a client that keeps the memory and connects again and
 * again would otherwise cost one per connect. Made here, synchronously, only when `lookAhead`
 * did not make it first (a memory made by the device's first open; a lease taken meanwhile).
 */
function recentHolders(fd: number): MemoryHolder[] {
  const id = identityOf(fd);
  const key = keyOf(id);
  const fresh = freshLook(key, Date.now());
  if (fresh !== undefined) return fresh;
  const [holders = []] = holdersNow([id], new Set([process.pid]));
  remember(key, holders);
  return holders;
}

/**
 * Before `device` is opened: the looks through /proc refuseWhileMemoryHeld will want (each
 * memory of it a lease says someone else holds, or where leases are off, with no look in the
 * last HOLDERS_TTL_MS), made without holding the event loop (holdersLater), one per file
 * however many opens ask. Resolves (never rejects) when they are in; undefined when none is due.
 */
export function lookAhead(device: VfioPciDevice): Promise<void> | undefined {
  const now = Date.now();
  const wanted: FileIdentity[] = [];
  const waits: Promise<void>[] = [];
  for (const { memory } of device.mappedMemory()) {
    if (leaseSaysHeld(memory.fd) === false) continue;
    const id = identityOf(memory.fd);
    const key = keyOf(id);
    if (freshLook(key, now) !== undefined || wanted.some((w) => keyOf(w) === key)) continue;
    const under = pending.get(key);
    if (under !== undefined) waits.push(under);
    else wanted.push(id);
  }
  if (wanted.length > 0) {
    const look = holdersLater(wanted, new Set([process.pid]))
      .then((found) => {
        wanted.forEach((id, i) => {
          remember(keyOf(id), found[i] ?? []);
        });
      })
      .catch(() => {
        // /proc unreadable: refuseWhileMemoryHeld looks again itself
      })
      .finally(() => {
        for (const id of wanted) pending.delete(keyOf(id));
      });
    for (const id of wanted) pending.set(keyOf(id), look);
    waits.push(look);
  }
  return waits.length > 0 ? Promise.all(waits).then(() => undefined) : undefined;
}

/** A uid not known: the holder is gone, or the memory came from a state directory. */
const UNKNOWN_UID = -1;

/**
 * GivenMemory as machine.state keeps it (state-dir), so that a restart knows the uids each
 * memory went to. `version` 1; a record of another version counts as absent.
 */
export interface GivenRecord {
  readonly version: 1;
  /** Per memory name (SharedMemory.name), the uids it went to since it was last renewed. */
  readonly uids: Readonly<Record<string, readonly number[]>>;
  /** Memories that went to uids not known (clients of a server that kept no record). */
  readonly unknown: readonly string[];
  /** Whether a memory named in neither went to uids not known (a record begun on such a state). */
  readonly othersUnknown: boolean;
}

/** The version of GivenRecord this server writes and reads. */
export const GIVEN_RECORD_VERSION = 1;

/**
 * The uids each memory of the devices was handed to (by a session's region grant) since it was
 * last renewed, by memory name: one per serve process, shared by its servers, as memory can be
 * shared by devices (an ATSD page by address: the 5.7+ fallback to `ibm,mmio-atsd[0]` gives
 * several bridges one page). Pages can be held with no open file description (io_uring
 * registered buffers over a mapping, pages spliced into a pipe), which neither the lease nor
 * /proc sees; so before a client of another uid opens a device, each of its memories nobody
 * holds a file of is renewed (SharedMemory.renew: a copy under the same descriptors), and the
 * old pages stay with whoever pinned them. A restored state directory without a record keeps
 * no uids: its memory counts as handed to an unknown one, so its first client gets it renewed.
 */
export class GivenMemory {
  readonly #uids = new Map<string, Set<number>>();
  /** A memory not in #uids went to uids not known (a state directory without a record). */
  #othersUnknown: boolean;
  readonly #onChange: (() => boolean | undefined) | undefined;
  /** renewAhead's copies under way, by memory name: a second open of the same memory joins. */
  readonly #renewing = new Map<string, Promise<number | undefined>>();

  /**
   * `record`: what machine.state kept (a restart); `othersUnknown` without one: the memory
   * went to uids not known here (a restored state directory of an older server). `onChange`
   * runs (synchronously) whenever what `record()` returns changed, before the grant is sent;
   * false from it says the record could not be kept (machine.state not written), and a grant
   * to a new uid is then withdrawn (`given` throws).
   */
  constructor(
    options: {
      readonly record?: GivenRecord | undefined;
      readonly othersUnknown?: boolean;
      readonly onChange?: () => boolean | undefined;
    } = {},
  ) {
    const { record } = options;
    this.#othersUnknown = record?.othersUnknown ?? options.othersUnknown ?? false;
    this.#onChange = options.onChange;
    for (const [name, uids] of Object.entries(record?.uids ?? {}))
      this.#uids.set(name, new Set(uids));
    for (const name of record?.unknown ?? []) this.#set(name).add(UNKNOWN_UID);
  }

  #set(name: string): Set<number> {
    let set = this.#uids.get(name);
    if (set === undefined) {
      set = new Set(this.#othersUnknown ? [UNKNOWN_UID] : []);
      this.#uids.set(name, set);
    }
    return set;
  }

  /**
   * A session hands `memory` (by name) to a peer of `uid` (undefined: not known).
   * @throws VfioError EIO when the record of a new uid could not be kept (`onChange` said so):
   *   a restart would not know to renew the memory for another uid, so it is not handed out.
   */
  given(memory: string, uid: number | undefined): void {
    const set = this.#set(memory);
    const u = uid ?? UNKNOWN_UID;
    if (set.has(u)) return;
    set.add(u);
    if (this.#onChange?.() !== false) return;
    set.delete(u);
    throw new VfioError(
      'EIO',
      `memory ${memory} cannot go to ${uid === undefined ? 'a uid not known' : `uid ${uid}`}: the state directory could not record it`,
    );
  }

  /**
   * Whether `memory` went to no uid but `uid` since it was last renewed (none not known): a
   * holder of it this server cannot see is then of `uid`'s trust domain, or one that uid
   * handed it to.
   */
  onlyTo(memory: string, uid: number | undefined): boolean {
    if (uid === undefined) return false;
    for (const u of this.#set(memory)) if (u !== uid) return false;
    return true;
  }

  /** What machine.state keeps (see GivenRecord). */
  record(): GivenRecord {
    const uids: Record<string, number[]> = {};
    const unknown: string[] = [];
    for (const [name, set] of [...this.#uids].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      uids[name] = [...set].filter((u) => u !== UNKNOWN_UID).sort((a, b) => a - b);
      if (set.has(UNKNOWN_UID)) unknown.push(name);
    }
    return { version: GIVEN_RECORD_VERSION, uids, unknown, othersUnknown: this.#othersUnknown };
  }

  /**
   * Before a peer of `peerUid` opens `device`: each of its memories that went to another uid
   * since it was last renewed, and that no other open file description holds, is renewed (one
   * held by the client's own uid, let in, is left: renewing it would cut that holder off).
   * `memories`: those of the device to look at (all by default).
   * @returns the regions renewed and those left, and the other uids, for the log; all empty
   *   when nothing was due.
   * @throws VfioError ENOMEM when a copy cannot be made (out of memory or descriptors).
   */
  renewFor(
    device: VfioPciDevice,
    peerUid: number | undefined,
    memories: readonly RegionMemory[] = device.mappedMemory(),
  ): {
    readonly renewed: readonly number[];
    readonly left: readonly number[];
    readonly uids: readonly number[];
  } {
    const renewed: number[] = [];
    const left: number[] = [];
    const others = new Set<number>();
    let changed = false;
    for (const { region, memory } of memories) {
      const set = this.#set(memory.name);
      const due = [...set].filter((u) => u !== peerUid);
      if (due.length === 0) continue;
      for (const u of due) others.add(u);
      if (memory.renew === undefined || leaseSaysHeld(memory.fd) === true) left.push(region);
      else {
        memory.renew();
        renewed.push(region);
        set.clear();
        changed = true;
      }
    }
    if (changed) this.#onChange?.();
    return { renewed, left, uids: [...others].sort((a, b) => a - b) };
  }

  /**
   * Before a peer of `peerUid` opens `device` (its VERSION waits): renewFor's copies of its
   * memories of RENEW_LATER_MIN_BYTES or more, made off the event loop (renewLater) while
   * other sessions are served; renewFor at the open then renews only the small ones (an ATSD
   * page, which several bridges may share). The rule this relies on: such memory (GPU RAM,
   * a BAR) is reached only through its own device, which has no session while one opens it
   * (one session per device), and a closed device makes no DMA; so nothing of this server
   * writes it during the copy. It is enforced, not trusted: a memory written meanwhile (its
   * commit says so), held by another description by then, or a device open, keeps its old
   * file and renewFor copies it synchronously at the open as before.
   * Resolves (never rejects) once the copies are in, to the regions renewed and the other
   * uids (for the log); undefined when none is due.
   */
  renewAhead(
    device: VfioPciDevice,
    peerUid: number | undefined,
  ):
    | Promise<{ readonly renewed: readonly number[]; readonly uids: readonly number[] }>
    | undefined {
    if (device.isOpen) return undefined;
    const copies: Promise<number | undefined>[] = [];
    const others = new Set<number>();
    for (const { region, memory } of device.mappedMemory()) {
      if (memory.renewLater === undefined || memory.size < RENEW_LATER_MIN_BYTES) continue;
      const set = this.#set(memory.name);
      const due = [...set].filter((u) => u !== peerUid);
      if (due.length === 0 || leaseSaysHeld(memory.fd) === true) continue;
      const under = this.#renewing.get(memory.name);
      if (under !== undefined) {
        copies.push(under.then(() => undefined));
        continue;
      }
      const copy = memory
        .renewLater()
        .then((pending) => {
          if (pending === null) return undefined;
          // Held since (a descriptor handed out after all), or the device opened: renewFor decides.
          if (device.isOpen || leaseSaysHeld(memory.fd) === true) {
            pending.abandon();
            return undefined;
          }
          if (!pending.commit()) return undefined;
          for (const u of due) others.add(u);
          set.clear();
          this.#onChange?.();
          return region;
        })
        .catch(() => undefined) // renewFor at the open tries again and says why
        .finally(() => this.#renewing.delete(memory.name));
      this.#renewing.set(memory.name, copy);
      copies.push(copy);
    }
    if (copies.length === 0) return undefined;
    return Promise.all(copies).then((regions) => ({
      renewed: regions.filter((r): r is number => r !== undefined),
      uids: [...others].sort((a, b) => a - b),
    }));
  }
}

/**
 * Memory at least this large is renewed off the event loop (GivenMemory.renewAhead): GPU RAM,
 * large BARs. Smaller memory (an ATSD page, small BARs) is copied at the open, synchronously.
 */
export const RENEW_LATER_MIN_BYTES = 1n << 26n;
