/**
 * state.json, what `serve --socket-dir DIR` shows of its tables (src/cli/serve-report.ts
 * serverState writes it): one type for the writer and every reader (inspect, topology, the
 * fuzzer, serve recognising an earlier serve's file), and one validator where it is read. The
 * file is input like any other: bounded (STATE_JSON_MAX_BYTES, readUntrustedFile), parsed as
 * `unknown`, and every member a reader uses is checked; one line names the file and the member.
 */
import type { PartitionView } from '../machine/index.ts';
import { type JsonObject, JsonReader } from '../text/index.ts';
import { readUntrustedFile } from './bounded-file.ts';
import { einval } from './devices-list.ts';

/** Most bytes of state.json read: serve's lists ~200 bytes per GPU and per partition. */
export const STATE_JSON_MAX_BYTES = 4 * 1024 * 1024;
/** Most items of any list in state.json (partitions, LPIDs, NPUs, ATSD registers, GPUs). */
const MAX_ITEMS = 4096;

/** One ATSD register of an NPU: its index and the LPID bound to it (skiboot NPU2_XTS_MMIO_ATSDn_LPARID). */
export interface ServeStateAtsd {
  readonly index: number;
  readonly lpid: number;
  /** The rest as serve wrote it (mmio, msrHv). */
  readonly [member: string]: unknown;
}

/** One NPU's firmware tables: its PHB node path, its ATSD registers, the rest as serve wrote it. */
export interface ServeStateNpu {
  readonly path: string;
  readonly atsd: readonly ServeStateAtsd[];
  /** phbId, domain, bdfMap, pidMap: kept as read (the fuzzer compares them whole). */
  readonly [member: string]: unknown;
}

/** The device memory held, in bytes (numbers: exact below 2^53). */
export interface ServeStateMemory {
  /** --memory-budget in bytes, null without one. */
  readonly budget: number | null;
  readonly touched: number;
  /** Writes refused for the budget. */
  readonly refused: number;
  readonly gpus: readonly {
    readonly address: string;
    readonly gpuRam: number;
    readonly bars: number;
  }[];
}

/** The content of state.json. */
export interface ServeState {
  /** serve's pid. */
  readonly pid: number;
  readonly partitions: readonly PartitionView[];
  readonly lpidsInUse: readonly number[];
  readonly firmware: readonly ServeStateNpu[];
  readonly memory: ServeStateMemory;
}

/**
 * The state of the state.json text `text` (read from `path`, named in errors).
 * @throws VfioError EINVAL naming `path` and the member: not JSON, not an object, a member
 *   missing or of another type, a list longer than 4096.
 */
export function parseServeState(path: string, text: string): ServeState {
  const r = new JsonReader(path, einval);
  const o = r.object('the top level', r.parse(text));
  const list = <T>(where: string, v: unknown, item: (w: string, x: unknown) => T): T[] =>
    r.array(where, v, MAX_ITEMS).map((x, i) => item(`${where}[${i}]`, x));
  const partitions = list('partitions', o.partitions, (w, x) => {
    const p = r.object(w, x);
    return {
      pid: r.count(`${w}.pid`, p.pid),
      lpid: r.count(`${w}.lpid`, p.lpid),
      devices: list(`${w}.devices`, p.devices, (d, y) => r.string(d, y)),
    };
  });
  const firmware = list('firmware', o.firmware, (w, x): ServeStateNpu => {
    const npu = r.object(w, x);
    const atsd = list(`${w}.atsd`, npu.atsd, (a, y): ServeStateAtsd => {
      const reg: JsonObject = r.object(a, y);
      return {
        ...reg,
        index: r.count(`${a}.index`, reg.index),
        lpid: r.count(`${a}.lpid`, reg.lpid),
      };
    });
    return { ...npu, path: r.string(`${w}.path`, npu.path), atsd };
  });
  const m = r.object('memory', o.memory);
  return {
    pid: r.count('pid', o.pid),
    partitions,
    lpidsInUse: list('lpidsInUse', o.lpidsInUse, (w, x) => r.count(w, x)),
    firmware,
    memory: {
      budget: m.budget === null ? null : r.count('memory.budget', m.budget),
      touched: r.count('memory.touched', m.touched),
      refused: r.count('memory.refused', m.refused),
      gpus: list('memory.gpus', m.gpus, (w, x) => {
        const g = r.object(w, x);
        return {
          address: r.string(`${w}.address`, g.address),
          gpuRam: r.count(`${w}.gpuRam`, g.gpuRam),
          bars: r.count(`${w}.bars`, g.bars),
        };
      }),
    },
  };
}

/**
 * Reads and checks the state.json at `path`: a regular file of at most STATE_JSON_MAX_BYTES.
 * @throws VfioError EINVAL as `parseServeState`, or for a symlink, a file that is not regular
 *   or too long (readUntrustedFile); NodeJS.ErrnoException when it cannot be opened.
 */
export function readServeState(path: string): ServeState {
  return parseServeState(path, readUntrustedFile(path, STATE_JSON_MAX_BYTES));
}
