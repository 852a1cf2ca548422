/**
 * layoutTable: every cell stands at its column's offset, aligned as asked, columns as wide as
 * their widest cell (computed here independently), no line ending in spaces; 200,000 rows lay
 * out (a spread into Math.max threw RangeError past ~125,000).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { layoutTable, type TableColumn } from './table.ts';

describe('layoutTable', () => {
  it('left, right, the last column unpadded, a rule', () => {
    const columns: TableColumn[] = [
      { title: 'NAME' },
      { title: 'N', align: 'right' },
      { title: 'WHAT' },
    ];
    const t = layoutTable(
      columns,
      [
        ['gpu', '12', 'a'],
        ['bridge', '3', ''],
      ],
      { rule: true },
    );
    assert.deepEqual(t.lines, [
      'NAME     N  WHAT',
      '------  --  ----',
      'gpu     12  a',
      'bridge   3',
    ]);
    assert.deepEqual(t.widths, [6, 2, 4]);
  });

  it('any cells: each at its offset, aligned, widths the widest cell', () => {
    const cell = fc.string({ unit: fc.constantFrom('a', 'b', '-', '.'), maxLength: 12 });
    fc.assert(
      fc.property(
        fc.array(fc.record({ title: cell, right: fc.boolean() }), { minLength: 1, maxLength: 5 }),
        fc.array(fc.array(cell, { minLength: 5, maxLength: 5 }), { maxLength: 8 }),
        (cols, rows) => {
          const columns = cols.map(
            (c) => ({ title: c.title, align: c.right ? 'right' : 'left' }) as const,
          );
          const t = layoutTable(columns, rows);
          const all = [cols.map((c) => c.title), ...rows];
          const expected = cols.map((_, i) => all.reduce((w, r) => Math.max(w, r[i]!.length), 0));
          assert.deepEqual(t.widths, expected);
          assert.equal(t.lines.length, all.length);
          t.lines.forEach((line, n) => {
            assert.equal(line, line.trimEnd());
            let at = 0;
            cols.forEach((c, i) => {
              const text = all[n]![i]!;
              const w = expected[i]!;
              const field = line.slice(at, at + w).padEnd(w);
              assert.equal(field, c.right ? text.padStart(w) : text.padEnd(w), `row ${n} col ${i}`);
              at += w + 2;
            });
          });
        },
      ),
    );
  });

  it('200,000 rows', () => {
    const rows = Array.from({ length: 200_000 }, (_, i) => [String(i), 'x']);
    const t = layoutTable([{ title: 'N', align: 'right' }, { title: 'X' }], rows);
    assert.equal(t.lines.length, 200_001);
    assert.deepEqual(t.widths, [6, 1]);
    assert.equal(t.lines[200_000], '199999  x');
  });
});
