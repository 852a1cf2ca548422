/**
 * devices.json as other processes read it: serve started with a relative --socket-dir lists
 * absolute socket paths, so a reader in another directory (guest, inspect, the bench) reaches
 * every socket (they were relative to serve's working directory before).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { readDevicesList, servedDevices } from '../src/serve-dir/index.ts';
import { ROOT } from './support/root.ts';
import { startServe } from './support/serve-process.ts';

describe('devices.json', () => {
  it('a relative --socket-dir: every socket listed by its absolute path', async () => {
    const abs = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-rel-'));
    const dir = join(abs, 'sockets');
    // startServe runs serve in ROOT; the directory is given relative to it.
    const serve = await startServe([], {
      dir: relative(ROOT, dir),
      readyFile: join(dir, 'devices.json'),
    });
    try {
      const served = readDevicesList(join(dir, 'devices.json')).filter((e) => e.socket);
      assert.equal(served.length, 18);
      for (const e of served) assert.equal(e.socket, join(dir, `${e.address}.sock`));
      for (const d of servedDevices(dir)) assert.ok(isAbsolute(d.socket) && existsSync(d.socket));
    } finally {
      await serve.stop();
      rmSync(abs, { recursive: true, force: true });
    }
  });
});
