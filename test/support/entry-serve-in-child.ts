/**
 * A bench or fuzzer process in miniature, for test/serve-dies-with-test.test.ts: starts `serve`
 * the way they start their children (src/bench cliEntry), with no pipe to it (so nothing but the
 * parent-death signal can tell serve its parent is gone), prints its pid and socket directory as
 * one JSON line, then waits to be killed.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliEntry } from '../../src/bench/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-entry-'));
const cmd = cliEntry(['serve', '--socket-dir', join(dir, 'sockets')]);
const child = spawn(cmd.file, cmd.args, { stdio: 'ignore' });
process.stdout.write(`${JSON.stringify({ pid: child.pid, dir })}\n`);
setInterval(() => {}, 60_000);
