/**
 * Plain text tables for people (serve's device table, dt doctor, guest, bench): a title line,
 * an optional rule of dashes, one line per row; columns two spaces apart, each as wide as its
 * widest cell, left- or right-aligned; a left-aligned last column is not padded and no line
 * ends in spaces. Widths are in UTF-16 code units (String#length), as every caller's text is.
 */

/** One column: its title and how its cells line up; a bare title is a left-aligned column. */
export type TableColumn = string | TitledColumn;

/** A table column: its title and alignment. */
export interface TitledColumn {
  readonly title: string;
  /** Default 'left'. */
  readonly align?: 'left' | 'right';
}

/** A laid-out table. */
export interface TextTable {
  /** The title line, the rule when asked for, then one line per row in order. */
  readonly lines: string[];
  /** Each column's width in UTF-16 code units (its widest cell or title). */
  readonly widths: number[];
}

const GAP = '  ';

const titleOf = (c: TableColumn) => (typeof c === 'string' ? c : c.title);

/**
 * The widest cell of each column, titles included. A loop, not `Math.max(...cells)`: spreading
 * 125,000 or more values (a tree's worth of rows) overflows the stack.
 */
function columnWidths(
  columns: readonly TableColumn[],
  rows: readonly (readonly string[])[],
): number[] {
  const widths = columns.map((c) => titleOf(c).length);
  for (const row of rows) {
    for (let i = 0; i < widths.length; i++) {
      const n = row[i]?.length ?? 0;
      if (n > widths[i]!) widths[i] = n;
    }
  }
  return widths;
}

/**
 * Lays out `rows` (cells in `columns` order; a missing cell is empty, extra cells are
 * ignored) under `columns`' titles.
 * @param options.rule a line of dashes under the titles, as wide as each column.
 */
export function layoutTable(
  columns: readonly TableColumn[],
  rows: readonly (readonly string[])[],
  options: { readonly rule?: boolean } = {},
): TextTable {
  const widths = columnWidths(columns, rows);
  const last = columns.length - 1;
  const line = (cells: readonly string[]) =>
    columns
      .map((c, i) => {
        const cell = cells[i] ?? '';
        if (typeof c !== 'string' && c.align === 'right') return cell.padStart(widths[i]!);
        return i === last ? cell : cell.padEnd(widths[i]!);
      })
      .join(GAP)
      .trimEnd();
  const lines = [line(columns.map(titleOf))];
  if (options.rule) lines.push(widths.map((w) => '-'.repeat(w)).join(GAP));
  for (const row of rows) lines.push(line(row));
  return { lines, widths };
}
