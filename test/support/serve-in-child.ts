/**
 * A test process in miniature, for test/serve-dies-with-test.test.ts: starts `serve` as the
 * tests do (./serve-process.ts), prints its pid and socket directory as one JSON line, then
 * waits to be killed.
 */
import { startServe } from './serve-process.ts';

const serve = await startServe();
process.stdout.write(`${JSON.stringify({ pid: serve.pid, dir: serve.dir })}\n`);
setInterval(() => {}, 60_000);
