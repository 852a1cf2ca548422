/**
 * The socket directory `serve` leaves (src/cli/serve.ts) as other processes find devices in it:
 * one socket per device named `DDDD:BB:DD.F.sock`, and devices.json beside them
 * (devices-list.ts). Read by `inspect` and `guest`.
 */
import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { VfioError } from '../vfio/index.ts';
import { readDevicesList } from './devices-list.ts';

const PCI_NAME = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i;

/**
 * The PCI name of the device behind `socket`: its file name (serve names sockets
 * DDDD:BB:DD.F.sock), else the entry of a devices.json beside it, else the file name.
 * @throws VfioError EINVAL for a devices.json beside it that is not serve's (devices-list.ts).
 */
export function deviceNameForSocket(socket: string): string {
  const base = basename(socket).replace(/\.sock$/, '');
  if (PCI_NAME.test(base)) return base.toLowerCase();
  const list = join(dirname(socket), 'devices.json');
  if (existsSync(list)) {
    const hit = readDevicesList(list).find((e) => e.socket === socket);
    if (hit !== undefined) return hit.address;
  }
  return base;
}

/**
 * The device sockets of a serve directory, in address order (what `inspect --dt` shows).
 * @throws VfioError ENOENT naming `dir` when it cannot be listed or holds no `*.sock`.
 */
export function socketsInDir(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new VfioError('ENOENT', `cannot list socket directory ${dir} (${code})`);
  }
  const sockets = names.filter((f) => f.endsWith('.sock'));
  if (sockets.length === 0) {
    throw new VfioError(
      'ENOENT',
      `no device sockets (*.sock) in ${dir}: is \`serve --socket-dir ${dir}\` running?`,
    );
  }
  return sockets.sort().map((f) => join(dir, f));
}
