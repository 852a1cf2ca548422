/**
 * `vfio-nvlink2 inspect --dt [FILE] [ADDRESS] [--hex] [--json]`: a device as a VMM sees it
 * through VFIO, in process — the host is built from the tree (the built-in Witherspoon when no
 * FILE), the device opened with the NVLink2 hooks (Linux 5.12 vfio_pci_enable order), then
 * described by src/vfio/describe.ts: device info, every region's info decoded (with --hex the
 * raw GET_REGION_INFO reply), IRQ info and a config-space summary. Without ADDRESS every GPU
 * and NVLink bridge is shown. --json prints the description (an array for several devices).
 * Kernel log lines the subdriver emits (dev_warn …) go to stderr. `inspect --socket-dir DIR`
 * ends with the device memory each GPU holds against the server's budget (DIR/state.json, read
 * once serve has released inspect's own sessions, so what they created is counted).
 */
import { existsSync, type Stats, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createMachine, type Machine } from '../machine/index.ts';
import { isSystemCallError } from '../native/index.ts';
import type { KernelLogLine } from '../nvlink2/index.ts';
import type { Host, PciFunction } from '../platform/index.ts';
import { HostError } from '../platform/index.ts';
import {
  parseServeState,
  readUntrustedFile,
  type ServeState,
  STATE_JSON_MAX_BYTES,
} from '../serve-dir/index.ts';
import {
  type DeviceDescription,
  describeAsText,
  describeDevice,
  formatBytes,
  VfioError,
} from '../vfio/index.ts';
import { DeviceSocketError, QEMU_MSG_TIMEOUT_MS } from '../vfio-user/index.ts';
import { parseCliArgs as parseArgs } from './args.ts';
import { CliError, cliErrorOf, usageError } from './cli-error.ts';
import {
  inspectOverWire,
  isRefusal,
  parseRemoteInspectArgs,
  type RemoteInspectArgs,
  RemoteInspectUsageError,
  type RemoteRefusal,
} from './inspect-remote.ts';
import { logLine, printLine } from './output.ts';
import { looksLikePciAddress, parsePciAddress } from './pci-address.ts';
import { readPlatformArg, requireServable } from './platform-arg.ts';
import { socketFailure } from './socket-advice.ts';

const USAGE = `usage: vfio-nvlink2 inspect --dt [FILE] [ADDRESS] [--hex] [--json]
       vfio-nvlink2 inspect SOCKET | --socket-dir DIR [--hex] [--json]

  Show PCI functions as a VMM sees them through VFIO: device info, region info (decoded),
  IRQ info and a config-space summary, in process over the platform in FILE (a DTB, or DTS
  compiled with dtc; default: the built-in 6-GPU Witherspoon).
  ADDRESS   a PCI name like 0004:04:00.0 (default: every GPU and NVLink bridge)
  --hex     add the raw region-info reply bytes, and config space as lspci -xxx dumps it
  --json    print the description as JSON (an array when several devices are shown)
  SOCKET    a vfio-user socket of \`serve\`: the same view through the wire
  --socket-dir DIR  every device socket of a \`serve\` directory, then the device memory each
            GPU holds against the server's memory budget (DIR/state.json)`;

/**
 * The in-process form of inspect: the tree file (default: built-in), one PCI address or all, --hex,
 * --json.
 */
export interface InspectArgs {
  readonly file: string | undefined;
  readonly address: string | undefined;
  readonly hex: boolean;
  readonly json: boolean;
}

/** Parse argv. @throws CliError (exit 2) for bad usage */
export function parseInspectArgs(argv: string[]): InspectArgs | 'help' {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw usageError('inspect', err);
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  if (!values.dt)
    throw new CliError(
      'inspect',
      'USAGE',
      `give --dt [FILE], SOCKET or --socket-dir DIR\n\n${USAGE}`,
    );
  let file: string | undefined;
  let address: string | undefined;
  for (const arg of positionals) {
    if (looksLikePciAddress(arg) && !existsSync(arg)) {
      if (address !== undefined)
        throw new CliError('inspect', 'USAGE', `two addresses (${address}, ${arg})`);
      address = parsePciAddress('inspect', arg, true);
    } else if (file === undefined) file = arg;
    else throw new CliError('inspect', 'USAGE', `unexpected argument '${arg}'`);
  }
  return { file, address, hex: values.hex ?? false, json: values.json ?? false };
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      dt: { type: 'boolean' },
      hex: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

function pickFunctions(host: Host, address: string | undefined): PciFunction[] {
  if (address === undefined)
    return host.functions.filter((f) => f.role === 'gpu' || f.role === 'bridge');
  const fn = host.functionByName(address);
  if (!fn) {
    const known = host.functions.filter((f) => f.role !== 'other').map((f) => f.name);
    const hint =
      known.length > 0 ? `GPUs and bridges: ${known.join(', ')}` : 'it has no GPU or bridge';
    throw new CliError('inspect', 'NOT_FOUND', `no PCI function ${address} in this tree (${hint})`);
  }
  return [fn];
}

/**
 * Open the machine's device for `fn`, describe it, close it.
 * @throws CliError when the open fails (the hook's errno and reason)
 */
function inspectFunction(machine: Machine, fn: PciFunction): DeviceDescription {
  const device = machine.device(fn.name);
  try {
    device.open();
  } catch (err) {
    if (err instanceof VfioError) throw cliErrorOf('inspect', err, `${fn.name}: open failed: `);
    throw err;
  }
  try {
    return describeDevice(device);
  } finally {
    device.close();
  }
}

/**
 * The descriptions for parsed arguments; kernel log lines go to `log`.
 * @throws CliError DT_PARSE, PLATFORM, NOT_FOUND, or the errno of a device that fails to open.
 */
export function inspectInProcess(
  args: InspectArgs,
  log: (line: KernelLogLine) => void,
): DeviceDescription[] {
  const fdt = readPlatformArg('inspect', args.file);
  let machine: Machine;
  try {
    machine = createMachine(fdt, { log });
  } catch (err) {
    if (err instanceof HostError) throw cliErrorOf('inspect', err);
    throw err;
  }
  try {
    if (args.address === undefined) requireServable('inspect', machine.host, fdt.source);
    return pickFunctions(machine.host, args.address).map((fn) => inspectFunction(machine, fn));
  } finally {
    machine.dispose();
  }
}

function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

function formatLog(line: KernelLogLine): string {
  return `kernel: ${line.level}: ${line.device}: ${line.message}`;
}

/** `inspect SOCKET` / `--socket-dir DIR`: the same descriptions through a vfio-user client. */
async function inspectRemote(
  args: RemoteInspectArgs,
): Promise<(DeviceDescription | RemoteRefusal)[]> {
  try {
    return await inspectOverWire(args);
  } catch (err) {
    // connect(2) to a regular file is ECONNREFUSED, as to a dead socket: say which it is.
    const notSocket = args.sockets.find((s) => statOrNull(s)?.isFile() === true);
    if (notSocket !== undefined)
      throw new CliError(
        'inspect',
        'ENOTSOCK',
        `${notSocket}: a regular file, not a socket: for a device tree use \`inspect --dt ${notSocket}\``,
      );
    if (err instanceof DeviceSocketError || err instanceof VfioError || isSystemCallError(err))
      throw socketFailure('inspect', err);
    throw err;
  }
}

/**
 * The memory block of `inspect --socket-dir DIR` from DIR/state.json (written by `serve`, read
 * from `path`): the total against the budget, then each GPU's GPU RAM and BAR bytes.
 * @throws VfioError EINVAL naming `path` and the member when the text is not serve's state.
 */
export function memoryLines(stateJson: string, path = 'state.json'): string[] {
  const m = parseServeState(path, stateJson).memory;
  const budget = m.budget === null ? 'no budget' : `budget ${formatBytes(m.budget)}`;
  const lines = [
    `memory: ${formatBytes(m.touched)} touched of ${budget}, ${m.refused} write${m.refused === 1 ? '' : 's'} refused`,
  ];
  for (const g of m.gpus)
    lines.push(`  ${g.address}  GPU RAM ${formatBytes(g.gpuRam)}  BARs ${formatBytes(g.bars)}`);
  return lines;
}

/**
 * Whether the state.json text lists a partition of `pid`: serve lists a client from its
 * session's open until its release, and rewrites the file at both. False for text that is not
 * serve's (memoryLines then says what is wrong with it).
 */
export function listsPartitionOf(stateJson: string, pid: number): boolean {
  let state: ServeState;
  try {
    state = parseServeState('state.json', stateJson);
  } catch {
    return false;
  }
  return state.partitions.some((p) => p.pid === pid);
}

/**
 * The text of state.json at `path` once serve has released every session of `pid` (ours), so
 * that what our own requests created (a BAR's memory and preset registers, made by its region
 * info) is in: serve writes the file when the release runs, which may be after our close
 * returns. Reads again every STATE_POLL_MS, for at most `waitMs`, then gives the last text.
 * The file is the server's: only a regular file is read, at most STATE_JSON_MAX_BYTES.
 * @throws VfioError EINVAL naming the file (a symlink, a FIFO or other non-regular file, too
 *   long); NodeJS.ErrnoException when it cannot be opened.
 */
export async function settledState(path: string, pid: number, waitMs: number): Promise<string> {
  const deadline = Date.now() + waitMs;
  let text = readUntrustedFile(path, STATE_JSON_MAX_BYTES);
  while (listsPartitionOf(text, pid) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, STATE_POLL_MS));
    text = readUntrustedFile(path, STATE_JSON_MAX_BYTES);
  }
  return text;
}

const STATE_POLL_MS = 10;

/**
 * The memory block of `--socket-dir DIR` (its sockets' directory), if serve left state.json;
 * waited for as long as QEMU waits for a reply (serve answers within it when it lives).
 * @throws CliError naming state.json when it is there but not a regular file of bounded size.
 */
async function memoryBlock(remote: RemoteInspectArgs): Promise<string[]> {
  const first = remote.sockets[0];
  if (remote.address !== undefined || first === undefined) return [];
  try {
    const path = join(dirname(first), 'state.json');
    return memoryLines(await settledState(path, process.pid, QEMU_MSG_TIMEOUT_MS), path);
  } catch (err) {
    if (err instanceof VfioError) throw new CliError('inspect', 'FILE', err.reason);
    return []; // none (serve --device), or unreadable: no memory block
  }
}

function remoteArgs(argv: string[]): RemoteInspectArgs | null {
  try {
    return parseRemoteInspectArgs(argv);
  } catch (err) {
    if (err instanceof RemoteInspectUsageError)
      throw new CliError('inspect', 'USAGE', `${err.message}\n\n${USAGE}`);
    if (err instanceof VfioError) throw cliErrorOf('inspect', err);
    throw err;
  }
}

/**
 * `vfio-nvlink2 inspect`: in process with --dt, else over the wire; returns the exit status.
 * @throws CliError USAGE, DT_PARSE, PLATFORM, NOT_FOUND, or a device's errno.
 */
export async function run(argv: string[]): Promise<number> {
  const remote = remoteArgs(argv);
  const args = remote ?? parseInspectArgs(argv);
  if (args === 'help') {
    await printLine(USAGE);
    return 0;
  }
  const descriptions = remote
    ? await inspectRemote(remote)
    : inspectInProcess(args as InspectArgs, (line) => {
        if (line.level === 'warn' || line.level === 'err') logLine(formatLog(line));
      });
  // A device that answered with an errno (--socket-dir) is its own line, the others described;
  // each also goes to stderr as the command's error line, and the exit status is 1.
  const refused = descriptions.filter(isRefusal).map((r) => socketFailure('inspect', r.error));
  for (const line of refused) logLine(`vfio-nvlink2: ${line.message}`);
  const status = refused.length > 0 ? 1 : 0;
  if (args.json) {
    // The message is the text output's (socket, reason, hint), not the error's own.
    const entries = descriptions.map((d) => {
      if (!isRefusal(d)) return d;
      const line = socketFailure('inspect', d.error);
      return { name: d.name, error: { code: line.code, message: line.detail } };
    });
    const out = entries.length === 1 && args.address !== undefined ? entries[0] : entries;
    await printLine(JSON.stringify(out, null, 2));
    return status;
  }
  const blocks = descriptions.map((d) =>
    isRefusal(d)
      ? `${d.name}  not described: ${socketFailure('inspect', d.error).detail}`
      : describeAsText(d, { hex: args.hex }).join('\n'),
  );
  const memory = remote ? await memoryBlock(remote) : [];
  if (memory.length > 0) blocks.push(memory.join('\n'));
  await printLine(blocks.join('\n\n'));
  return status;
}
