/**
 * One JSON vocabulary across the commands: `inspect --json`, `dt doctor --json` (NVLink2 and
 * Grace trees), serve's devices.json and state.json, and `guest --json`. Every member of every
 * object they print is classified below by its name (or `parent.name` where one name means two
 * things), and its value must have its kind's form: a PCI address is "DDDD:BB:DD.F", IDs are
 * hex strings of their width ("0x10de"), addresses, sizes and offsets in memory or config space
 * are "0x…" strings, errnos are names, counts and indexes are numbers. A member nobody
 * classified fails too, so a new field is given its form when it is added.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from './support/cli.ts';
import { type ServeProcess, startServe } from './support/serve-process.ts';

type Check = (v: unknown) => boolean;

const re =
  (r: RegExp): Check =>
  (v) =>
    typeof v === 'string' && r.test(v);
const orNull =
  (c: Check): Check =>
  (v) =>
    v === null || c(v);

const BDF = re(/^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/);
const SHORT_BDF = re(/^[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/);
const HEX = re(/^0x[0-9a-f]+$/);
const ID2 = re(/^0x[0-9a-f]{2}$/);
const ID4 = re(/^0x[0-9a-f]{4}$/);
const ID6 = re(/^0x[0-9a-f]{6}$/);
const ID8 = re(/^0x[0-9a-f]{8}$/);
const BYTES = re(/^[0-9a-f]*$/);
const ERRNO = re(/^E[A-Z0-9]+$/);
const COUNT: Check = (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const BOOL: Check = (v) => typeof v === 'boolean';
const TEXT: Check = (v) => typeof v === 'string';

/** The vocabulary: member name (or `parent.member`) → the form of its value. */
const KINDS: Record<string, Check> = {
  // PCI addresses and IDs
  address: BDF,
  'bdfMap.bdf': SHORT_BDF,
  name: TEXT,
  'inspect.name': BDF,
  vendor: ID4,
  device: ID4,
  subsystemVendor: ID4,
  subsystemDevice: ID4,
  classCode: ID6,
  revision: ID2,
  headerType: ID2,
  command: ID4,
  status: ID4,
  phbId: HEX,
  devfn: HEX,
  // addresses, sizes and offsets in memory, regions and config space
  size: HEX,
  'config.size': COUNT,
  offset: HEX,
  'caps.offset': COUNT, // a byte offset inside struct vfio_region_info, as argsz
  'caps.next': COUNT,
  register: HEX,
  tgt: HEX,
  gpa: HEX,
  ramWindow: HEX,
  atsdWindow: HEX,
  atsdGpa: orNull(HEX),
  atsdSize: orNull(HEX),
  mmio: orNull(HEX),
  mmioAtsd: orNull(HEX),
  memlength: HEX,
  barSize: HEX,
  memphys: HEX,
  type: TEXT,
  'regions.type': ID8,
  'value.type': ID8,
  phandle: HEX,
  ramPhandle: HEX,
  nvlinkPhandle: HEX,
  hex: BYTES,
  'registers.*': HEX,
  // errnos, results and text
  errno: orNull(ERRNO),
  reason: orNull(TEXT),
  message: TEXT,
  result: TEXT,
  role: TEXT,
  model: TEXT,
  flagNames: TEXT,
  socket: TEXT,
  path: TEXT,
  node: TEXT,
  warnings: TEXT,
  errors: TEXT,
  plain: BDF,
  // counts, indexes, numbers of the kernel's structs, flags
  index: COUNT,
  id: COUNT,
  version: COUNT,
  argsz: COUNT,
  flags: COUNT,
  capOffset: COUNT,
  count: COUNT,
  numRegions: COUNT,
  numIrqs: COUNT,
  subtype: COUNT,
  interruptPin: COUNT,
  prefetchable: BOOL,
  iommuGroup: orNull(COUNT),
  linkSpeed: COUNT,
  link: COUNT,
  npuLinkIndex: COUNT,
  slot: COUNT,
  numaId: COUNT,
  numaNodes: COUNT,
  domain: COUNT,
  pid: COUNT,
  lpid: COUNT,
  lpidsInUse: COUNT,
  lparShort: COUNT,
  valid: BOOL,
  unfilt: BOOL,
  xlat: COUNT,
  stack: COUNT,
  brick: COUNT,
  refs: COUNT,
  msrHv: BOOL,
  'msr.*': BOOL,
  budget: orNull(COUNT),
  touched: COUNT,
  refused: COUNT,
  gpuRam: COUNT,
  bars: COUNT,
  'config.bars': COUNT,
  devices: BDF,
};

/** Every leaf of `json` that breaks the vocabulary, as `OUTPUT PATH: why`. */
function violations(output: string, json: unknown): string[] {
  const bad: string[] = [];
  const visit = (v: unknown, path: string, parent: string, key: string): void => {
    if (Array.isArray(v)) {
      for (const [i, x] of v.entries()) visit(x, `${path}[${i}]`, parent, key);
      return;
    }
    if (typeof v === 'object' && v !== null) {
      for (const [k, x] of Object.entries(v)) visit(x, `${path}.${k}`, key, k);
      return;
    }
    const check = KINDS[`${parent}.${key}`] ?? KINDS[`${parent}.*`] ?? KINDS[key];
    if (!check)
      bad.push(`${output} ${path}: member '${key}' (in '${parent}') is not in the vocabulary`);
    else if (!check(v))
      bad.push(`${output} ${path}: ${JSON.stringify(v)} is not of the form '${key}' has`);
  };
  visit(json, '', output, output);
  return bad;
}

function json(args: string[]): unknown {
  const r = runCli(args);
  assert.ok(r.stdout.length > 0, `${args.join(' ')}: no output (${r.stderr})`);
  return JSON.parse(r.stdout);
}

let serve: ServeProcess;
let dir: string;
before(async () => {
  serve = await startServe();
  dir = mkdtempSync(join(tmpdir(), 'vn-vocabulary-'));
});
after(async () => {
  await serve.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('one JSON vocabulary', () => {
  it('the vocabulary test catches what it is for', () => {
    assert.deepEqual(violations('x', { address: '0000:00:00.0', vendor: '0x10de' }), []);
    assert.equal(violations('x', { vendor: 4318 }).length, 1);
    assert.equal(violations('x', { address: 256 }).length, 1);
    assert.equal(violations('x', { newMember: 1 }).length, 1);
  });

  it('inspect --json (every GPU and bridge), dt doctor --json, guest --json, devices.json, state.json', () => {
    const grace = join(dir, 'grace.dtb');
    assert.equal(runCli(['dt', 'generate', '--machine', 'grace-hopper', '-o', grace]).status, 0);
    const outputs: [string, unknown][] = [
      ['inspect', json(['inspect', '--dt', '--json'])],
      ['doctor', json(['dt', 'doctor', '--json'])],
      ['doctor', json(['dt', 'doctor', grace, '--json'])],
      ['guest', json(['guest', '--socket-dir', serve.dir, '--json'])],
      ['devices', JSON.parse(readFileSync(join(serve.dir, 'devices.json'), 'utf8'))],
      ['state', JSON.parse(readFileSync(join(serve.dir, 'state.json'), 'utf8'))],
    ];
    const bad = outputs.flatMap(([name, j]) => violations(name, j));
    assert.deepEqual(bad.slice(0, 20), [], `${bad.length} members off the vocabulary`);
  });
});
