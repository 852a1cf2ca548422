/**
 * Model-based test of command ordering (issue 7, vfio-user.rst "Command Concurrency": commands
 * are processed in the order received). Random bursts of REGION_READ/WRITE (1 byte to 1 MiB),
 * REGION_WRITE_MULTI, posted writes (NO_REPLY), DMA_MAP/UNMAP and DEVICE_RESET on GPU RAM,
 * BAR0, BAR1 and config space are sent pipelined, cut into random chunks (one sendmsg each),
 * to one `serve` in a second process, and every reply is checked, in order, against a
 * sequential reference model.
 *
 * The model is its own: a byte array per window of each region (filled from the server once
 * at the start), the config header with two bytes the PCI spec makes plain read-write scratch
 * (Cache Line Size 0x0c, Interrupt Line 0x3c; PCI Local Bus 3.0 §6.2.4), back to their
 * defaults on reset; region memory survives a reset (GPU RAM is system memory, BAR contents
 * are kept: src/vfio/device.ts reset()); DMA_MAP of a mapped range is EEXIST and DMA_UNMAP of
 * an unmapped one ENOENT (vfio-user.rst "VFIO_USER_DMA_MAP"/"_UNMAP"). Windows avoid BAR0's
 * preset register, MSI-X table and doorbell.
 *
 * The same bursts run twice: against a plain `serve`, where the native fast path answers the
 * plain accesses (config reads, BAR and GPU RAM memory: issue 14) interleaved with what
 * JavaScript answers, and the server's log must show it served some; then (a tenth of them)
 * against `serve --trace`, where a tracepoint is listened to and it must serve none.
 *
 * Seeded: ORDERING_SEED=<n> replays a run, ORDERING_BURSTS=<n> sets the count (default 2,000);
 * a failure names the seed, the burst and the command.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Random } from '../src/fuzz/random.ts';
import { frame, pack, QEMU_VERSION_JSON, versionPayload } from './support/frames.ts';
import { type RawMessage, RawPeer } from './support/raw-peer.ts';
import { GPU, type ServeProcess, startServe, waitFor } from './support/serve-process.ts';

/** vfio-user.rst "Commands". */
const VERSION = 1;
const DMA_MAP = 2;
const DMA_UNMAP = 3;
const REGION_READ = 9;
const REGION_WRITE = 10;
const DEVICE_RESET = 13;
const REGION_WRITE_MULTI = 15;
const NO_REPLY = 0x10;
const EEXIST = 17;
const ENOENT = 2;

const KiB = 1024;
const MiB = 1024 * KiB;
const CONFIG = 7;
const CONFIG_HEADER = 0x40;
/** PCI Cache Line Size and Interrupt Line: read-write, no side effects. */
const CONFIG_SCRATCH = [0x0c, 0x3c];
const DMA_SLOTS = 16;
const DMA_BASE = 1n << 32n;
const DMA_SLOT_BYTES = 1n << 20n;

const SEED = Number(process.env.ORDERING_SEED ?? Math.floor(Math.random() * 2 ** 31));
const BURSTS = Number(process.env.ORDERING_BURSTS ?? 2000);

/** The fuzzer's seeded sfc32 (src/fuzz/random.ts) with this model's draws. */
class Rng {
  readonly #random: Random;
  constructor(seed: number) {
    this.#random = new Random(seed);
  }
  u32(): number {
    return this.#random.u32();
  }
  /** 0 ≤ n < max. */
  int(max: number): number {
    return this.#random.below(max);
  }
  chance(p: number): boolean {
    return this.#random.chance(p);
  }
  /** Log-uniform in [lo, hi]. */
  logSize(lo: number, hi: number): number {
    const x = Math.log(lo) + (this.u32() / 2 ** 32) * (Math.log(hi + 1) - Math.log(lo));
    return Math.min(hi, Math.max(lo, Math.floor(Math.exp(x))));
  }
}

/** A window of a region the model tracks byte by byte. */
interface Window {
  readonly name: string;
  readonly region: number;
  readonly base: bigint;
  readonly bytes: Uint8Array;
}

/** What the reply to one command must be: null when it is, else what differs. */
interface Expectation {
  readonly msgId: number;
  readonly what: string;
  check(m: RawMessage): string | null;
}

const windows: Window[] = [
  { name: 'GPU RAM', region: 9, base: 0n, bytes: new Uint8Array(4 * MiB) },
  { name: 'BAR0', region: 0, base: 0x200000n, bytes: new Uint8Array(2 * MiB) },
  { name: 'BAR1', region: 1, base: 0n, bytes: new Uint8Array(2 * MiB) },
];
const config = new Uint8Array(CONFIG_HEADER);
let configDefaults: Uint8Array = new Uint8Array(CONFIG_HEADER);
const dmaMapped = new Array<boolean>(DMA_SLOTS).fill(false);

let serve: ServeProcess;
let peer: RawPeer;
/** Replies still due, in the order their commands were sent. */
const due: Expectation[] = [];
const failures: string[] = [];
let wake: () => void = () => {};
let nextId = 1;

function onReply(m: RawMessage): void {
  const e = due.shift();
  if (e === undefined) failures.push(`an unexpected reply (msg ${m.msgId})`);
  else if (m.msgId !== e.msgId)
    failures.push(`reply to msg ${m.msgId} where the reply to ${e.what} (msg ${e.msgId}) was due`);
  else {
    const bad = e.check(m);
    if (bad !== null) failures.push(`${e.what} (msg ${e.msgId}): ${bad}`);
  }
  wake();
}

/** Waits (bounded) until every due reply is in. */
async function settle(context: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (due.length > 0 && failures.length === 0 && peer.failure === null) {
    if (Date.now() > deadline) throw new Error(`${context}: ${due.length} replies still due`);
    await new Promise<void>((r) => {
      wake = r;
      setTimeout(r, 100);
    });
  }
  if (peer.failure !== null) failures.push(`${context}: ${peer.failure.message}`);
}

const u32 = (b: Uint8Array, at: number) =>
  new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(at, true);
const u64 = (b: Uint8Array, at: number) =>
  new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(at, true);

function firstDifference(got: Uint8Array, want: Uint8Array): string | null {
  if (got.length !== want.length) return `${got.length} bytes, expected ${want.length}`;
  if (Buffer.compare(got, want) === 0) return null;
  const at = got.findIndex((b, i) => b !== want[i]);
  return `byte ${at} is 0x${got[at]!.toString(16)}, expected 0x${want[at]!.toString(16)}`;
}

function errnoCheck(m: RawMessage, errno: number): string | null {
  const got = m.flags & 0x20 ? m.errno : 0;
  return got === errno ? null : `errno ${got}, expected ${errno}`;
}

/** One burst under construction: frames to send, and what their replies must be. */
class Burst {
  readonly frames: Uint8Array[] = [];
  readonly log: string[] = [];
  constructor(readonly rng: Rng) {}

  #add(command: number, payload: Uint8Array, posted: boolean, expect?: Expectation['check']) {
    const msgId = nextId;
    nextId = (nextId + 1) & 0xffff;
    this.frames.push(frame(msgId, command, payload, { flags: posted ? NO_REPLY : 0 }));
    const what = this.log[this.log.length - 1]!;
    if (!posted && expect) due.push({ msgId, what, check: expect });
  }

  read(w: Window, at: number, count: number): void {
    this.log.push(`REGION_READ ${w.name}+0x${at.toString(16)} ${count}`);
    const want = w.bytes.slice(at, at + count);
    const offset = w.base + BigInt(at);
    this.#add(REGION_READ, pack(offset, w.region, count), false, (m) => {
      const bad = errnoCheck(m, 0);
      if (bad) return bad;
      if (u64(m.body, 0) !== offset || u32(m.body, 8) !== w.region || u32(m.body, 12) !== count)
        return 'the reply names another access';
      return firstDifference(m.body.subarray(16), want);
    });
  }

  write(w: Window, at: number, data: Uint8Array, posted: boolean): void {
    this.log.push(
      `REGION_WRITE ${w.name}+0x${at.toString(16)} ${data.length}${posted ? ' posted' : ''}`,
    );
    w.bytes.set(data, at);
    const offset = w.base + BigInt(at);
    const payload = new Uint8Array(16 + data.length);
    payload.set(pack(offset, w.region, data.length));
    payload.set(data, 16);
    this.#add(REGION_WRITE, payload, posted, (m) => {
      const bad = errnoCheck(m, 0);
      if (bad) return bad;
      return u32(m.body, 12) === data.length ? null : `count ${u32(m.body, 12)}`;
    });
  }

  /** Entries of 1 to 8 bytes: [window or null for config scratch, byte offset, data]. */
  writeMulti(entries: [Window | null, number, Uint8Array][], posted: boolean): void {
    this.log.push(`REGION_WRITE_MULTI ${entries.length} entries${posted ? ' posted' : ''}`);
    const payload = new Uint8Array(8 + 24 * entries.length);
    payload.set(pack(BigInt(entries.length)));
    for (const [i, [w, at, data]] of entries.entries()) {
      if (w === null) config.set(data, at);
      else w.bytes.set(data, at);
      const offset = w === null ? BigInt(at) : w.base + BigInt(at);
      payload.set(pack(offset, w === null ? CONFIG : w.region, data.length), 8 + 24 * i);
      payload.set(data, 8 + 24 * i + 16);
    }
    this.#add(REGION_WRITE_MULTI, payload, posted, (m) => {
      const bad = errnoCheck(m, 0);
      if (bad) return bad;
      return u64(m.body, 0) === BigInt(entries.length) ? null : `wr_cnt ${u64(m.body, 0)}`;
    });
  }

  configRead(at: number, count: number): void {
    this.log.push(`REGION_READ config+0x${at.toString(16)} ${count}`);
    const want = config.slice(at, at + count);
    this.#add(REGION_READ, pack(BigInt(at), CONFIG, count), false, (m) => {
      const bad = errnoCheck(m, 0);
      return bad ?? firstDifference(m.body.subarray(16), want);
    });
  }

  configWrite(at: number, value: number, posted: boolean): void {
    this.log.push(`REGION_WRITE config+0x${at.toString(16)} = 0x${value.toString(16)}`);
    config[at] = value;
    const payload = new Uint8Array(17);
    payload.set(pack(BigInt(at), CONFIG, 1));
    payload[16] = value;
    this.#add(REGION_WRITE, payload, posted, (m) => errnoCheck(m, 0));
  }

  dmaMap(slot: number, posted: boolean): void {
    this.log.push(`DMA_MAP slot ${slot}${posted ? ' posted' : ''}`);
    const errno = dmaMapped[slot] ? EEXIST : 0;
    dmaMapped[slot] = true;
    const address = DMA_BASE + BigInt(slot) * 2n * DMA_SLOT_BYTES;
    this.#add(DMA_MAP, pack(32, 3, 0n, address, DMA_SLOT_BYTES), posted, (m) =>
      errnoCheck(m, errno),
    );
  }

  dmaUnmap(slot: number, posted: boolean): void {
    this.log.push(`DMA_UNMAP slot ${slot}${posted ? ' posted' : ''}`);
    const errno = dmaMapped[slot] ? 0 : ENOENT;
    dmaMapped[slot] = false;
    const address = DMA_BASE + BigInt(slot) * 2n * DMA_SLOT_BYTES;
    this.#add(DMA_UNMAP, pack(24, 0, address, DMA_SLOT_BYTES), posted, (m) => {
      const bad = errnoCheck(m, errno);
      if (bad || errno !== 0) return bad;
      return u64(m.body, 8) === address && u64(m.body, 16) === DMA_SLOT_BYTES
        ? null
        : 'the reply names another range';
    });
  }

  reset(posted: boolean): void {
    this.log.push(`DEVICE_RESET${posted ? ' posted' : ''}`);
    config.set(configDefaults);
    this.#add(DEVICE_RESET, new Uint8Array(0), posted, (m) => errnoCheck(m, 0));
  }
}

/** Random data: views into one pool of random bytes, at random offsets. */
let pool = new Uint8Array(0);
function randomData(rng: Rng, n: number): Uint8Array {
  const at = rng.int(pool.length - n + 1);
  return pool.subarray(at, at + n);
}

/** An access size: mostly small, often around the 16 KiB placement threshold, some 1 MiB. */
function accessSize(rng: Rng, max: number): number {
  const r = rng.u32() / 2 ** 32;
  const size =
    r < 0.4
      ? rng.logSize(1, 64)
      : r < 0.7
        ? rng.logSize(65, 16 * KiB)
        : r < 0.95
          ? rng.logSize(16 * KiB, 128 * KiB)
          : rng.logSize(128 * KiB, MiB);
  return Math.min(size, max);
}

/** An offset for `count` bytes in `w`: half the time in its first 64 KiB, so accesses overlap. */
function accessOffset(rng: Rng, w: Window, count: number): number {
  const span =
    (rng.chance(0.5) ? Math.min(w.bytes.length, 64 * KiB + count) : w.bytes.length) - count;
  return rng.int(span + 1);
}

function randomOp(b: Burst): void {
  const rng = b.rng;
  const w = windows[rng.int(windows.length)]!;
  const r = rng.int(100);
  if (r < 34) {
    const count = accessSize(rng, w.bytes.length);
    b.read(w, accessOffset(rng, w, count), count);
  } else if (r < 64) {
    const count = accessSize(rng, w.bytes.length);
    b.write(w, accessOffset(rng, w, count), randomData(rng, count), rng.chance(0.5));
  } else if (r < 74) {
    const entries: [Window | null, number, Uint8Array][] = [];
    for (let i = 1 + rng.int(rng.chance(0.2) ? 200 : 8); i > 0; i--) {
      if (rng.chance(0.1)) {
        entries.push([null, CONFIG_SCRATCH[rng.int(2)]!, randomData(rng, 1)]);
      } else {
        const t = windows[rng.int(windows.length)]!;
        const n = 1 + rng.int(8);
        entries.push([t, accessOffset(rng, t, n), randomData(rng, n)]);
      }
    }
    b.writeMulti(entries, rng.chance(0.3));
  } else if (r < 81) b.dmaMap(rng.int(DMA_SLOTS), rng.chance(0.2));
  else if (r < 88) b.dmaUnmap(rng.int(DMA_SLOTS), rng.chance(0.2));
  else if (r < 91) b.reset(rng.chance(0.3));
  else if (r < 95) b.configWrite(CONFIG_SCRATCH[rng.int(2)]!, rng.int(256), rng.chance(0.5));
  else {
    const at = rng.int(CONFIG_HEADER);
    b.configRead(at, 1 + rng.int(CONFIG_HEADER - at));
  }
}

/** Sends the burst's frames as one byte stream cut at random places, one sendmsg per piece. */
function sendCut(b: Burst): void {
  const total = b.frames.reduce((n, f) => n + f.length, 0);
  const stream = Buffer.concat(b.frames, total);
  const cuts = new Set<number>();
  for (let i = b.rng.int(6); i > 0; i--) cuts.add(1 + b.rng.int(total - 1));
  let from = 0;
  for (const cut of [...cuts].sort((x, y) => x - y).concat(total)) {
    peer.send(stream.subarray(from, cut));
    from = cut;
  }
}

/** Fills the model from the server: every window, and the config header after a reset. */
async function snapshot(rng: Rng): Promise<void> {
  const b = new Burst(rng);
  const got: Uint8Array[] = [];
  const keep = () => {
    const e = due[due.length - 1]!;
    due[due.length - 1] = {
      ...e,
      check: (m) => {
        got.push(m.body.slice(16));
        return errnoCheck(m, 0);
      },
    };
  };
  b.reset(false);
  for (const w of windows) {
    for (let at = 0; at < w.bytes.length; at += MiB) {
      b.read(w, at, MiB);
      keep();
    }
  }
  b.configRead(0, CONFIG_HEADER);
  keep();
  for (const f of b.frames) peer.send(f);
  await settle('snapshot');
  assert.deepEqual(failures, []);
  let i = 0;
  for (const w of windows)
    for (let at = 0; at < w.bytes.length; at += MiB) w.bytes.set(got[i++]!, at);
  configDefaults = got[i]!;
  config.set(configDefaults);
}

/** Starts `serve` with `args` and negotiates VERSION; the model starts over. */
async function start(args: string[]): Promise<void> {
  serve = await startServe(args);
  peer = new RawPeer(serve.socket(GPU), onReply);
  dmaMapped.fill(false);
  due.length = 0;
  failures.length = 0;
  due.push({ msgId: 0, what: 'VERSION', check: (m) => errnoCheck(m, 0) });
  nextId = 1;
  peer.send(frame(0, VERSION, versionPayload(0, 0, QEMU_VERSION_JSON)));
  await settle('VERSION');
}

/** Ends the client and the server; what the server logged about its native fast path. */
async function stop(): Promise<{ reads: number; writes: number } | null> {
  peer.close();
  // The session's release (its partition given back) logs what the fast path served.
  await waitFor('the session to release the GPU', () => serve.state().partitions.length === 0);
  await serve.stop();
  // Its last line (stderr is read asynchronously): every line before it is in.
  await waitFor('the SIGTERM log line', () => /SIGTERM: closing/.test(serve.stderr()));
  const m = /native fast path served (\d+) REGION_READs and (\d+) REGION_WRITEs/.exec(
    serve.stderr(),
  );
  return m === null ? null : { reads: Number(m[1]), writes: Number(m[2]) };
}

/** `bursts` random bursts checked against the model, then everything read back whole. */
async function runModel(t: { diagnostic(message: string): void }, bursts: number): Promise<void> {
  const rng = new Rng(SEED);
  const how = `ORDERING_SEED=${SEED} ORDERING_BURSTS=${bursts}`;
  t.diagnostic(how);
  pool = new Uint8Array(2 * MiB);
  for (let i = 0; i < pool.length; i += 4) new DataView(pool.buffer).setUint32(i, rng.u32(), true);
  await snapshot(rng);
  for (let burst = 0; burst < bursts; burst++) {
    const b = new Burst(rng);
    for (let n = 1 + rng.int(8); n > 0; n--) randomOp(b);
    sendCut(b);
    await settle(`burst ${burst}`);
    if (failures.length > 0) {
      assert.fail(`${how}: burst ${burst} [${b.log.join('; ')}]: ${failures.join('; ')}`);
    }
  }
  // What the bursts left: every window and the config header read back whole.
  const last = new Burst(rng);
  for (const w of windows) for (let at = 0; at < w.bytes.length; at += MiB) last.read(w, at, MiB);
  last.configRead(0, CONFIG_HEADER);
  for (let slot = 0; slot < DMA_SLOTS; slot++) last.dmaUnmap(slot, false);
  sendCut(last);
  await settle('final check');
  assert.deepEqual(failures, [], `${how}: final check`);
}

describe('ordering across the native fast path and JavaScript', () => {
  before(() => start([]));

  it(`${BURSTS} random pipelined bursts match a sequential model reply by reply`, async (t) => {
    await runModel(t, BURSTS);
    // Plain accesses (config reads, BAR and GPU RAM memory) were answered natively, the rest
    // (config writes, WRITE_MULTI, DMA, reset, writes to unpopulated pages) in JavaScript.
    const served = await stop();
    t.diagnostic(`fast path: ${served?.reads ?? 0} reads, ${served?.writes ?? 0} writes`);
    assert.ok(served !== null && served.reads > 0 && served.writes > 0, serve.stderr());
  });
});

describe('ordering with a tracepoint listened to (native fast path off)', () => {
  const traceDir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-order-'));
  before(() => start(['--trace', join(traceDir, 'trace.txt')]));
  after(() => rmSync(traceDir, { recursive: true, force: true }));

  it(`${Math.ceil(BURSTS / 10)} random pipelined bursts, every one through JavaScript`, async (t) => {
    await runModel(t, Math.ceil(BURSTS / 10));
    assert.equal(await stop(), null, 'the fast path served requests while traced');
  });
});
