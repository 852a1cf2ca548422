/**
 * A client cannot flood the server's log: 50,000 bad REGION_READs sent by one client (a real
 * second process, the real socket) each get their error reply, but the server writes at most
 * a burst of lines per interval and then one line counting the rest (the kernel's
 * printk_ratelimit, src/vfio-user/server/log-rate-limit.ts). Lines written and lines counted
 * add up to every error; reconnecting gives no fresh budget.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  Command,
  LOG_RATE_BURST,
  LOG_RATE_SOCKET_BURST,
  VfioUserClient,
} from '../src/vfio-user/index.ts';
import { FLAG_ERROR, frame, pack } from './support/frames.ts';
import { GPU, type ServeProcess, startServe, waitFor } from './support/serve-process.ts';
import { within } from './support/wait.ts';

const FLOOD = 50_000;
const EINVAL = 22;

let serve: ServeProcess;
before(async () => {
  serve = await startServe();
});
after(async () => {
  await serve.stop();
});

/** Sends `n` REGION_READs of a region the device lacks, in one write; resolves once all are answered. */
async function flood(n: number, firstId: number): Promise<void> {
  const c = await VfioUserClient.connect(serve.socket(GPU));
  try {
    const one = (i: number) => frame((firstId + i) & 0xffff, Command.REGION_READ, pack(0n, 99, 8));
    const all = new Uint8Array(n * one(0).length);
    for (let i = 0; i < n; i++) all.set(one(i), i * one(0).length);
    const replies = Array.from({ length: n }, (_, i) =>
      c.expectReply((firstId + i) & 0xffff, Command.REGION_READ),
    );
    c.sendRaw(all);
    for (const m of await within(`${n} error replies`, Promise.all(replies))) {
      assert.ok(m.header.flags & FLAG_ERROR);
      assert.equal(m.header.errno, EINVAL);
    }
  } finally {
    c.close();
  }
}

/** The REGION_READ error lines written and the lines suppressed (from the summaries). */
function counted(log: string): { written: number; suppressed: number; summaries: number } {
  const lines = log.split('\n');
  const written = lines.filter((l) => /VFIO_USER_REGION_READ \(msg \d+\): EINVAL/.test(l)).length;
  let suppressed = 0;
  let summaries = 0;
  for (const l of lines) {
    const m = /: suppressed (\d+) similar log lines? \(at most \d+ per 5 s/.exec(l);
    if (m) {
      suppressed += Number(m[1]);
      summaries++;
    }
  }
  return { written, suppressed, summaries };
}

describe('log flooding', () => {
  it(`${FLOOD} bad REGION_READs: every one answered, a bounded number of lines and a count of the rest`, async () => {
    const from = serve.stderr().length;
    await flood(FLOOD, 1);
    // The count is written when the client leaves (or the interval ends).
    const c = await waitFor('the suppressed count', () => {
      const n = counted(serve.stderr().slice(from));
      return n.written + n.suppressed === FLOOD ? n : undefined;
    });
    assert.ok(c.summaries >= 1, 'a summary line');
    assert.ok(c.written >= LOG_RATE_BURST, `${c.written} lines written`);
    // At most a burst per interval, and the flood fits in far fewer intervals than lines.
    assert.ok(c.written <= LOG_RATE_BURST * (c.summaries + 1), `${c.written} lines written`);
    const bytes = Buffer.byteLength(serve.stderr().slice(from));
    assert.ok(bytes < 64 * 1024, `${bytes} bytes of log for ${FLOOD} errors`);
  });

  it("a client reconnecting cannot pass the socket's bound", async () => {
    const from = serve.stderr().length;
    const rounds = 3 * (LOG_RATE_SOCKET_BURST / LOG_RATE_BURST);
    for (let k = 0; k < rounds; k++) await flood(2 * LOG_RATE_BURST, 100 * (k + 1));
    // The socket's own summary (its name in it) counts lines of every connection.
    const text = await waitFor("the socket's summary", () => {
      const t = serve.stderr().slice(from);
      return /\.sock\): suppressed \d+ similar log lines/.test(t) ? t : undefined;
    });
    const lines = text.split('\n').filter((l) => l !== '');
    const summaries = lines.filter((l) => /\.sock\): suppressed/.test(l)).length;
    assert.ok(
      lines.length <= (LOG_RATE_SOCKET_BURST + 1) * (summaries + 1),
      `${lines.length} lines for ${rounds * 2 * LOG_RATE_BURST} errors`,
    );
  });
});
