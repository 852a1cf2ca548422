/**
 * `vfio-nvlink2 guest`: what a pseries guest saw of the GPUs and NVLink bridges a `serve`
 * directory offers, had QEMU 4.1–8.1 been given them (hw/vfio/pci-quirks.c,
 * hw/ppc/spapr_pci_nvlink2.c; see src/guest). Connects to each socket in turn, reads config
 * space and region info over vfio-user, closes the connection (serve allows one client per
 * device), then computes the guest placement and the guest device-tree fragment.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { serializeFdt, toDts } from '../fdt/index.ts';
import {
  buildGuestTree,
  classifyDevice,
  type DeviceFacts,
  formatGraceQemuPlan,
  formatPlacement,
  GuestPlacementError,
  graceQemuPlan,
  placeGuest,
  placementToJson,
  readRemoteFacts,
  type VphbRequest,
} from '../guest/index.ts';
import { graceGpuModel } from '../nvgrace/index.ts';
import { deviceNameForSocket, readDevicesList, servedDevices } from '../serve-dir/index.ts';
import { hex } from '../text/index.ts';
import { VfioError } from '../vfio/index.ts';
import { QEMU_MSG_TIMEOUT_MS, ReplyError, VfioUserClient } from '../vfio-user/index.ts';
import { parseCliArgs as parseArgs } from './args.ts';
import { CliError, cliErrorOf, usageError } from './cli-error.ts';
import { logLine, printLine, writeOutputFile, writeStdout } from './output.ts';
import { socketFailure } from './socket-advice.ts';

const USAGE = `usage: vfio-nvlink2 guest --socket-dir DIR | SOCKET... [--numa-nodes N] [--phb N]
                          [--phb-per-group] [--dts | --json] [-o FILE.dtb]

  The guest's view of the served GPUs and NVLink bridges as QEMU 4.1–8.1 built it: GPU RAM
  from 64 TiB (2 TiB per vPHB), ATSD pages from 128 TiB, NUMA nodes, phandles, and the guest
  device-tree fragment. Devices get guest devfns slot 0, 1, … in devices.json order.
  --socket-dir DIR  every socket listed in DIR/devices.json (what \`serve --socket-dir\` writes)
  SOCKET...         these sockets (IOMMU groups from a devices.json beside them, if any)
  --numa-nodes N    guest NUMA nodes (GPU nodes are numbered from max(1, N))
  --phb N           index of the (first) vPHB, 0..30 (default 0)
  --phb-per-group   one vPHB per IOMMU group (N, N+1, …), as ATSD needs
  --dts             print the guest tree fragment as DTS
  --json            print the placement as JSON
  -o, --output FILE.dtb  also write the fragment as a DTB
  Exits 1 when QEMU would have reported an error (the output is still printed).
  Grace GPUs (nvgrace-gpu): the QEMU 9.0+ options they need instead — a pcie-root-port with
  pref64-reserve for BAR2 + BAR4, vfio-user-pci, 8 memory-less NUMA nodes per GPU tied to it
  by acpi-generic-initiator (--json: the same as data).`;

interface GuestArgs {
  readonly socketDir: string | undefined;
  readonly sockets: readonly string[];
  readonly numaNodes: number;
  readonly phb: number;
  readonly phbPerGroup: boolean;
  readonly format: 'table' | 'dts' | 'json';
  readonly output: string | undefined;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      'socket-dir': { type: 'string' },
      'numa-nodes': { type: 'string' },
      phb: { type: 'string' },
      'phb-per-group': { type: 'boolean' },
      dts: { type: 'boolean' },
      json: { type: 'boolean' },
      output: { type: 'string', short: 'o' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

function intArg(name: string, text: string | undefined, fallback: number, max: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > max)
    throw new CliError('guest', 'USAGE', `--${name} wants an integer 0..${max}, not '${text}'`);
  return n;
}

/** @throws CliError (exit 2) for bad usage */
export function parseGuestArgs(argv: string[]): GuestArgs | 'help' {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw usageError('guest', err);
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  const socketDir = values['socket-dir'];
  if (socketDir === undefined && positionals.length === 0)
    throw new CliError('guest', 'USAGE', `give --socket-dir DIR or SOCKET...\n\n${USAGE}`);
  if (socketDir !== undefined && positionals.length > 0)
    throw new CliError('guest', 'USAGE', 'give SOCKET... or --socket-dir DIR, not both');
  if (values.dts && values.json) throw new CliError('guest', 'USAGE', '--dts or --json, not both');
  return {
    socketDir,
    sockets: positionals,
    numaNodes: intArg('numa-nodes', values['numa-nodes'], 0, 1024),
    phb: intArg('phb', values.phb, 0, 30),
    phbPerGroup: values['phb-per-group'] ?? false,
    format: values.dts ? 'dts' : values.json ? 'json' : 'table',
    output: values.output,
  };
}

interface Target {
  readonly socket: string;
  readonly address: string;
  readonly iommuGroup: number | null;
}

/** `read()` of the devices.json at `path`, its failures as one line of guest's. */
function readDevicesJson<T>(path: string, read: () => T): T {
  try {
    return read();
  } catch (e) {
    if (e instanceof VfioError) throw cliErrorOf('guest', e);
    throw new CliError(
      'guest',
      'FILE',
      `cannot read ${path}: ${e instanceof Error ? e.message : e}`,
    );
  }
}

function targetsOf(args: GuestArgs): Target[] {
  if (args.socketDir !== undefined) {
    const list = join(args.socketDir, 'devices.json');
    if (!existsSync(list))
      throw new CliError(
        'guest',
        'NOT_FOUND',
        `no ${list} (is \`serve --socket-dir ${args.socketDir}\` running?)`,
      );
    const dir = args.socketDir;
    const targets = readDevicesJson(list, () => servedDevices(dir));
    if (targets.length === 0)
      throw new CliError('guest', 'NOT_FOUND', `${list} lists no served device`);
    return targets;
  }
  return args.sockets.map((socket) => {
    const address = nameOf(socket);
    const list = join(dirname(socket), 'devices.json');
    const entries = existsSync(list) ? readDevicesJson(list, () => readDevicesList(list)) : [];
    const hit = entries.find((e) => e.socket === socket || e.address === address);
    return { socket, address, iommuGroup: hit?.iommuGroup ?? null };
  });
}

function nameOf(socket: string): string {
  try {
    return deviceNameForSocket(socket);
  } catch (e) {
    if (e instanceof VfioError) throw cliErrorOf('guest', e);
    throw e;
  }
}

/** A failed conversation with a device as guest's line: the error's code, then `where: why`. */
function failure(where: string, e: unknown): CliError {
  if (e instanceof ReplyError && e.code === 'EBUSY')
    return new CliError('guest', 'EBUSY', `${where}another client holds it`);
  return socketFailure('guest', e, where);
}

async function readTarget(t: Target): Promise<DeviceFacts> {
  let client: VfioUserClient;
  try {
    client = await VfioUserClient.connect(t.socket, { replyTimeoutMs: QEMU_MSG_TIMEOUT_MS });
  } catch (e) {
    throw failure(`${t.address}: cannot connect to ${t.socket}: `, e);
  }
  try {
    return await readRemoteFacts(client, t.address, t.iommuGroup);
  } catch (e) {
    throw failure(`${t.address} (${t.socket}): `, e);
  } finally {
    client.close();
  }
}

/** One vPHB with every device, or one per IOMMU group (unknown: per tgt) from --phb up. */
function vphbsOf(facts: readonly DeviceFacts[], args: GuestArgs): VphbRequest[] {
  if (!args.phbPerGroup) return [{ index: args.phb, devices: facts.map((f) => ({ facts: f })) }];
  const groups = new Map<string, DeviceFacts[]>();
  for (const f of facts) {
    const role = classifyDevice(f);
    const key =
      f.iommuGroup !== null
        ? `group ${f.iommuGroup}`
        : role.role === 'plain'
          ? `device ${f.address}`
          : `tgt ${role.tgt}`;
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  const list = [...groups.values()];
  if (args.phb + list.length - 1 > 30)
    throw new CliError(
      'guest',
      'PLACEMENT',
      `${list.length} IOMMU groups do not fit vPHBs ${args.phb}..30`,
    );
  return list.map((devices, i) => ({
    index: args.phb + i,
    devices: devices.map((f) => ({ facts: f })),
  }));
}

/**
 * `vfio-nvlink2 guest`: prints the guest's view of the served GPUs; returns the exit status.
 * @throws CliError USAGE, NOT_FOUND, FILE, PLACEMENT, or the errno of a device that cannot be read.
 */
export async function run(argv: string[]): Promise<number> {
  const args = parseGuestArgs(argv);
  if (args === 'help') {
    await printLine(USAGE);
    return 0;
  }
  const targets = targetsOf(args);
  const facts: DeviceFacts[] = [];
  for (const t of targets) facts.push(await readTarget(t));
  const grace = facts.filter((f) => graceGpuModel(f.vendor, f.device) !== undefined);
  if (grace.length > 0) return printGracePlan(grace, targets, args);
  let placement: ReturnType<typeof placeGuest>;
  try {
    placement = placeGuest(vphbsOf(facts, args), { numaNodes: args.numaNodes });
  } catch (e) {
    if (e instanceof GuestPlacementError) throw cliErrorOf('guest', e);
    throw e;
  }
  const tree = buildGuestTree(placement);
  if (args.output !== undefined) writeOutputFile('guest', args.output, serializeFdt(tree));
  if (args.format === 'json') await printLine(JSON.stringify(placementToJson(placement), null, 2));
  else if (args.format === 'dts') await writeStdout(toDts(tree));
  else await writeStdout(formatPlacement(placement));
  const errors = placement.vphbs.flatMap((v) => v.errors.map((e) => `vPHB ${v.index}: ${e}`));
  // QEMU's own errors for the placement asked for (it would refuse to start): PLACEMENT lines.
  for (const e of errors) logLine(`vfio-nvlink2: guest: PLACEMENT: ${e}`);
  return errors.length > 0 ? 1 : 0;
}

const GRACE_GUEST_RAM = 512n << 20n;

/** The QEMU options for the Grace GPUs among the targets (nvgrace-gpu: no pseries placement). */
async function printGracePlan(
  facts: readonly DeviceFacts[],
  targets: readonly Target[],
  args: GuestArgs,
): Promise<number> {
  const plan = graceQemuPlan(
    facts.map((f) => ({
      address: f.address,
      socket: targets.find((t) => t.address === f.address)?.socket ?? '',
      model: graceGpuModel(f.vendor, f.device)?.model ?? '',
      barSizes: f.barSizes ?? [],
    })),
    { ramBytes: GRACE_GUEST_RAM },
  );
  if (args.format === 'json') {
    const json = JSON.stringify(
      plan,
      (_k: string, v: unknown) => (typeof v === 'bigint' ? hex(v) : v),
      2,
    );
    await printLine(json);
  } else await writeStdout(formatGraceQemuPlan(plan));
  return 0;
}
