/**
 * The native fast path (issue 14) against a `serve` in a second process, through a raw peer:
 * replies that pile up while the client does not read — fast ones waiting in the native side,
 * JavaScript's queued behind them — still come in the order of the requests and with the bytes
 * of the sequential model; a write to a page never written goes through JavaScript, which
 * charges the memory budget, and the next write to it is served natively; the server's log
 * names how many requests the fast path served. (Once replies queue in JavaScript the fast
 * path stays off until they went: the requests behind them are JavaScript's, in order.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FLAG_ERROR, frame, pack, QEMU_VERSION_JSON, versionPayload } from './support/frames.ts';
import { type RawMessage, RawPeer } from './support/raw-peer.ts';
import { GPU, type ServeProcess, startServe, waitFor } from './support/serve-process.ts';

const VERSION = 1;
const REGION_READ = 9;
const REGION_WRITE = 10;
const CONFIG = 7;
const GPU_RAM = 9;
/** PCI Interrupt Line: plain read-write scratch (PCI Local Bus 3.0 §6.2.4). */
const INTERRUPT_LINE = 0x3c;
const MiB = 1 << 20;

let serve: ServeProcess;
let peer: RawPeer;
const replies: RawMessage[] = [];
let nextId = 1;

function onReply(m: RawMessage): void {
  replies.push({ ...m, body: m.body.slice() });
}

function send(command: number, payload: Uint8Array): number {
  const id = nextId++;
  peer.send(frame(id, command, payload));
  return id;
}

const read = (region: number, offset: number, count: number) =>
  send(REGION_READ, pack(BigInt(offset), region, count));

function write(region: number, offset: number, data: Uint8Array): number {
  const payload = new Uint8Array(16 + data.length);
  payload.set(pack(BigInt(offset), region, data.length));
  payload.set(data, 16);
  return send(REGION_WRITE, payload);
}

/** Waits (bounded) for `n` replies and takes them. */
async function take(n: number): Promise<RawMessage[]> {
  await waitFor(`${n} replies`, () => {
    if (peer.failure) throw peer.failure;
    return replies.length >= n;
  });
  return replies.splice(0, n);
}

function ok(m: RawMessage, id: number, what: string): void {
  assert.equal(m.msgId, id, `${what}: reply ${m.msgId} where ${id} was due`);
  assert.equal(m.flags & FLAG_ERROR, 0, `${what}: errno ${m.errno}`);
}

function pattern(seed: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return out;
}

before(async () => {
  serve = await startServe([]);
  peer = new RawPeer(serve.socket(GPU), onReply);
  peer.send(frame(0, VERSION, versionPayload(0, 0, QEMU_VERSION_JSON)));
  ok((await take(1))[0]!, 0, 'VERSION');
});
after(async () => {
  peer.close();
  await serve.stop();
});

describe('the native fast path over the wire', () => {
  it('replies piled up while the client does not read keep the order and bytes of the model', async () => {
    // GPU RAM [0, 4 MiB) written first (through JavaScript: the pages were holes).
    const ram = pattern(1, 4 * MiB);
    const setup = [0, 1, 2, 3].map((i) =>
      write(GPU_RAM, i * MiB, ram.subarray(i * MiB, (i + 1) * MiB)),
    );
    for (const [i, m] of (await take(4)).entries()) ok(m, setup[i]!, `setup write ${i}`);

    peer.pause();
    const due: { id: number; what: string; data?: Uint8Array }[] = [];
    for (let round = 0; round < 8; round++) {
      const at = (round % 4) * MiB;
      due.push({
        id: read(GPU_RAM, at, MiB),
        what: `1 MiB read ${round}`,
        data: ram.slice(at, at + MiB),
      });
      const line = (round * 37) & 0xff;
      due.push({
        id: write(CONFIG, INTERRUPT_LINE, Uint8Array.of(line)),
        what: `config write ${round}`,
      });
      due.push({
        id: read(CONFIG, INTERRUPT_LINE, 1),
        what: `config read ${round}`,
        data: Uint8Array.of(line),
      });
      const small = pattern(round + 10, 64);
      ram.set(small, at + 4096);
      due.push({ id: write(GPU_RAM, at + 4096, small), what: `64-byte write ${round}` });
      due.push({
        id: read(GPU_RAM, at, 8192),
        what: `8 KiB read ${round}`,
        data: ram.slice(at, at + 8192),
      });
    }
    peer.resume();
    for (const [i, m] of (await take(due.length)).entries()) {
      const d = due[i]!;
      ok(m, d.id, d.what);
      if (d.data !== undefined) {
        assert.equal(Buffer.compare(m.body.subarray(16), d.data), 0, `${d.what}: bytes differ`);
      }
    }
  });

  it('a write to a never-written page is charged by JavaScript; the next one is served natively', async () => {
    const at = 512 * MiB; // far from everything written so far
    const before = serve.state().memory.touched;
    const first = write(GPU_RAM, at, pattern(3, 4096));
    ok((await take(1))[0]!, first, 'first write');
    await waitFor('the populated page to be counted', () => serve.state().memory.touched > before);
    const second = write(GPU_RAM, at, pattern(4, 4096));
    const back = read(GPU_RAM, at, 4096);
    const [w, r] = await take(2);
    ok(w!, second, 'second write');
    ok(r!, back, 'read back');
    assert.equal(Buffer.compare(r!.body.subarray(16), pattern(4, 4096)), 0);
  });

  it("the server's log names what the fast path served when the client leaves", async () => {
    peer.close();
    const m = await waitFor(
      'the fast path line at the session release',
      () =>
        /native fast path served (\d+) REGION_READs and (\d+) REGION_WRITEs/.exec(serve.stderr()) ??
        undefined,
    );
    // At least the second write and its read back (requests that arrive while replies pile
    // up are JavaScript's: they queue behind what waits).
    assert.ok(Number(m[1]) >= 1 && Number(m[2]) >= 1, m[0]);
  });
});
