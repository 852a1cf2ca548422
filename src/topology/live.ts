/**
 * What a running `serve --socket-dir DIR` shows of itself: DIR/platform.dtb (the tree it
 * serves), DIR/devices.json (functions, sockets, verdicts) and DIR/state.json (client
 * partitions and LPIDs, the NPUs' ATSD register bindings, touched device memory). Read once,
 * checked by serve-dir's validators: a missing or malformed file is one clear error naming it
 * (and the member).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CodedError } from '../errors/index.ts';
import { type Fdt, parseFdt } from '../fdt/index.ts';
import {
  type DevicesListEntry,
  readDevicesList,
  readServeState,
  type ServeState,
} from '../serve-dir/index.ts';
import { VfioError } from '../vfio/index.ts';

/** A socket directory whose serve state cannot be read (code SOCKET_DIR): names the file and what is wrong. */
export class LiveStateError extends CodedError<'SOCKET_DIR'> {
  override readonly name: string = 'LiveStateError';
  constructor(message: string) {
    super('SOCKET_DIR', message);
  }
}

/** A function in devices.json: its socket path and probe result, if given. */
export interface LiveDevice {
  readonly socket: string | undefined;
  readonly result: string | undefined;
}

/** What readLive found in a socket directory: devices, client partitions and LPIDs, ATSD bindings, populated bytes, memory budget and touched bytes. */
export interface LiveState {
  readonly dir: string;
  readonly devices: ReadonlyMap<string, LiveDevice>;
  readonly partitions: readonly {
    readonly pid: number;
    readonly lpid: number;
    readonly devices: readonly string[];
  }[];
  /** NPU PHB node path → LPID bound to each ATSD register (skiboot NPU2_XTS_MMIO_ATSDn_LPARID). */
  readonly atsd: ReadonlyMap<string, readonly { readonly index: number; readonly lpid: number }[]>;
  /** GPU address → populated bytes of its GPU RAM and BARs. */
  readonly memory: ReadonlyMap<string, { readonly gpuRam: number; readonly bars: number }>;
  readonly budget: number | null;
  readonly touched: number;
}

/** The LPID bound to ATSD register `index` of the NPU at `npuPath`, if serve reported it. */
export function atsdLpid(live: LiveState, npuPath: string, index: number): number | undefined {
  return live.atsd.get(npuPath)?.find((r) => r.index === index)?.lpid;
}

/**
 * One file of `dir` read and checked by `read` (serve-dir's validators): a file that cannot be
 * read says serve may not be running; a malformed one is named with its member.
 */
function readChecked<T>(path: string, read: (path: string) => T): T {
  try {
    return read(path);
  } catch (e) {
    if (e instanceof VfioError) throw new LiveStateError(e.reason);
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new LiveStateError(`cannot read ${path} (${code}): is \`serve --socket-dir\` running?`);
  }
}

function devicesOf(entries: readonly DevicesListEntry[]): Map<string, LiveDevice> {
  return new Map(entries.map((e) => [e.address, { socket: e.socket, result: e.result }]));
}

function stateOf(state: ServeState): Omit<LiveState, 'dir' | 'devices'> {
  const atsd = new Map(
    state.firmware.map((npu) => [npu.path, npu.atsd.map(({ index, lpid }) => ({ index, lpid }))]),
  );
  const memory = new Map(
    state.memory.gpus.map((g) => [g.address, { gpuRam: g.gpuRam, bars: g.bars }]),
  );
  const { partitions } = state;
  return { partitions, atsd, memory, budget: state.memory.budget, touched: state.memory.touched };
}

/**
 * The tree and state of the serve running in `dir`.
 * @throws LiveStateError naming the file (and field) that is missing or malformed.
 */
export function readLive(dir: string): { fdt: Fdt; live: LiveState } {
  const dtb = join(dir, 'platform.dtb');
  let blob: Uint8Array;
  try {
    blob = readFileSync(dtb);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new LiveStateError(
      `cannot read ${dtb} (${code}): is \`serve --socket-dir ${dir}\` running?`,
    );
  }
  let fdt: Fdt;
  try {
    fdt = parseFdt(blob, dtb);
  } catch (e) {
    throw new LiveStateError(`${dtb}: ${e instanceof Error ? e.message : e}`);
  }
  const devicesPath = join(dir, 'devices.json');
  const statePath = join(dir, 'state.json');
  const devices = devicesOf(readChecked(devicesPath, readDevicesList));
  return { fdt, live: { dir, devices, ...stateOf(readChecked(statePath, readServeState)) } };
}
