/**
 * A fix as the two things a firmware engineer applies: `fdtput` commands on the blob, and a
 * device-tree overlay (`.dtso`) for `dtc -I dts -O dtb -o fix.dtbo fix.dtso` then
 * `fdtoverlay -i tree.dtb -o fixed.dtb fix.dtbo` (dtc's own tools, device-tree-compiler).
 *
 * An overlay cannot name a base node's phandle it does not know: a node the fix gives a phandle
 * is declared in the overlay with a label, and references to it use the label, so fdtoverlay
 * (libfdt fdt_overlay_apply, which shifts the overlay's phandles past the base's) keeps them
 * consistent. fdtput writes the numbers the doctor chose. Edits to one node share a fragment.
 */

import { hex } from '../../text/index.ts';
import type { Fix, FixCell, FixValue } from './types.ts';

/** A word for a POSIX shell: as is when plain, else in single quotes. */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_/.,@:=+%-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** A cell as fdtput -t x writes it: unsigned 32-bit hex. */
const cellHex = (v: number) => hex(v >>> 0);

function cellNumber(c: FixCell): number {
  return typeof c === 'number' ? c : c.phandle;
}

/** `fdtput` commands applying `fix` to `dtb`, in order (phandles first). */
export function fdtputCommands(fix: Fix, dtb: string): string[] {
  const file = shellWord(dtb);
  const out = fix.phandles.map(
    (p) => `fdtput -t x ${file} ${shellWord(p.node)} phandle ${cellHex(p.value)}`,
  );
  for (const e of fix.edits) {
    const head = `fdtput -t ${e.value.kind === 'cells' ? 'x' : 's'} ${file} ${shellWord(e.node)} ${shellWord(e.property)}`;
    const values =
      e.value.kind === 'cells'
        ? e.value.cells.map((c) => cellHex(cellNumber(c)))
        : e.value.strings.map(shellWord);
    out.push(`${head} ${values.join(' ')}`);
  }
  return out;
}

/** A DTS string literal. */
function dtsString(s: string): string {
  return `"${s.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/** Labels for the nodes an overlay declares, unique across one overlay file. */
export class OverlayLabels {
  private readonly labels = new Map<string, string>();
  label(path: string): string {
    let l = this.labels.get(path);
    if (l === undefined) {
      l = `fix${this.labels.size}`;
      this.labels.set(path, l);
    }
    return l;
  }
}

function parentAndName(path: string): [string, string] {
  const at = path.lastIndexOf('/');
  return [at <= 0 ? '/' : path.slice(0, at), path.slice(at + 1)];
}

/**
 * The overlay fragments of `fixes` (one `/dts-v1/; /plugin/;` file), with a comment naming
 * each fix. Later edits of the same property win.
 */
export function overlayText(
  fixes: readonly { readonly fix: Fix; readonly comment: string }[],
): string {
  const labels = new OverlayLabels();
  const labelled = new Set(fixes.flatMap((f) => f.fix.phandles.map((p) => p.node)));
  const value = (v: FixValue) =>
    v.kind === 'strings'
      ? v.strings.map(dtsString).join(', ')
      : `<${v.cells
          .map((c) =>
            typeof c !== 'number' && labelled.has(c.ref)
              ? `&${labels.label(c.ref)}`
              : cellHex(cellNumber(c)),
          )
          .join(' ')}>`;
  const lines = [
    '/dts-v1/;',
    '/plugin/;',
    '/*',
    ' * vfio-nvlink2 dt doctor fixes. Apply with dtc and fdtoverlay (device-tree-compiler):',
    ' *   dtc -I dts -O dtb -o fix.dtbo fix.dtso && fdtoverlay -i tree.dtb -o fixed.dtb fix.dtbo',
    ' * dtc checks fragments out of their place in the tree: reg_format, ranges_format and',
    ' * unit_address_vs_reg warnings about /fragment@N/__overlay__ are expected.',
    ' */',
  ];
  const declared = new Set<string>();
  for (const { fix, comment } of fixes) {
    lines.push(
      '',
      `/* ${comment.replaceAll('*/', '* /')}: ${fix.description.replaceAll('*/', '* /')} */`,
    );
    for (const p of fix.phandles) {
      if (declared.has(p.node)) continue;
      declared.add(p.node);
      const [parent, name] = parentAndName(p.node);
      lines.push(`&{${parent}} {`, `\t${labels.label(p.node)}: ${name} {`, '\t};', '};');
    }
    const byNode = new Map<string, string[]>();
    for (const e of fix.edits) {
      const body = byNode.get(e.node) ?? [];
      body.push(`\t${e.property} = ${value(e.value)};`);
      byNode.set(e.node, body);
    }
    for (const [node, body] of byNode) lines.push(`&{${node}} {`, ...body, '};');
  }
  return `${lines.join('\n')}\n`;
}
