/**
 * Sessions against the real server: one client per device (a second gets EBUSY while the first
 * stays), device state surviving a disconnect, everything a client held released when it goes
 * (DMA fds, eventfds, mappings, its LPID: tables and server fds back to where they were), one
 * partition and LPID per peer process across devices (a Python client is the second process),
 * and --lpid pinning.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { closeFd, eventfdCreate, memfdCreate } from '../src/native/index.ts';
import { IrqSetFlag, ReplyError, VfioUserClient } from '../src/vfio-user/index.ts';
import { PYTHON } from './support/native/python.ts';
import {
  BRIDGE,
  connectWhenFree,
  GPU,
  type ServeProcess,
  type ServerState,
  startServe,
  waitFor,
} from './support/serve-process.ts';

const SCRIPT = new URL('./support/vfio_user_client.py', import.meta.url).pathname;
const bytes = (...b: number[]) => new Uint8Array(b);

let serve: ServeProcess;
before(async () => {
  serve = await startServe();
});
after(async () => {
  await serve.stop();
});

function mappedLpids(state: ServerState): number[] {
  return state.firmware.flatMap((n) => n.bdfMap.map((e) => e.lpid));
}

function atsdLpids(state: ServerState): number[] {
  return state.firmware.flatMap((n) => n.atsd.map((a) => a.lpid));
}

async function released(): Promise<ServerState> {
  return waitFor('the server to release every partition', () => {
    const s = serve.state();
    return s.partitions.length === 0 ? s : undefined;
  });
}

describe('one client per device', () => {
  it('refuses a second client with EBUSY while the first stays connected', async () => {
    const first = await connectWhenFree(serve, GPU);
    try {
      await assert.rejects(
        VfioUserClient.connect(serve.socket(GPU)),
        (e: unknown) => e instanceof ReplyError && e.remoteErrno === 16,
      );
      assert.equal((await first.getDeviceInfo()).numRegions, 10, 'the first session is untouched');
      await waitFor('the refusal log line', () => /refusing pid \d+/.test(serve.stderr()));
    } finally {
      first.close();
    }
    await released();
  });

  it('keeps device state across a disconnect: GPU RAM, BAR and config space', async () => {
    const a = await connectWhenFree(serve, GPU);
    await a.regionWrite(9, 0x4000n, bytes(1, 2, 3, 4, 5));
    await a.regionWrite(0, 0x3000n, bytes(7, 7));
    await a.regionWrite(7, 4n, bytes(0x06, 0x00));
    a.close();
    await released();
    const b = await connectWhenFree(serve, GPU);
    try {
      assert.deepEqual(await b.regionRead(9, 0x4000n, 5), bytes(1, 2, 3, 4, 5));
      assert.deepEqual(await b.regionRead(0, 0x3000n, 2), bytes(7, 7));
      assert.deepEqual(await b.regionRead(7, 4n, 2), bytes(0x06, 0x00));
    } finally {
      b.close();
    }
    await released();
  });
});

describe('release on disconnect', () => {
  /** A guest session holding everything it can: mappings, DMA fd, eventfds, the LPID. */
  async function holdEverything(): Promise<ServerState> {
    const gpu = await connectWhenFree(serve, GPU);
    const bridge = await connectWhenFree(serve, BRIDGE);
    const ram = await gpu.mapRegion(9);
    const atsd = await bridge.mapRegion(9);
    const guest = memfdCreate('guest-ram', 1n << 20n);
    await gpu.dmaMap({ address: 0x1000_0000n, size: 1n << 20n, backing: { fd: guest } });
    const efd = eventfdCreate();
    await gpu.setIrqs({
      index: 2,
      count: 1,
      flags: IrqSetFlag.DATA_EVENTFD | IrqSetFlag.ACTION_TRIGGER,
      eventfds: [efd],
    });
    const state = await waitFor('both devices in the partition', () => {
      const s = serve.state();
      return s.partitions[0]?.devices.length === 2 ? s : undefined;
    });
    ram.unmap();
    atsd.unmap();
    closeFd(guest);
    closeFd(efd);
    gpu.close();
    bridge.close();
    return state;
  }

  it('gives back the LPID, the firmware mappings and every descriptor', async () => {
    const boot = serve.state();
    assert.deepEqual(boot.lpidsInUse, [0, 4095], "KVM's host and reserved LPIDs");
    assert.ok(
      mappedLpids(boot).every((l) => l === 0),
      'every GPU mapped to the host at boot',
    );

    const held = await holdEverything();
    assert.deepEqual(held.partitions, [{ pid: process.pid, lpid: 1, devices: [BRIDGE, GPU] }]);
    assert.deepEqual(held.lpidsInUse, [0, 1, 4095]);
    assert.ok(mappedLpids(held).includes(1), 'the GPU is mapped to LPID 1 (KVM set)');
    assert.ok(atsdLpids(held).includes(1), "its bridge's ATSD register is bound to LPID 1");
    const after1 = await released();
    const fds1 = serve.fdCount();

    assert.deepEqual(after1.lpidsInUse, [0, 4095]);
    assert.ok(
      mappedLpids(after1).every((l) => l === 0),
      'unmapped: back to LPID 0',
    );
    assert.ok(atsdLpids(after1).every((l) => l === 0));

    const held2 = await holdEverything();
    assert.equal(held2.partitions[0]?.lpid, 1, 'the freed LPID is reused (find_first_zero_bit)');
    const after2 = await released();
    assert.equal(serve.fdCount(), fds1, 'server descriptors back to where they were');
    assert.deepEqual(after2.lpidsInUse, after1.lpidsInUse);
    assert.deepEqual(mappedLpids(after2), mappedLpids(after1));
  });
});

describe('partitions', () => {
  it('gives each peer process its own LPID, shared by all its devices', async () => {
    const GPU2 = serve.devices().filter((d) => d.role === 'gpu')[1]?.address ?? 'no second GPU';
    const mine = await connectWhenFree(serve, GPU);
    const py = spawn(PYTHON, [SCRIPT, serve.socket(GPU2), '--hold'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        py.stdout.once('data', (d: Buffer) => resolve(d.toString()));
        py.once('exit', (code) => reject(new Error(`python exited ${code}`)));
      });
      assert.deepEqual(JSON.parse(line).version, [0, 0]);
      const state = await waitFor('two partitions', () => {
        const s = serve.state();
        return s.partitions.length === 2 ? s : undefined;
      });
      const byPid = new Map(state.partitions.map((p) => [p.pid, p]));
      assert.deepEqual(byPid.get(process.pid)?.devices, [GPU]);
      assert.deepEqual(byPid.get(py.pid ?? -1)?.devices, [GPU2]);
      assert.notEqual(byPid.get(process.pid)?.lpid, byPid.get(py.pid ?? -1)?.lpid);
    } finally {
      py.stdin.end();
      mine.close();
    }
    await released();
  });
});

describe('--lpid', () => {
  it('pins the LPID of every partition', async () => {
    const pinned = await startServe(['--lpid', '7']);
    try {
      const c = await connectWhenFree(pinned, GPU);
      const s = await waitFor('the pinned partition', () => pinned.state().partitions[0]);
      assert.equal(s.lpid, 7);
      assert.deepEqual(pinned.state().lpidsInUse, [0, 7, 4095]);
      assert.ok(mappedLpids(pinned.state()).includes(7));
      c.close();
      await waitFor('release', () => pinned.state().partitions.length === 0);
      assert.deepEqual(pinned.state().lpidsInUse, [0, 4095]);
    } finally {
      await pinned.stop();
    }
  });
});
