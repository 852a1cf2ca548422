/**
 * What a running `serve --socket-dir DIR` shows of itself: DIR/platform.dtb (the tree it
 * serves), DIR/devices.json (functions, sockets, verdicts) and DIR/state.json (client
 * partitions and LPIDs, the NPUs' ATSD register bindings, touched device memory). Read once,
 * checked field by field: a missing or malformed file is one clear error naming it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CodedError } from '../errors/index.ts';
import { type Fdt, parseFdt } from '../fdt/index.ts';

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

function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new LiveStateError(`cannot read ${path} (${code}): is \`serve --socket-dir\` running?`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new LiveStateError(`${path}: not JSON (${e instanceof Error ? e.message : e})`);
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function field<T>(path: string, where: string, v: unknown, ok: (x: unknown) => x is T): T {
  if (!ok(v))
    throw new LiveStateError(`${path}: ${where} has the wrong type (${JSON.stringify(v)})`);
  return v;
}
const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const isStr = (x: unknown): x is string => typeof x === 'string';
const isArr = (x: unknown): x is unknown[] => Array.isArray(x);

function devicesOf(path: string, json: unknown): Map<string, LiveDevice> {
  const list = field(path, 'the top level', json, isArr);
  const out = new Map<string, LiveDevice>();
  list.forEach((e, i) => {
    const o = field(path, `entry ${i}`, e, isObj);
    const address = field(path, `entry ${i} "address"`, o.address, isStr);
    const socket =
      o.socket === undefined ? undefined : field(path, `entry ${i} "socket"`, o.socket, isStr);
    const result =
      o.result === undefined ? undefined : field(path, `entry ${i} "result"`, o.result, isStr);
    out.set(address, { socket, result });
  });
  return out;
}

function stateOf(path: string, json: unknown): Omit<LiveState, 'dir' | 'devices'> {
  const o = field(path, 'the top level', json, isObj);
  const partitions = field(path, '"partitions"', o.partitions, isArr).map((p, i) => {
    const q = field(path, `partitions[${i}]`, p, isObj);
    return {
      pid: field(path, `partitions[${i}].pid`, q.pid, isNum),
      lpid: field(path, `partitions[${i}].lpid`, q.lpid, isNum),
      devices: field(path, `partitions[${i}].devices`, q.devices, isArr).map((d, j) =>
        field(path, `partitions[${i}].devices[${j}]`, d, isStr),
      ),
    };
  });
  const atsd = new Map<string, { index: number; lpid: number }[]>();
  field(path, '"firmware"', o.firmware, isArr).forEach((n, i) => {
    const npu = field(path, `firmware[${i}]`, n, isObj);
    const where = field(path, `firmware[${i}].path`, npu.path, isStr);
    atsd.set(
      where,
      field(path, `firmware[${i}].atsd`, npu.atsd, isArr).map((r, j) => {
        const reg = field(path, `firmware[${i}].atsd[${j}]`, r, isObj);
        return {
          index: field(path, `firmware[${i}].atsd[${j}].index`, reg.index, isNum),
          lpid: field(path, `firmware[${i}].atsd[${j}].lpid`, reg.lpid, isNum),
        };
      }),
    );
  });
  const mem = field(path, '"memory"', o.memory, isObj);
  const memory = new Map<string, { gpuRam: number; bars: number }>();
  field(path, 'memory.gpus', mem.gpus, isArr).forEach((g, i) => {
    const q = field(path, `memory.gpus[${i}]`, g, isObj);
    memory.set(field(path, `memory.gpus[${i}].address`, q.address, isStr), {
      gpuRam: field(path, `memory.gpus[${i}].gpuRam`, q.gpuRam, isNum),
      bars: field(path, `memory.gpus[${i}].bars`, q.bars, isNum),
    });
  });
  const budget = mem.budget === null ? null : field(path, 'memory.budget', mem.budget, isNum);
  return {
    partitions,
    atsd,
    memory,
    budget,
    touched: field(path, 'memory.touched', mem.touched, isNum),
  };
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
  const devices = devicesOf(devicesPath, readJson(devicesPath));
  return { fdt, live: { dir, devices, ...stateOf(statePath, readJson(statePath)) } };
}
