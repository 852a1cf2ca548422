/**
 * `vfio-nvlink2 topology [--dt FILE | --socket-dir DIR] [--svg FILE] [--html FILE] [--dot]`: a
 * picture of the machine (src/topology): chips, NPUs, bridges, GPUs, every NVLink with its speed,
 * tgt addresses, IOMMU groups, ATSD registers and GPU memory windows, laid out by Graphviz.
 * With --socket-dir, the tree a running serve serves (DIR/platform.dtb) and its live state
 * (DIR/devices.json, DIR/state.json): clients, LPIDs, ATSD bindings, touched GPU RAM.
 */

import type { Fdt } from '../fdt/index.ts';
import { buildHost, HostError } from '../platform/index.ts';
import {
  buildTopology,
  type LiveState,
  LiveStateError,
  readLive,
  renderSvg,
  topologyDot,
  topologyHtml,
} from '../topology/index.ts';
import { parseCliArgs as parseArgs } from './args.ts';
import { CliError, usageError } from './cli-error.ts';
import { printLine, writeOutputFile, writeStdout } from './output.ts';
import { readPlatformArg } from './platform-arg.ts';

const USAGE = `usage: vfio-nvlink2 topology [--dt FILE | --socket-dir DIR] [--svg FILE] [--html FILE] [--dot]

  A picture of the machine: chips, NPUs and their NVLink bridges, GPUs, every NVLink (CPU-GPU
  and GPU-GPU) with its speed, tgt addresses, IOMMU groups, ATSD registers, GPU memory
  windows; laid out by Graphviz.
  --dt FILE          the platform in FILE (DTB or DTS; default: the built-in 6-GPU Witherspoon)
  --socket-dir DIR   the machine a running \`serve --socket-dir DIR\` serves, with its live state
  --svg FILE         write the picture as SVG
  --html FILE        write a page with the picture and its tables
  --dot              print the Graphviz DOT source on stdout
  At least one of --svg, --html, --dot.`;

interface TopologyArgs {
  readonly dt: string | undefined;
  readonly socketDir: string | undefined;
  readonly svg: string | undefined;
  readonly html: string | undefined;
  readonly dot: boolean;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: false,
    options: {
      dt: { type: 'string' },
      'socket-dir': { type: 'string' },
      svg: { type: 'string' },
      html: { type: 'string' },
      dot: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

/** @throws CliError (exit 2) for bad usage */
export function parseTopologyArgs(argv: string[]): TopologyArgs | 'help' {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw usageError('topology', err);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  if (v.dt !== undefined && v['socket-dir'] !== undefined)
    throw new CliError('topology', 'USAGE', '--dt FILE or --socket-dir DIR, not both');
  if (v.svg === undefined && v.html === undefined && !v.dot)
    throw new CliError('topology', 'USAGE', `give --svg FILE, --html FILE or --dot\n\n${USAGE}`);
  return {
    dt: v.dt,
    socketDir: v['socket-dir'],
    svg: v.svg,
    html: v.html,
    dot: v.dot ?? false,
  };
}

function write(path: string, text: string): void {
  writeOutputFile('topology', path, text);
}

/**
 * `vfio-nvlink2 topology`: writes the SVG, HTML or DOT picture; returns the exit status.
 * @throws CliError USAGE, DT_PARSE, SOCKET_DIR (an unreadable `--socket-dir`), PLATFORM, FILE (README.md "Errors").
 */
export async function run(argv: string[]): Promise<number> {
  const args = parseTopologyArgs(argv);
  if (args === 'help') {
    await printLine(USAGE);
    return 0;
  }
  let fdt: Fdt;
  let live: LiveState | undefined;
  if (args.socketDir !== undefined) {
    try {
      ({ fdt, live } = readLive(args.socketDir));
    } catch (e) {
      if (e instanceof LiveStateError) throw new CliError('topology', 'SOCKET_DIR', e.message);
      throw e;
    }
  } else {
    fdt = readPlatformArg('topology', args.dt);
  }
  let model: ReturnType<typeof buildTopology>;
  try {
    model = buildTopology(buildHost(fdt));
  } catch (e) {
    if (e instanceof HostError)
      throw new CliError('topology', 'PLATFORM', `${fdt.source}: ${e.message}`);
    throw e;
  }
  const dot = topologyDot(model, live);
  if (args.svg !== undefined || args.html !== undefined) {
    const svg = await renderSvg(dot);
    if (args.svg !== undefined) write(args.svg, svg);
    if (args.html !== undefined) write(args.html, topologyHtml(model, svg, live));
  }
  if (args.dot) await writeStdout(dot);
  return 0;
}
