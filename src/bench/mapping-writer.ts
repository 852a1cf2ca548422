/**
 * A process that writes a GPU's RAM through its own mapping, standing for a guest's vCPUs
 * (the migration test and bench run it beside a migration): it maps GPU RAM through a client
 * connection it then closes (the mapping outlives it, as a VMM's outlives nothing, but the
 * device is free for the migration's own client), fills `populate` bytes with a pattern that
 * differs page by page, prints `{"pid":N,"ready":true}`, then keeps writing: 64 stores per
 * millisecond into a hot set of `hot` 64 KiB pages, and every 64th store into a page past the
 * filled part (never written before, up to 4 MiB past it). It runs until killed; `migrate
 * --pause-pid` stops it when the source stops.
 *   mapping-writer.ts SOCKET POPULATE_BYTES HOT_PAGES
 */
import { VfioUserClient } from '../vfio-user/index.ts';

const GPU_RAM_REGION = 9;
const PAGE = 0x10000;
const FRESH_SPAN = 4 * 1024 * 1024;

const [socket, populateArg, hotArg] = process.argv.slice(2);
if (socket === undefined || populateArg === undefined || hotArg === undefined) {
  process.stderr.write('usage: mapping-writer.ts SOCKET POPULATE_BYTES HOT_PAGES\n');
  process.exit(2);
}
const populate = Number(populateArg);
const hot = Math.max(1, Number(hotArg));

const client = await VfioUserClient.connect(socket);
const ram = await client.mapRegion(GPU_RAM_REGION);
client.close();

const chunk = new Uint8Array(1024 * 1024);
for (let at = 0; at < populate; at += chunk.length) {
  for (let i = 0; i < chunk.length; i += 8) {
    const v = ((at + i) / 8) * 2654435761;
    chunk[i] = v & 0xff;
    chunk[i + 1] = (v >>> 8) & 0xff;
    chunk[i + 3] = (v >>> 24) & 0xff;
  }
  ram.write(BigInt(at), chunk.subarray(0, Math.min(chunk.length, populate - at)));
}
process.stdout.write(`${JSON.stringify({ pid: process.pid, ready: true })}\n`);

let n = 0;
const word = new Uint8Array(64);
const dv = new DataView(word.buffer);
function burst(): void {
  for (let i = 0; i < 64; i++, n++) {
    dv.setUint32(0, n, true);
    const fresh = n % 64 === 63;
    const offset = fresh
      ? populate + ((n * PAGE) % FRESH_SPAN)
      : (n % hot) * PAGE + ((n * 64) % PAGE);
    ram.write(BigInt(offset), word);
  }
  setTimeout(burst, 1);
}
burst();
