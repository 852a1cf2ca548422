/**
 * serve's state directory (`serve --state-dir DIR`): everything a device is, kept so that a
 * server killed at any instant (kill -9 included) and started again on DIR serves every device
 * as it was. Layout:
 *
 *   DIR/lock                       flock'd by the one server using DIR; holds its pid
 *   DIR/machine.state              the tree's digest, every memory file and its size, KVM's
 *                                  LPID allocator, the NPU firmware tables, the partitions,
 *                                  the uids each memory was handed to (`given`, optional)
 *   DIR/devices/<DDDD:BB:DD.F>.state  config space and BAR register pages of one function;
 *                                  a migration stream load under way (`migrationLoad`, optional)
 *   DIR/memory/<name>.mem          GPU RAM, BAR memory, ATSD pages: sparse files, mapped by
 *                                  clients (MAP_SHARED) and read/written by us with pread/pwrite
 *
 * Memory is never copied to persist it: it lives in the files (vfio/file-memory.ts), so every
 * acknowledged write is in the page cache when the process dies. The `.state` files are written
 * atomically (state-file.ts) on every change that matters: a config-space or register-page
 * write, a reset, a partition opening or releasing a device (LPID, firmware tables), a new
 * memory file. With `sync`, each write is also flushed to disk (fdatasync, fsync of the file and
 * the directory), and the memory files every second (writes through a client's mapping reach us
 * with no message). Every second, too, a memory file a client cut with ftruncate is grown back.
 *
 * At start the whole directory is checked before any socket listens: each `.state` file
 * (format, checksum, size), the tree it was written for, and every listed memory file (present,
 * regular, of its size, and the size its device wants: checkWantedSizes); anything wrong is one StateDirError naming the file. What clients held
 * (DMA maps, eventfds, LPIDs and the GPUs' firmware mappings) is released as on a disconnect:
 * each recorded partition's GPUs are unmapped (pnv_npu2_unmap_lpar_dev) and its LPID freed.
 * machine.state says so once serve's sockets accept: until then the one on disk restarts to the
 * same machine, so a restart does not spend its time to accepting on rewriting it.
 */
import { lstatSync, readdirSync, rmSync } from 'node:fs';
import { messageOf } from '../errors/index.ts';
import type { Machine, PartitionRegistry, PartitionView } from '../machine/index.ts';
import { sha256Hex } from '../native/index.ts';
import { pnvNpu2UnmapLparDev } from '../nvlink2/index.ts';
import type { Npu2Snapshot } from '../platform/index.ts';
import { type JsonObject, JsonReader } from '../text/index.ts';
import {
  type DeviceStateBytes,
  type FileMemory,
  type MemoryBudget,
  openFileMemory,
  type SharedMemoryFactory,
  type VfioPciDevice,
} from '../vfio/index.ts';
import { GIVEN_RECORD_VERSION, type GivenRecord } from '../vfio-user/index.ts';
import { lockStateDir, type StateDirLock } from './lock.ts';
import { makeDirectories } from './make-directories.ts';
import { removeLeftTemporaries } from './replace-file.ts';
import { readStateFile, StateDirError, writeStateFile } from './state-file.ts';

/** Options of `openStateDir`: flush to disk on each write, where to log one-line notes. */
export interface StateDirOptions {
  /** serve --sync: fdatasync/fsync each acknowledged write. */
  readonly sync?: boolean;
  readonly log?: (line: string) => void;
}

interface MachineBody {
  readonly platform: string;
  readonly memories: Record<string, string>;
  readonly lpids: number[];
  /** firmwareToJson of each NPU's tables. */
  readonly firmware: unknown[];
  readonly partitions: PartitionView[];
  /** The uids each memory went to (GivenMemory); absent in a state of an older server. */
  readonly given?: GivenRecord;
}

/** A machine body as read back: the NPUs' tables as the firmware model restores them. */
type LoadedMachine = Omit<MachineBody, 'firmware'> & { readonly firmware: Npu2Snapshot[] };

interface DeviceBody {
  readonly config: string;
  readonly registers: (string | null)[];
  /**
   * The migration state of a stream load under way (DeviceStateBytes.migrationLoad); absent
   * when none is, and in a state of an older server (which ignores it: no format change).
   */
  readonly migrationLoad?: string;
}

const MACHINE_KIND = 'machine';
const DEVICE_KIND = 'device';

/** The file name of the memory `name` ("vfio-nvlink2:gpu-ram:0004:04:00.0" → "gpu-ram_0004_04_00.0.mem"). */
export function memoryFileName(name: string): string {
  return `${name.replace(/^vfio-nvlink2:/, '').replace(/[^A-Za-z0-9.-]/g, '_')}.mem`;
}

/** The sha256 of a device tree blob: which platform a state directory was written for. */
export function platformDigest(dtb: Uint8Array): string {
  return sha256Hex(dtb);
}

function fail(path: string, what: string): never {
  throw new StateDirError(`${path}: ${what}`);
}

/**
 * A directory without machine.state is new only when it holds nothing of ours: device states
 * or memory files (GPU RAM) without it are a server's state that lost its machine.state, and
 * starting anew would wipe them.
 */
function refuseOrphans(dir: string, machinePath: string): void {
  const found = ['devices', 'memory'].flatMap((sub) =>
    readdirSync(`${dir}/${sub}`).map((name) => `${sub}/${name}`),
  );
  if (found.length > 0)
    fail(
      machinePath,
      `missing, but ${dir} holds ${found.length} device state or memory file(s) (${found[0]}${found.length > 1 ? ', …' : ''}); restore machine.state, or move them away to start anew (nothing was touched)`,
    );
}

/** A renew's copy (vfio/file-memory.ts renew), left by a server killed while it copied. */
const RENEW_COPY = /\.mem\.renew-[0-9a-f]+$/;

/**
 * Removes what a server killed in the middle of a renew left in DIR/memory: the copy it had
 * not yet renamed over the memory file (the file itself is whole: the rename never happened).
 * Under the lock, so no live renew is touched.
 */
function removeRenewCopies(dir: string, log: ((line: string) => void) | undefined): void {
  for (const name of readdirSync(`${dir}/memory`)) {
    if (!RENEW_COPY.test(name)) continue;
    rmSync(`${dir}/memory/${name}`, { force: true });
    log?.(`${dir}/memory/${name}: removed (a copy an interrupted renew left)`);
  }
}

/**
 * Removes the temporaries of machine.state and device .state files that a server killed while
 * writing one left (the file they were to replace is whole: the rename never happened; kept,
 * they piled up with every such kill). Under the lock, so no live write is touched.
 */
function removeStateTemporaries(dir: string, log: ((line: string) => void) | undefined): void {
  for (const sub of [dir, `${dir}/devices`]) {
    for (const path of removeLeftTemporaries(sub, (file) => file.endsWith('.state')))
      log?.(`${path}: removed (a state file's temporary a killed server left)`);
  }
}

/** Most items of a list in a state body (LPIDs, partitions, NPUs, table entries, registers). */
const MAX_ITEMS = 4096;

function reader(path: string): JsonReader {
  return new JsonReader(path, (message) => new StateDirError(message));
}

/** An NPU's firmware tables as machine.state holds them (phbId a decimal string, no ATSD MMIO). */
function firmwareFromJson(r: JsonReader, w: string, raw: unknown): Npu2Snapshot {
  const o = r.object(w, raw);
  const list = <T>(m: string, item: (at: string, e: JsonObject) => T): T[] =>
    r
      .array(`${w}.${m}`, o[m], MAX_ITEMS)
      .map((e, i) => item(`${w}.${m}[${i}]`, r.object(`${w}.${m}[${i}]`, e)));
  const phbId = r.string(`${w}.phbId`, o.phbId);
  if (!/^\d{1,20}$/.test(phbId)) throw r.wrong(`${w}.phbId`, 'a decimal number', phbId);
  return {
    phbId: BigInt(phbId),
    domain: r.count(`${w}.domain`, o.domain),
    path: r.string(`${w}.path`, o.path),
    bdfMap: list('bdfMap', (at, e) => ({
      index: r.count(`${at}.index`, e.index),
      bdf: r.count(`${at}.bdf`, e.bdf),
      lpid: r.count(`${at}.lpid`, e.lpid),
      valid: r.boolean(`${at}.valid`, e.valid),
      unfilt: r.boolean(`${at}.unfilt`, e.unfilt),
      xlat: r.count(`${at}.xlat`, e.xlat),
      stack: r.count(`${at}.stack`, e.stack),
      brick: r.count(`${at}.brick`, e.brick),
      lparShort: r.count(`${at}.lparShort`, e.lparShort),
    })),
    pidMap: list('pidMap', (at, e) => {
      const msr = r.object(`${at}.msr`, e.msr);
      return {
        index: r.count(`${at}.index`, e.index),
        lparShort: r.count(`${at}.lparShort`, e.lparShort),
        msr: {
          dr: r.boolean(`${at}.msr.dr`, msr.dr),
          hv: r.boolean(`${at}.msr.hv`, msr.hv),
          pr: r.boolean(`${at}.msr.pr`, msr.pr),
          sf: r.boolean(`${at}.msr.sf`, msr.sf),
        },
        refs: r.count(`${at}.refs`, e.refs),
      };
    }),
    atsd: list('atsd', (at, e) => ({
      index: r.count(`${at}.index`, e.index),
      address: undefined,
      lpid: r.count(`${at}.lpid`, e.lpid),
      msrHv: r.boolean(`${at}.msrHv`, e.msrHv),
    })),
  };
}

/**
 * machine.state's `given` member: undefined when absent (a state of an older server) or of
 * another version (either way its memory counts as given to uids not known).
 */
function givenFromJson(r: JsonReader, raw: unknown): GivenRecord | undefined {
  if (raw === undefined) return undefined;
  const o = r.object('given', raw);
  if (r.count('given.version', o.version) !== GIVEN_RECORD_VERSION) return undefined;
  const uids: Record<string, number[]> = {};
  for (const [name, list] of Object.entries(r.object('given.uids', o.uids)))
    uids[name] = r
      .array(`given.uids.${name}`, list, MAX_ITEMS)
      .map((u, i) => r.count(`given.uids.${name}[${i}]`, u));
  return {
    version: GIVEN_RECORD_VERSION,
    uids,
    unknown: r
      .array('given.unknown', o.unknown, MAX_ITEMS)
      .map((n, i) => r.string(`given.unknown[${i}]`, n)),
    othersUnknown: r.boolean('given.othersUnknown', o.othersUnknown),
  };
}

/**
 * The machine body read from `path`, checked member by member.
 * @throws StateDirError naming `path` and the member missing or of another type.
 */
function machineBody(path: string, raw: unknown): LoadedMachine {
  const r = reader(path);
  const b = r.object('the body', raw);
  const memories: Record<string, string> = {};
  for (const [name, size] of Object.entries(r.object('memories', b.memories))) {
    if (typeof size !== 'string' || !/^\d{1,20}$/.test(size))
      fail(path, `memory ${name}: size '${String(size)}' is not a byte count`);
    memories[name] = size;
  }
  return {
    platform: r.string('platform', b.platform),
    memories,
    lpids: r.array('lpids', b.lpids, MAX_ITEMS).map((l, i) => r.count(`lpids[${i}]`, l)),
    firmware: r
      .array('firmware', b.firmware, MAX_ITEMS)
      .map((n, i) => firmwareFromJson(r, `firmware[${i}]`, n)),
    partitions: r.array('partitions', b.partitions, MAX_ITEMS).map((x, i) => {
      const p = r.object(`partitions[${i}]`, x);
      const devices = r.array(`partitions[${i}].devices`, p.devices, MAX_ITEMS);
      return {
        pid: r.count(`partitions[${i}].pid`, p.pid),
        lpid: r.count(`partitions[${i}].lpid`, p.lpid),
        devices: devices.map((d, j) => r.string(`partitions[${i}].devices[${j}]`, d)),
      };
    }),
    ...(b.given === undefined ? {} : { given: givenFromJson(r, b.given) }),
  };
}

/**
 * The device body read from `path`, checked member by member.
 * @throws StateDirError naming `path` and the member missing or of another type.
 */
function deviceBody(path: string, raw: unknown): DeviceBody {
  const r = reader(path);
  const b = r.object('the body', raw);
  return {
    config: r.string('config', b.config),
    registers: r
      .array('registers', b.registers, MAX_ITEMS)
      .map((x, i) => (x === null ? null : r.string(`registers[${i}]`, x))),
    ...(b.migrationLoad === undefined ? {} : { migrationLoad: migrationLoad(r, b.migrationLoad) }),
  };
}

/** A device body's `migrationLoad`: the state a load was in (DeviceMigration). */
function migrationLoad(r: JsonReader, raw: unknown): string {
  const state = r.string('migrationLoad', raw);
  if (state !== 'RESUMING' && state !== 'ERROR')
    throw r.wrong('migrationLoad', 'RESUMING or ERROR', state);
  return state;
}

function firmwareToJson(s: Npu2Snapshot): unknown {
  return { ...s, phbId: s.phbId.toString(), atsd: s.atsd.map(({ address: _a, ...r }) => r) };
}

function encodeDevice(state: DeviceStateBytes): DeviceBody {
  const b64 = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.length).toString('base64');
  return {
    config: b64(state.config),
    registers: state.registers.map((r) => (r ? b64(r) : null)),
    ...(state.migrationLoad === undefined ? {} : { migrationLoad: state.migrationLoad }),
  };
}

function decodeDevice(body: DeviceBody): DeviceStateBytes {
  const bytes = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));
  return {
    config: bytes(body.config),
    registers: body.registers.map((r) => (r === null ? undefined : bytes(r))),
    ...(body.migrationLoad === undefined ? {} : { migrationLoad: body.migrationLoad }),
  };
}

/**
 * An open, locked, checked state directory (see the module header): the memory factory to
 * build the machine with, then `attach` to restore and keep the machine's state.
 */
export class StateDir {
  readonly #memories = new Map<string, bigint>();
  readonly #files: FileMemory[] = [];
  readonly #devices = new Map<string, DeviceStateBytes>();
  readonly #saved = new Map<string, string>();
  #machine: Machine | undefined;
  #partitions: PartitionRegistry | undefined;
  /** What machine.state keeps of GivenMemory (`keepGiven`). */
  #given: (() => GivenRecord) | undefined;
  #flusher: NodeJS.Timeout | undefined;

  private constructor(
    readonly dir: string,
    private readonly lock: StateDirLock,
    private readonly options: StateDirOptions,
    /** platformDigest of the tree served. */
    private readonly platform: string,
    /** What the directory held at start; undefined for a new one. */
    private readonly loaded: LoadedMachine | undefined,
  ) {
    for (const [name, size] of Object.entries(loaded?.memories ?? {}))
      this.#memories.set(name, BigInt(size));
  }

  /** Whether the directory held a server's state when opened (a restart). */
  get restarted(): boolean {
    return this.loaded !== undefined;
  }

  /**
   * Creates DIR if needed, takes its lock and checks everything in it against the tree
   * `dtb` (see the module header).
   * @throws StateDirError naming the file or directory at fault (one line).
   */
  static open(dir: string, dtb: Uint8Array, options: StateDirOptions = {}): StateDir {
    for (const d of [dir, `${dir}/devices`, `${dir}/memory`]) {
      try {
        makeDirectories(d, 0o700);
      } catch (err) {
        fail(d, `cannot create (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      }
    }
    const lock = lockStateDir(dir);
    try {
      removeRenewCopies(dir, options.log);
      removeStateTemporaries(dir, options.log);
      const path = `${dir}/machine.state`;
      const raw = readStateFile(path, MACHINE_KIND);
      if (raw === undefined) refuseOrphans(dir, path);
      const loaded = raw === undefined ? undefined : machineBody(path, raw);
      const platform = platformDigest(dtb);
      if (loaded && loaded.platform !== platform)
        fail(path, 'written for another device tree (its sha256 differs from the one served)');
      const stateDir = new StateDir(dir, lock, options, platform, loaded);
      stateDir.#checkMemories();
      stateDir.#readDevices();
      return stateDir;
    } catch (err) {
      lock.release();
      throw err;
    }
  }

  #checkMemories(): void {
    for (const [name, size] of this.#memories) {
      const path = `${this.dir}/memory/${memoryFileName(name)}`;
      let st: ReturnType<typeof lstatSync>;
      try {
        st = lstatSync(path, { bigint: true });
      } catch {
        fail(path, `missing (memory ${name} of ${size} bytes)`);
      }
      if (!st.isFile()) fail(path, 'not a regular file');
      if (st.size < size) fail(path, `truncated: ${st.size} of ${size} bytes`);
      if (st.size !== size) fail(path, `wrong size: ${st.size} bytes, expected ${size}`);
    }
  }

  /**
   * The uids each memory went to, as the last server kept them (GivenMemory); undefined for a
   * new directory, or one of a server that kept no record (its memory went to uids not known).
   */
  get givenBefore(): GivenRecord | undefined {
    return this.loaded?.given;
  }

  /** machine.state keeps `record()` from now on (GivenMemory's; see givenBefore). */
  keepGiven(record: () => GivenRecord): void {
    this.#given = record;
  }

  /** The names of the memories the directory lists (machine.state's, and those made since). */
  listedMemories(): string[] {
    return [...this.#memories.keys()];
  }

  /**
   * Every listed memory against the size the device makes it with (`wanted`, by memory name:
   * see serve's dry run), so that a listed size the device does not want is refused at start
   * rather than at a client's first open.
   * @throws StateDirError naming the memory file.
   */
  checkWantedSizes(wanted: ReadonlyMap<string, bigint>): void {
    for (const [name, size] of this.#memories) {
      const want = wanted.get(name);
      if (want !== undefined && want !== size)
        fail(
          `${this.dir}/memory/${memoryFileName(name)}`,
          `memory ${name} is ${size} bytes in machine.state, the device wants ${want}`,
        );
    }
  }

  #readDevices(): void {
    const dir = `${this.dir}/devices`;
    for (const name of readdirSync(dir).sort()) {
      if (!name.endsWith('.state')) continue;
      const path = `${dir}/${name}`;
      const body = deviceBody(path, readStateFile(path, DEVICE_KIND));
      this.#devices.set(name.slice(0, -'.state'.length), decodeDevice(body));
    }
  }

  /**
   * Device memory in DIR/memory, counted against `budget`: a memory the directory lists comes
   * back with its contents; a new one starts as holes and is listed at once.
   */
  memoryFactory(budget: MemoryBudget): SharedMemoryFactory {
    const make = (name: string, size: bigint) => {
      const path = `${this.dir}/memory/${memoryFileName(name)}`;
      const known = this.#memories.get(name);
      if (known !== undefined && known !== size)
        fail(path, `memory ${name} is ${known} bytes here, the device wants ${size}`);
      const memory = openFileMemory(path, name, size, {
        budget,
        fresh: known === undefined,
        ...(this.options.sync ? { sync: true } : {}),
        onRegrown: (p, found) =>
          this.options.log?.(`${p}: a client cut it to ${found} bytes; grown back to ${size}`),
      });
      this.#files.push(memory);
      if (known === undefined) {
        this.#memories.set(name, size);
        this.saveMachine();
      }
      return memory;
    };
    return Object.assign(make, { kept: (name: string) => this.#memories.has(name) });
  }

  /**
   * Restores `machine` from the directory (config space and register pages of every device,
   * LPIDs, firmware tables), releases what the last server's clients held, and from now on
   * writes each change. Call once, before any socket listens. machine.state is not written
   * here: the one on disk restarts to this same machine (the release is done again from it, as
   * a restart after a kill -9 in between would), so the caller writes it (`saveMachine`) once
   * its sockets accept; a change before then writes it as any change does.
   * @returns one line for serve's log: new, or restored and what was released
   * @throws StateDirError naming the file whose contents do not fit the machine.
   */
  attach(machine: Machine, partitions: PartitionRegistry): string {
    this.#machine = machine;
    this.#partitions = partitions;
    for (const fn of machine.servedFunctions()) {
      const device = machine.device(fn.name);
      const saved = this.#devices.get(fn.name);
      if (saved) {
        try {
          device.restoreState(saved);
        } catch (err) {
          fail(`${this.dir}/devices/${fn.name}.state`, messageOf(err));
        }
      }
      // No copy of the state as it starts (18 encodings before any socket listens): a device's
      // first change writes its file, later ones are compared with the last written.
      device.onStateChange(() => this.#saveDevice(device));
      if (saved?.migrationLoad !== undefined) {
        // Killed mid-load: the memory is partly the stream's (session.ts says so of a live
        // cut). Said once: the file is written without the load, the device runs.
        this.options.log?.(
          `${fn.name}: migration stream cut in ${saved.migrationLoad} by the server's end (restarted from ${this.dir}): its memory is partly the stream's; migration state RUNNING`,
        );
        this.#saveDevice(device);
      }
    }
    if (this.loaded) this.#restoreMachine(machine, this.loaded);
    this.#flusher = setInterval(() => this.#watch(), WATCH_MS);
    this.#flusher.unref();
    const sync = this.options.sync ? ', --sync' : '';
    if (!this.loaded) return `state directory ${this.dir}: new${sync}`;
    const held = this.loaded.partitions.map((p) => `pid ${p.pid} LPID ${p.lpid}`);
    return `state directory ${this.dir}: restored ${this.#devices.size} device state(s), ${this.#memories.size} memory file(s)${sync}; released what the last server's clients held${held.length ? ` (${held.join(', ')})` : ' (none)'}`;
  }

  #restoreMachine(machine: Machine, body: LoadedMachine): void {
    const path = `${this.dir}/machine.state`;
    try {
      machine.ctx.firmware.restore(body.firmware);
    } catch (err) {
      fail(path, `NPU firmware tables do not fit the tree: ${messageOf(err)}`);
    }
    machine.lpids.restore(body.lpids);
    // The last server's clients are gone: release what they held, as their disconnect would
    // (session.ts #release: the device's close unmaps its GPU, the partition frees its LPID).
    for (const p of body.partitions) {
      for (const address of p.devices) {
        const fn = machine.host.functionByName(address);
        if (fn?.role === 'gpu') pnvNpu2UnmapLparDev(machine.ctx, fn);
      }
      machine.lpids.free(p.lpid);
    }
  }

  /**
   * Writes the machine's state (LPIDs, firmware tables, partitions, memory files); a failure
   * (disk full) is logged, never thrown: the device goes on, as it would without --state-dir.
   * @returns false when the write failed; true when written, or before attach (nothing yet).
   */
  saveMachine(): boolean {
    const machine = this.#machine;
    if (!machine) return true; // before attach: the caller writes it once attached
    const body: MachineBody = {
      platform: this.platform,
      memories: Object.fromEntries([...this.#memories].map(([n, s]) => [n, s.toString()])),
      lpids: machine.lpids.inUse(),
      firmware: machine.firmwareSnapshot().map(firmwareToJson),
      partitions: this.#partitions?.list() ?? [],
      ...(this.#given ? { given: this.#given() } : {}),
    };
    return this.#write(`${this.dir}/machine.state`, MACHINE_KIND, body);
  }

  #write(path: string, kind: string, body: unknown): boolean {
    try {
      writeStateFile(path, kind, body, this.options.sync ?? false);
      return true;
    } catch (err) {
      this.options.log?.(`cannot write ${path}: ${messageOf(err)}`);
      return false;
    }
  }

  #saveDevice(device: VfioPciDevice): void {
    const body = encodeDevice(device.snapshotState());
    const text = JSON.stringify(body);
    if (this.#saved.get(device.name) === text) return;
    if (this.#write(`${this.dir}/devices/${device.name}.state`, DEVICE_KIND, body))
      this.#saved.set(device.name, text);
  }

  /** fdatasync of every memory file (writes through clients' mappings included). */
  flush(): void {
    for (const f of this.#files) f.sync();
  }

  /** Every second: files a client cut are grown back; with --sync, every file flushed. */
  #watch(): void {
    try {
      for (const f of this.#files) f.checkSize();
      if (this.options.sync) this.flush();
    } catch (err) {
      this.options.log?.(`state directory ${this.dir}: ${messageOf(err)}`);
    }
  }

  /** Stops the flusher and gives up the lock (memory files are closed with the machine). */
  close(): void {
    if (this.#flusher) clearInterval(this.#flusher);
    this.lock.release();
  }
}

/**
 * How often memory files are checked for a client's cut and, with --sync, flushed (what clients
 * store through their mappings never reaches us as a message) (ms).
 */
const WATCH_MS = 1000;
