/**
 * Client and server wire layers across two processes (test-toy-server.ts in a child): VERSION
 * negotiation (0.0, short JSON, subset of the client's caps), in-order dispatch with async
 * handlers, VfioError → errno replies, handler bugs → EIO, NO_REPLY, a server→client DMA_READ
 * inside a handler while the client waits on its own request, fd ownership, and a framing error
 * that closes one client while another keeps being served.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { closeFd, eventfdCreate, memfdCreate } from '../native/index.ts';
import { VfioUserClient } from './client.ts';
import { Command } from './constants.ts';
import { packHeader } from './test-fixtures.ts';
import { serializeVersionJson } from './version-capabilities.ts';
import { ReplyError } from './wire-errors.ts';

const SERVER = join(dirname(fileURLToPath(import.meta.url)), 'test-toy-server.ts');

describe('ServerConnection and VfioUserClient across processes', () => {
  let dir = '';
  let path = '';
  let child: ChildProcess;
  let client: VfioUserClient;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vfio-user-server-'));
    path = join(dir, 'toy.sock');
    child = spawn(process.execPath, ['--import', 'tsx', SERVER, path], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve) => child.stdout?.once('data', () => resolve()));
    client = await VfioUserClient.connect(path);
  });

  after(async () => {
    client.close();
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  });

  test('VERSION: 0.0, the lower limits, no capability the client did not propose', () => {
    assert.deepEqual(client.version, {
      major: 0,
      minor: 0,
      capabilities: { maxMsgFds: 8, maxDataXferSize: 1 << 20, maxDmaMaps: 65535 },
    });
    // QEMU reads the reply into a buffer the size of its request: keep the JSON short.
    assert.ok(serializeVersionJson(client.version?.capabilities ?? null).length < 200);
  });

  test('a 0.3 proposal gets 0.0; another major gets EINVAL', async () => {
    const other = await VfioUserClient.connect(path, { minor: 3 });
    assert.equal(other.version?.minor, 0);
    other.close();
    await assert.rejects(
      VfioUserClient.connect(path, { major: 1 }),
      (e: unknown) => e instanceof ReplyError && e.remoteErrno === 22,
    );
  });

  test('commands are answered in order even when a handler is asynchronous', async () => {
    await client.regionWrite(0, 0n, Uint8Array.of(7));
    const reset = client.reset();
    const read = client.regionRead(0, 0n, 1); // queued behind the 20 ms reset
    await reset;
    assert.deepEqual(await read, Uint8Array.of(0));
  });

  test('VfioError errnos reach the client; handler bugs become EIO; unknown commands EINVAL', async () => {
    await assert.rejects(
      client.regionRead(0, 60n, 8),
      (e: unknown) => e instanceof ReplyError && e.remoteErrno === 14,
    );
    await assert.rejects(
      client.getRegionInfo(0),
      (e: unknown) => e instanceof ReplyError && e.remoteErrno === 5,
    );
    const reply = client.expectReply(0x7777, 99);
    client.sendRaw(packHeader(0x7777, 99, 16, 0));
    const m = await reply;
    assert.equal(m.header.errno, 22);
  });

  test('NO_REPLY: a failing posted write gets no reply, the next command is answered', async () => {
    await client.regionWrite(0, 1000n, Uint8Array.of(1), { posted: true });
    await client.regionWrite(0, 8n, Uint8Array.of(5, 6), { posted: true });
    assert.deepEqual(await client.regionRead(0, 8n, 2), Uint8Array.of(5, 6));
  });

  test('a handler reads client memory by DMA_READ while the client awaits its request', async () => {
    const memory = new Uint8Array(0x2000);
    memory.set(Uint8Array.of(0xca, 0xfe, 0xba, 0xbe), 0x1000);
    await client.dmaMap({ address: 0n, size: 0x2000n, backing: { bytes: memory } });
    assert.deepEqual(await client.regionRead(1, 0n, 4), Uint8Array.of(0xca, 0xfe, 0xba, 0xbe));
    await client.dmaUnmap({ all: true }).catch(() => undefined);
  });

  test('fds arrive close-on-exec at the server; untaken ones are closed for the handler', async () => {
    const memfd = memfdCreate('dma', 4096n);
    await client.dmaMap({ address: 0x10000n, size: 4096n, backing: { fd: memfd } });
    assert.deepEqual(await client.regionRead(2, 0n, 1), Uint8Array.of(1));
    const efd = eventfdCreate();
    await client.setIrqs({ index: 0, count: 1, eventfds: [efd] });
    closeFd(efd);
    closeFd(memfd);
  });

  test('DEVICE_GET_INFO', async () => {
    assert.deepEqual(await client.getDeviceInfo(), {
      argsz: 16,
      flags: 3,
      numRegions: 9,
      numIrqs: 5,
    });
  });

  test('a framing error closes that client only', async () => {
    const bad = await VfioUserClient.connect(path);
    bad.sendRaw(packHeader(1, Command.REGION_READ, 4, 0));
    const reason = await bad.channel.closed;
    assert.equal(reason.kind, 'eof');
    assert.deepEqual(await client.regionRead(0, 8n, 2), Uint8Array.of(5, 6));
  });
});
