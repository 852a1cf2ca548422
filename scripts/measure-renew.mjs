#!/usr/bin/env node
// How long a renew of GPU RAM holds the opening client's VERSION, and whether the server's other
// devices are answered meanwhile (README "held memory"): a serve with --allow-uid 65534, a
// uid-65534 client (test/support/memory_holder.py) writes MIB MiB of 0005:01:00.0's GPU RAM and
// lets go of it, then a root client's VERSION on that GPU is timed while another client sends
// REGION_READs to 0003:02:00.0 one after another. Root only; needs `npm run build` and
// `npx tsc -p tsconfig.test.json` first (it uses dist/test/support).
// Usage: node scripts/measure-renew.mjs [MIB=1024] [state]   (state: serve --state-dir)
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from '../dist/src/vfio-user/index.js';
import { frame, QEMU_VERSION_JSON, versionPayload } from '../dist/test/support/frames.js';
import { RawPeer } from '../dist/test/support/raw-peer.js';
import { connectWhenFree, GPU, startServe } from '../dist/test/support/serve-process.js';

const mib = Number(process.argv[2] ?? 1024);
const stateDir = process.argv[3] === 'state';
const base = mkdtempSync('/tmp/vfio-nvlink2-measure-renew-');
chmodSync(base, 0o711); // uid 65534 passes through to the sockets
const serve = await startServe(
  [
    '--allow-uid',
    '65534',
    '--memory-budget',
    '4G',
    ...(stateDir ? ['--state-dir', join(base, 'state')] : []),
  ],
  { dir: join(base, 'sockets') },
);
const holder = new URL('../test/support/memory_holder.py', import.meta.url).pathname;
const py = spawn('python3', [holder, '--uid', '65534', serve.socket(GPU), '9'], { stdio: 'pipe' });
let out = '';
py.stdout.on('data', (d) => {
  out += d;
});
py.stderr.on('data', (d) => process.stderr.write(d));
const answer = async (line) => {
  if (line !== undefined) py.stdin.write(`${line}\n`);
  for (let i = 0; i < 6000 && !out.includes('\n'); i++) await new Promise((r) => setTimeout(r, 20));
  const got = out.slice(0, out.indexOf('\n'));
  out = out.slice(got.length + 1);
  return got;
};
try {
  await answer(); // held
  await answer(`fill ${mib}`);
  await answer('close-fd');
  const other = await connectWhenFree(serve, '0003:02:00.0');
  let reply;
  const t0 = process.hrtime.bigint();
  const c = new RawPeer(serve.socket(GPU), (m) => {
    reply = m;
  });
  c.send(frame(0, Command.VERSION, versionPayload(0, 1, QEMU_VERSION_JSON)));
  let trips = 0;
  let slowest = 0n;
  while (reply === undefined && c.failure === null) {
    const t = process.hrtime.bigint();
    await other.regionRead(7, 0n, 4);
    const took = process.hrtime.bigint() - t;
    if (took > slowest) slowest = took;
    trips++;
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(
    `${mib} MiB populated${stateDir ? ' (--state-dir)' : ''}: VERSION answered (errno ${reply?.errno}) after ${s.toFixed(2)} s; ${trips} REGION_READ round trips on 0003:02:00.0 meanwhile, the slowest ${(Number(slowest) / 1e6).toFixed(1)} ms`,
  );
  c.close();
  other.close();
} finally {
  py.kill('SIGKILL');
  await serve.stop();
  rmSync(base, { recursive: true, force: true });
}
