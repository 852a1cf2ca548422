/**
 * `vfio-nvlink2 dt diff A B [--json]`: what changed from tree A to tree B (DTB, DTS, or a live
 * tree directory such as /proc/device-tree, read with dtc -I fs), semantically (src/fdt/diff.ts):
 * nodes and properties, phandles compared by the paths they resolve to. Exit status as diff(1):
 * 0 the same, 1 different, 2 trouble.
 */
import { statSync } from 'node:fs';
import type { Fdt } from '../fdt/index.ts';
import { diffTrees, formatDiff } from '../fdt/index.ts';
import { PHANDLE_PROPERTIES } from '../nvlink2/index.ts';
import { parseCliArgs as parseArgs } from './args.ts';
import { CliError, usageError } from './cli-error.ts';
import { readLiveTree, readTreeInput } from './dt-input.ts';
import { printLine } from './output.ts';

const USAGE = `usage: vfio-nvlink2 dt diff A B [--json]
  What changed from A to B (each a DTB, a DTS, or a tree directory like /proc/device-tree):
  nodes and properties, phandles compared by the nodes they name. Exit 0 same, 1 different.`;

/** Phandle-valued properties: the NVLink2 ones and the generic ones of the Devicetree spec. */
const PHANDLE_PROPS = new Set([
  ...PHANDLE_PROPERTIES.map((p) => p.name),
  'interrupt-parent',
  'ibm,pcie-slot',
  'msi-parent',
]);

/**
 * Tree `file` as every tree-reading command reads it (same errors, DT_PARSE for a file that
 * cannot be read), but exiting 2: a diff's 1 means "different".
 */
function load(file: string): Fdt {
  try {
    // A path stat cannot see is left to readTreeInput, which names it as the others do.
    return statSync(file, { throwIfNoEntry: false })?.isDirectory()
      ? readLiveTree('dt diff', file).fdt
      : readTreeInput('dt diff', file).fdt;
  } catch (err) {
    if (err instanceof CliError) throw new CliError(err.command, err.code, err.detail, 2);
    throw err;
  }
}

/**
 * `vfio-nvlink2 dt diff A B`: the differences of two trees (DTB, DTS or directory), phandles
 * compared by target; returns the exit status.
 * @throws CliError USAGE (exit 2) for bad usage; DT_PARSE (exit 2) when a tree cannot be read,
 * compiled or parsed (the line `dt show` and the other tree readers print).
 */
export async function runDiff(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw usageError('dt diff', err);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    await printLine(USAGE);
    return 0;
  }
  if (positionals.length !== 2)
    throw new CliError('dt diff', 'USAGE', `two trees, A and B (got ${positionals.length})`);
  const [a, b] = positionals.map(load) as [Fdt, Fdt];
  const entries = diffTrees(a, b, { phandleProperties: PHANDLE_PROPS });
  const text = values.json ? JSON.stringify(entries, null, 2) : formatDiff(entries);
  if (text) {
    await printLine(text);
  }
  return entries.length === 0 ? 0 : 1;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
}
