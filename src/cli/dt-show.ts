/**
 * `vfio-nvlink2 dt show`: a tree or one node as DTS, or, as dtc's `fdtget` does (fdtget.c), the
 * values of properties (`dt show FILE NODE PROPERTY... [-t TYPE]`), a node's property names
 * (`-p`) or subnodes (`-l`), with `-d` for what is missing; `--json` for all of it.
 */
import { statSync } from 'node:fs';
import { messageOf } from '../errors/index.ts';
import {
  FDTGET_GUESS,
  type Fdt,
  type FdtgetType,
  type FdtgetValue,
  FdtPropertyError,
  fdtgetJson,
  fdtgetText,
  nodeToDts,
  nodeToJson,
  parseFdtgetType,
  readFdtgetValue,
  toDts,
} from '../fdt/index.ts';
import { defaultPlatformTree } from '../platform/index.ts';
import { parseCliArgs as parseArgs } from './args.ts';
import { CliError, cliErrorOf, usageError } from './cli-error.ts';
import { printLine, writeStdout } from './output.ts';
import { readPlatformArg } from './platform-arg.ts';

const COMMAND = 'dt show';

const USAGE = `usage: vfio-nvlink2 dt show [FILE] [--node PATH] [--json]
       vfio-nvlink2 dt show [FILE] NODE PROPERTY [NODE PROPERTY]... [-t TYPE] [-d VALUE] [--json]
       vfio-nvlink2 dt show [FILE] NODE... (-p | -l) [--json]

  Print a tree (FILE: a DTB or DTS, told apart by content, DTS compiled with dtc; - reads stdin;
  default: the built-in 6-GPU Witherspoon)
  or one node as DTS; or, as dtc's fdtget does, one line per NODE PROPERTY pair with its value.
  FILE may be left out when NODE is a node of the built-in tree.
  --node PATH         print that node and its subnodes as DTS
  -t, --type TYPE     how values are shown (fdtget -t): s strings, i signed decimal, u unsigned
                      decimal, x hex, r raw bytes; i, u, x after an optional size: b or hh (1 byte),
                      h (2), l (4). Default: strings when printable, else 4-byte cells when the
                      length is a multiple of 4, else bytes, in decimal
  -p, --properties    list the property names of each NODE (fdtget -p)
  -l, --list          list the subnodes of each NODE (fdtget -l)
  -d, --default VALUE print VALUE for a missing node or property instead of failing (fdtget -d)
  --json              as JSON: the tree as {name, properties, children}; values as arrays of
                      strings, of numbers (-t i|u) or of hex strings (x, and guessed cells and bytes)`;

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      node: { type: 'string' },
      type: { type: 'string', short: 't' },
      properties: { type: 'boolean', short: 'p' },
      list: { type: 'boolean', short: 'l' },
      default: { type: 'string', short: 'd' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
}

type Values = ReturnType<typeof parse>['values'];

/**
 * Whether the first positional is the tree file: a regular file, or anything that is not a node
 * of the built-in tree (so a missing FILE is reported as one, not taken for a node).
 */
function isFile(arg: string): boolean {
  if (arg === '-') return true; // stdin
  try {
    if (statSync(arg).isFile()) return true;
  } catch {
    // not there: a node path of the built-in tree, or a missing file
  }
  return defaultPlatformTree().findNode(arg) === undefined;
}

/** What `dt show` prints for one query, as text lines or a JSON value. */
type Shown = { readonly lines: string[]; readonly json: unknown };

function nodeAt(fdt: Fdt, path: string, values: Values): ReturnType<Fdt['findNode']> | null {
  const node = fdt.findNode(path);
  if (node) return node;
  if (values.default !== undefined) return null;
  throw new CliError(COMMAND, 'NOT_FOUND', `${path}: no such node in ${fdt.source}`);
}

function showProperty(fdt: Fdt, path: string, name: string, t: FdtgetType, values: Values): Shown {
  const node = nodeAt(fdt, path, values);
  let v: FdtgetValue | undefined;
  try {
    v = node ? readFdtgetValue(node, path, name, t) : undefined;
  } catch (err) {
    if (err instanceof FdtPropertyError) throw cliErrorOf(COMMAND, err, `${fdt.source}: `);
    throw err;
  }
  if (v === undefined) {
    if (values.default !== undefined)
      return {
        lines: [values.default],
        json: { node: path, property: name, default: values.default },
      };
    throw new CliError(COMMAND, 'NOT_FOUND', `${path}: no property ${name} in ${fdt.source}`);
  }
  return {
    lines: [fdtgetText(v, t)],
    json: { node: path, property: name, value: fdtgetJson(v, t) },
  };
}

function showNames(fdt: Fdt, path: string, values: Values): Shown {
  const node = nodeAt(fdt, path, values);
  if (!node)
    return { lines: [values.default ?? ''], json: { node: path, default: values.default } };
  const key = values.properties ? 'properties' : 'subnodes';
  const names = values.properties
    ? node.properties.map((p) => p.name)
    : node.children.map((c) => c.name);
  return { lines: names, json: { node: path, [key]: names } };
}

/**
 * The queries of the positionals after FILE, each given to `shown` as it is answered (so that,
 * as with fdtget, what came before a failing one is printed).
 * @throws CliError USAGE, NOT_FOUND, or a value fdtget refuses.
 */
function query(fdt: Fdt, args: string[], values: Values, shown: Shown[]): void {
  if (values.node !== undefined)
    throw new CliError(
      COMMAND,
      'USAGE',
      '--node PATH prints a node as DTS; give it without NODE PROPERTY',
    );
  if (values.properties || values.list) {
    for (const path of args) shown.push(showNames(fdt, path, values));
    return;
  }
  if (args.length % 2 !== 0)
    throw new CliError(
      COMMAND,
      'USAGE',
      `NODE PROPERTY pairs: no PROPERTY after ${args[args.length - 1]}`,
    );
  let t = FDTGET_GUESS;
  if (values.type !== undefined) {
    try {
      t = parseFdtgetType(values.type);
    } catch (err) {
      throw new CliError(COMMAND, 'USAGE', messageOf(err));
    }
  }
  for (let i = 0; i < args.length; i += 2)
    shown.push(showProperty(fdt, args[i] as string, args[i + 1] as string, t, values));
}

/** The tree, or the node of --node, as DTS or JSON. @throws CliError NOT_FOUND for --node. */
function wholeTree(fdt: Fdt, values: Values): string {
  if (values.node === undefined) return values.json ? `${nodeToJson(fdt.root)}\n` : toDts(fdt);
  const node = fdt.findNode(values.node);
  if (!node)
    throw new CliError(
      COMMAND,
      'NOT_FOUND',
      `--node ${values.node}: no such node in ${fdt.source}`,
    );
  return values.json ? `${nodeToJson(node)}\n` : nodeToDts(node);
}

// Through output.ts: a closed pipe or a full disk is one line (or a quiet exit), never a trace.
async function write(text: string, encoding: BufferEncoding): Promise<void> {
  await writeStdout(Buffer.from(text, encoding));
}

/** Text lines, each byte of a value as itself (latin1), as fdtget's printf writes it. */
async function writeLines(shown: readonly Shown[]): Promise<void> {
  await write(shown.flatMap((s) => s.lines.map((l) => `${l}\n`)).join(''), 'latin1');
}

/**
 * `vfio-nvlink2 dt show`: returns the exit status.
 * @throws CliError USAGE, DT_PARSE, NOT_FOUND, EILSEQ/EOVERFLOW for a value fdtget cannot show.
 */
export async function runShow(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw usageError(COMMAND, err);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    await printLine(USAGE);
    return 0;
  }
  const first = positionals[0];
  const file = first !== undefined && isFile(first) ? first : undefined;
  const args = file === undefined ? positionals : positionals.slice(1);
  if (args.length === 0 && (values.properties || values.list || values.type || values.default))
    throw new CliError(COMMAND, 'USAGE', '-t, -p, -l and -d need a NODE (and PROPERTY)');
  const fdt = readPlatformArg(COMMAND, file);
  if (args.length === 0) {
    await write(wholeTree(fdt, values), 'utf8');
    return 0;
  }
  const shown: Shown[] = [];
  try {
    query(fdt, args, values, shown);
  } catch (err) {
    // Text, as fdtget: the values before the failing query, then the error (JSON is all or none).
    if (!values.json) await writeLines(shown);
    throw err;
  }
  if (values.json) {
    const json = shown.length === 1 ? shown[0]?.json : shown.map((s) => s.json);
    await write(`${JSON.stringify(json, null, 2)}\n`, 'utf8');
  } else await writeLines(shown);
  return 0;
}
