/**
 * The wire forms of `inspect` (`inspect SOCKET`, `inspect --socket-dir DIR`): their arguments,
 * and the descriptions of the named sockets' devices through a vfio-user client
 * (src/vfio-user/client/describe-remote.ts), one connection at a time.
 */
import { existsSync } from 'node:fs';
import { CodedError } from '../errors/index.ts';
import { deviceNameForSocket, socketsInDir } from '../serve-dir/index.ts';
import { type DeviceDescription, VfioError } from '../vfio/index.ts';
import { atSocket, DeviceSocketError, describeRemote } from '../vfio-user/index.ts';
import { parseCliArgs as parseArgs } from './args.ts';

/** `inspect SOCKET` / `inspect --socket-dir DIR` arguments. */
export interface RemoteInspectArgs {
  readonly sockets: readonly string[];
  /** The device name when one socket was named (prints like `inspect --dt ADDRESS`). */
  readonly address: string | undefined;
  readonly hex: boolean;
  readonly json: boolean;
}

/** A wrong command line for the wire forms of inspect (code USAGE); the message names the argument. */
export class RemoteInspectUsageError extends CodedError<'USAGE'> {
  override readonly name: string = 'RemoteInspectUsageError';
  constructor(message: string) {
    super('USAGE', message);
  }
}

/**
 * Arguments of the wire forms of inspect, or null when argv is the in-process form (--dt) or
 * names no socket.
 * @throws RemoteInspectUsageError for bad usage, VfioError ENOENT for a missing directory.
 */
export function parseRemoteInspectArgs(argv: string[]): RemoteInspectArgs | null {
  if (argv.includes('--dt') || argv.includes('--help') || argv.includes('-h')) return null;
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw new RemoteInspectUsageError(
      err instanceof Error ? (err.message.split(/\.\s/)[0] ?? err.message) : String(err),
    );
  }
  const { values, positionals } = parsed;
  const dir = values['socket-dir'];
  if (dir === undefined && positionals.length === 0) return null;
  if (dir !== undefined && positionals.length > 0)
    throw new RemoteInspectUsageError('give SOCKET or --socket-dir DIR, not both');
  if (positionals.length > 1)
    throw new RemoteInspectUsageError(`one SOCKET at a time (got ${positionals.length})`);
  const options = { hex: values.hex ?? false, json: values.json ?? false };
  if (dir !== undefined) {
    if (!existsSync(dir)) throw new VfioError('ENOENT', `no socket directory ${dir}`);
    return { sockets: socketsInDir(dir), address: undefined, ...options };
  }
  const socket = positionals[0] as string;
  return { sockets: [socket], address: deviceNameForSocket(socket), ...options };
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      'socket-dir': { type: 'string' },
      hex: { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
}

/**
 * A device of `--socket-dir DIR` that failed instead of being described (an errno reply such as
 * EBUSY: in use, or a client of another uid still holds its memory; no reply within QEMU's
 * timeout; nobody listening; the connection closed mid-describe): reported on its own line
 * while the others are described.
 */
export interface RemoteRefusal {
  readonly name: string;
  readonly error: DeviceSocketError;
}

/** Whether an entry of inspectOverWire's answer is a device that failed to be described. */
export function isRefusal(d: DeviceDescription | RemoteRefusal): d is RemoteRefusal {
  return 'error' in d && d.error instanceof DeviceSocketError;
}

/**
 * The descriptions for parsed wire arguments, one connection at a time; with several sockets
 * (`--socket-dir`), a device that fails in any expected way (an errno reply, a timeout, refused
 * or cut connection) is a RemoteRefusal in its place.
 * @throws DeviceSocketError naming the socket, with its cause's errno (one socket only).
 */
export async function inspectOverWire(
  args: RemoteInspectArgs,
): Promise<(DeviceDescription | RemoteRefusal)[]> {
  const out: (DeviceDescription | RemoteRefusal)[] = [];
  for (const socket of args.sockets) {
    let name: string;
    try {
      name = args.address ?? deviceNameForSocket(socket);
    } catch (e) {
      throw atSocket(socket, e);
    }
    try {
      out.push(await describeRemote(socket, name));
    } catch (e) {
      // Every per-device failure is that device's line; only one named socket fails the command.
      if (args.address !== undefined || !(e instanceof DeviceSocketError)) throw e;
      out.push({ name, error: e });
    }
  }
  return out;
}
