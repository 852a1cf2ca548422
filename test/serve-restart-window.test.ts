/**
 * `serve --state-dir` restarted after kill -9 writes machine.state only after its ready signal
 * (issue 8: restart to accepting). Two things must hold for that: a client that connects the
 * moment a socket accepts, before or at READY=1, is served the state the dead server's client
 * wrote (its connection waits in the listen backlog until start-up is done); and a server
 * killed before that write leaves a directory that restarts to the same machine (the dead
 * clients' partition released again from the machine.state on disk).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeStateFile } from '../src/state-dir/index.ts';
import { VfioUserClient } from '../src/vfio-user/index.ts';
import { cliArgs, ROOT } from './support/cli.ts';
import { GPU, type ServeProcess, startServe, waitFor } from './support/serve-process.ts';
import { within } from './support/wait.ts';

const GPU_RAM = 9;
const CONFIG = 7;
const RAM_AT = 0x5000n;
const RAM = new Uint8Array(3000).map((_, i) => (i * 7 + 3) & 0xff);

const root = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-restart-window-'));
const stateDir = join(root, 'state');
const socketDir = join(root, 'sock');
const socket = join(socketDir, `${GPU}.sock`);
const machineState = join(stateDir, 'machine.state');
let configBefore: Uint8Array;
/** machine.state as the killed server left it: its client's partition still listed. */
let leftByKill: Buffer;
const children: ChildProcess[] = [];
const servers: ServeProcess[] = [];

interface MachineBody {
  partitions: { pid: number; lpid: number; devices: string[] }[];
  lpids: number[];
}

function machineBody(): MachineBody {
  return decodeStateFile(machineState, 'machine', readFileSync(machineState)) as MachineBody;
}

/** serve on the state dir with --ready-fd 3 (a pipe): the child, and READY=1 arriving on it. */
function spawnServe(): { child: ChildProcess; ready: Promise<string> } {
  const child = spawn(
    process.execPath,
    cliArgs('serve', '--socket-dir', socketDir, '--state-dir', stateDir, '--ready-fd', '3'),
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const fd3 = child.stdio[3] as NodeJS.ReadableStream;
  let text = '';
  fd3.on('data', (d: Buffer) => {
    text += d.toString();
  });
  const ready = new Promise<string>((resolve, reject) => {
    fd3.once('end', () => (text ? resolve(text) : reject(new Error(`serve failed: ${err}`))));
  });
  return { child, ready };
}

async function kill9(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await within('serve to die on SIGKILL', exited);
}

before(async () => {
  const first = await startServe(['--state-dir', stateDir], { dir: socketDir });
  servers.push(first);
  const gpu = await VfioUserClient.connect(first.socket(GPU));
  await gpu.regionWrite(GPU_RAM, RAM_AT, RAM);
  await gpu.regionWrite(CONFIG, 0x04n, new Uint8Array([0x06, 0x00]));
  configBefore = await gpu.regionRead(CONFIG, 0n, 256);
  assert.equal(await first.stop('SIGKILL'), null); // the client still holds its partition
  gpu.close();
  leftByKill = readFileSync(machineState);
  assert.equal(machineBody().partitions.length, 1, 'the killed client held a partition');
});

after(async () => {
  for (const c of children) await kill9(c).catch(() => {});
  for (const s of servers) await s.stop('SIGKILL').catch(() => {});
  rmSync(root, { recursive: true, force: true });
});

describe('serve --state-dir restart: the window before machine.state is written', () => {
  it('a client connecting as soon as the socket accepts reads back what was written before kill -9', async () => {
    const { child, ready } = spawnServe();
    // The dead server's socket is still there: connect(2) is refused until the new one listens.
    const gpu = await waitFor(
      'the restarted server to accept',
      async () => {
        try {
          // connect(2) alone: accepted into the backlog while serve may still be starting
          return await VfioUserClient.connect(socket, { negotiate: false });
        } catch {
          return undefined;
        }
      },
      undefined,
      1,
    );
    try {
      await gpu.negotiate(0, 0, null);
      assert.deepEqual(await gpu.regionRead(GPU_RAM, RAM_AT, RAM.length), RAM);
      assert.deepEqual(await gpu.regionRead(CONFIG, 0n, 256), configBefore);
      assert.equal(await within('READY=1 on fd 3', ready), 'READY=1\n');
    } finally {
      gpu.close();
    }
    // Its release written: no partition (the dead client's and this one's both gone).
    await waitFor('machine.state without partitions', () => machineBody().partitions.length === 0);
    await kill9(child);
  });

  it('a server killed before its machine.state write restarts to the same machine', async () => {
    const { child, ready } = spawnServe();
    await within('READY=1 on fd 3', ready);
    await kill9(child);
    // As if it had died before writing machine.state: the killed client's partition listed.
    writeFileSync(machineState, leftByKill);
    const again = spawnServe();
    await within('READY=1 on fd 3', again.ready);
    const gpu = await VfioUserClient.connect(socket);
    try {
      assert.deepEqual(await gpu.regionRead(GPU_RAM, RAM_AT, RAM.length), RAM);
      assert.deepEqual(await gpu.regionRead(CONFIG, 0n, 256), configBefore);
    } finally {
      gpu.close();
    }
    // The dead partition released again, and this client's once it closed: LPID 0 and the
    // reserved one only, as the first restart left it.
    await waitFor('machine.state without partitions', () => {
      const body = machineBody();
      return body.partitions.length === 0 && body.lpids.join(',') === '0,4095';
    });
    await kill9(again.child);
  });
});
