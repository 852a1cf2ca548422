/**
 * The house's layering, as a test over the import graph of src/ (every import, export-from,
 * type-only import and dynamic import() of every .ts file, found by TypeScript's own scanner,
 * ts.preProcessFile). Inside vfio-user, the rooms (ROOMS) follow the same rule one level down, and
 * no module of src/ imports the package by its own name. src/ holds production code and its tests only: no test helpers (they live
 * in test/support/), and no production module imports anything outside src/. The rule table below is the one place the layering is written; README.md
 * "Architecture" shows the same table (a test below holds the two together). Each violation
 * prints as `src/a/x.ts: imports src/b/y.ts (layer a → layer b)`.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix, relative, sep } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { ROOT } from './support/root.ts';

/**
 * The layers of src/, lowest first. A module may import its own folder, the leaves, and the
 * folders of lower layers; never a folder of its own layer (variants never know each other)
 * nor of a higher one.
 *
 * | layer | folders | what it is |
 * |---|---|---|
 * | 0 | fdt | device-tree bytes ⇄ tree; knows nothing else |
 * | 1 | platform | the PowerNV host from a tree; the Witherspoon generator |
 * | 2 | vfio | the vfio-pci core; names no variant |
 * | 3 | nvlink2 (later nvgrace) | variant drivers over the core |
 * | 4 | variants, migration | every variant in one list (their vocabularies), for readers of any device; live migration of a device (state machine, stream, dirty tracking) |
 * | 5 | vfio-user | the wire, the server (adds a transport, never behaviour), the client |
 * | 6 | machine | assembly of one host for serve/inspect/doctor (LPIDs, partitions) |
 * | 7 | serve-dir, state-dir | serve's socket directory as other processes read it (devices.json entries are machine's function statuses, socket names); serve's state directory (device state kept across restarts) |
 * | 8 | guest, bench, topology | clients of the wire: what a VMM builds; the benchmark; the machine as a picture |
 * | 9 | fuzz, live | the fuzzer (starts its children as the bench does); serve's live page |
 * | 10 | cli | thin commands over everything |
 * | leaf | trace, native, text, errors | importable from anywhere; import no other folder |
 */
const LAYERS: readonly (readonly string[])[] = [
  ['fdt'],
  ['platform'],
  ['vfio'],
  ['nvlink2', 'nvgrace'],
  ['variants', 'migration'],
  ['vfio-user'],
  ['machine'],
  ['serve-dir', 'state-dir'],
  ['guest', 'bench', 'topology'],
  ['fuzz', 'live'],
  ['cli'],
];
const LEAVES: readonly string[] = ['trace', 'native', 'text', 'errors'];

/**
 * The rooms of a folder, lowest first, by the same rule one level down: a room imports its
 * own files, its folder's root modules never (they sit above every room) and the rooms of
 * lower rows; never a room of its own row nor of a higher one. vfio-user: the wire is below
 * the server and the client, which never know each other (they meet only on the wire).
 */
const ROOMS: Readonly<Record<string, readonly (readonly string[])[]>> = {
  'vfio-user': [['wire'], ['server', 'client']],
};

/**
 * The modules at the root of src/ (src/index.ts, the package entry of package.json `exports`):
 * above every layer, so they may import any folder's index.ts and nothing imports them.
 */
const ENTRY = '(src)';

/**
 * Test helpers live outside src/, in test/support/ (the build leaves test/ out of dist and the
 * package). A test of src/ (`*.test.ts`) may import them; production code of src/ (every other
 * module) imports nothing outside src/: not test/, nor scripts/ or bench/.
 */
const TEST_SUPPORT = 'test/support/';

/**
 * Cycles known and being broken elsewhere, each by its sorted members. Any other cycle fails,
 * and so does an entry here once its cycle is gone (remove it then). None today: the nvlink2
 * type cycle was broken by nvlink2/types.ts (issue 12.2).
 */
const KNOWN_CYCLES: readonly (readonly string[])[] = [];

const SRC = join(ROOT, 'src');

/** A module path relative to the repository root, with forward slashes. */
function rel(abs: string): string {
  return relative(ROOT, abs).split(sep).join('/');
}

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) sourceFiles(path, out);
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

interface Edge {
  readonly from: string;
  readonly to: string;
}

/**
 * Every relative import of every module of src/ (edges), and every other specifier as written
 * (bare: package and node: imports, which are not ours unless they name this package).
 */
function importGraph(): { modules: string[]; edges: Edge[]; bare: Edge[] } {
  const modules = sourceFiles(SRC).map(rel);
  const edges: Edge[] = [];
  const bare: Edge[] = [];
  for (const from of modules) {
    const info = ts.preProcessFile(readFileSync(join(ROOT, from), 'utf8'), true, true);
    for (const { fileName } of info.importedFiles) {
      if (!fileName.startsWith('.')) bare.push({ from, to: fileName });
      else edges.push({ from, to: posix.normalize(posix.join(posix.dirname(from), fileName)) });
    }
  }
  return { modules, edges, bare };
}

/** This package's name (package.json), which src/ never imports: it would go round the layers. */
const PACKAGE: string = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).name;

/**
 * Self-import rule: no module of src/ (tests included) imports the package by its name
 * (`vfio-nvlink2` or `vfio-nvlink2/…`): that resolves to dist/ through package.json `exports`,
 * past every layer and index rule. test/package-consumer.test.ts does, from outside src/.
 */
function selfImportViolation({ from, to }: Edge): string | undefined {
  if (to !== PACKAGE && !to.startsWith(`${PACKAGE}/`)) return undefined;
  return `${from}: imports '${to}' (the package itself; import the module under src/)`;
}

/** The top folder of a module under src/ (`src/vfio-user/wire/x.ts` → `vfio-user`). */
function folderOf(module: string): string {
  const parts = module.split('/');
  return parts.length > 2 ? (parts[1] as string) : '(src)';
}

function layerOf(folder: string): number | 'leaf' | undefined {
  if (LEAVES.includes(folder)) return 'leaf';
  if (folder === ENTRY) return LAYERS.length;
  const i = LAYERS.findIndex((l) => l.includes(folder));
  return i < 0 ? undefined : i;
}

/** A test, or test support (everything under test/ is for tests). */
const isTest = (m: string) => m.endsWith('.test.ts') || m.startsWith('test/');

/** The room of a module inside a folder with ROOMS (`src/vfio-user/wire/x.ts` → `wire`). */
function roomOf(module: string): string | undefined {
  const parts = module.split('/');
  return parts.length > 3 ? parts[2] : undefined;
}

/** Room rule: inside a folder with ROOMS, imports point down its rows, as layers do. */
function roomViolation({ from, to }: Edge): string | undefined {
  const folder = folderOf(from);
  const rows = ROOMS[folder];
  if (rows === undefined || folderOf(to) !== folder) return undefined;
  const a = roomOf(from) ?? '(root)';
  const b = roomOf(to) ?? '(root)';
  if (a === b) return undefined;
  const rowOf = (room: string) =>
    room === '(root)' ? rows.length : rows.findIndex((r) => r.includes(room));
  const ra = rowOf(a);
  const rb = rowOf(b);
  const named = `${from}: imports ${to} (room ${folder}/${a} → room ${folder}/${b})`;
  if (ra < 0) return `${named}: ${a} has no room (add it to ROOMS)`;
  if (rb < 0) return `${named}: ${b} has no room (add it to ROOMS)`;
  if (rb < ra) return undefined;
  return rb === ra ? `${named}: same row (they never know each other)` : `${named}: upward`;
}

/**
 * Production code imports only src/: anything outside it (test/support/ above all) is for
 * tests (`*.test.ts`) only.
 */
function outsideSrcViolation({ from, to }: Edge): string | undefined {
  if (to.startsWith('src/') || isTest(from)) return undefined;
  const what = to.startsWith(TEST_SUPPORT) ? 'test support' : 'outside src/';
  return `${from}: imports ${to} (${what}, for tests only)`;
}

/** The imports of src/ from test/ (tests and their support), as edges from `test/…`. */
function testEdges(): Edge[] {
  const edges: Edge[] = [];
  for (const from of sourceFiles(join(ROOT, 'test')).map(rel)) {
    const info = ts.preProcessFile(readFileSync(join(ROOT, from), 'utf8'), true, true);
    for (const { fileName } of info.importedFiles) {
      if (!fileName.startsWith('.')) continue;
      const to = posix.normalize(posix.join(posix.dirname(from), fileName));
      if (to.startsWith('src/')) edges.push({ from, to });
    }
  }
  return edges;
}

/**
 * Production modules of src/ that tests import and no production module does: test helpers
 * under src/ by another name. A module nothing imports (a program started by path) is not one.
 */
function testOnlyModules(modules: readonly string[], edges: readonly Edge[]): string[] {
  const importers = new Map<string, string[]>();
  for (const { from, to } of edges) importers.set(to, [...(importers.get(to) ?? []), from]);
  return modules
    .filter((m) => !isTest(m))
    .filter((m) => {
      const by = importers.get(m) ?? [];
      return by.length > 0 && by.every(isTest);
    })
    .map(
      (m) => `${m}: imported only by ${importers.get(m)?.join(', ')} (move it to test/support/)`,
    );
}

/** Layer rule: down the table, leaves from anywhere. */
function layerViolation({ from, to }: Edge): string | undefined {
  const a = folderOf(from);
  const b = folderOf(to);
  if (a === b || !to.startsWith('src/')) return undefined;
  const la = layerOf(a);
  const lb = layerOf(b);
  const named = `${from}: imports ${to} (layer ${a} → layer ${b})`;
  if (la === undefined) return `${named}: ${a} has no layer (add it to LAYERS)`;
  if (lb === undefined) return `${named}: ${b} has no layer (add it to LAYERS)`;
  if (lb === 'leaf') return la === 'leaf' ? `${named}: a leaf imports no other folder` : undefined;
  if (la === 'leaf') return `${named}: a leaf imports no other folder`;
  if (lb < la) return undefined;
  return lb === la ? `${named}: same layer` : `${named}: upward`;
}

/**
 * Index rule: a module names directly only modules of its own folder or of a folder that
 * contains it (a room uses its parent's files). Any other import names the index.ts of the
 * outermost folder it enters: from outside vfio-user, `src/vfio-user/index.ts`; from
 * vfio-user/server, `src/vfio-user/wire/index.ts`.
 */
function indexViolation({ from, to }: Edge): string | undefined {
  if (!to.startsWith('src/')) return undefined;
  const a = posix.dirname(from).split('/');
  const b = posix.dirname(to).split('/');
  let common = 0;
  while (common < a.length && common < b.length && a[common] === b[common]) common++;
  if (common === b.length) return undefined;
  const index = [...b.slice(0, common + 1), 'index.ts'].join('/');
  return to === index ? undefined : `${from}: imports ${to} (bypasses ${index})`;
}

/**
 * Cycles among modules: each strongly connected component of more than one module (or a
 * self-import), sorted, with one path a → b → … → a through it.
 */
function cycles(
  modules: readonly string[],
  edges: readonly Edge[],
): { members: string[]; path: string[] }[] {
  const next = new Map<string, string[]>(modules.map((m) => [m, []]));
  for (const e of edges) next.get(e.from)?.push(e.to);
  // Tarjan's algorithm, iteratively (no recursion depth limit to meet).
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let counter = 0;
  for (const root of modules) {
    if (index.has(root)) continue;
    const work: [string, number][] = [[root, 0]];
    index.set(root, counter);
    low.set(root, counter++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const top = work[work.length - 1] as [string, number];
      const [v, i] = top;
      const out = next.get(v) ?? [];
      if (i < out.length) {
        top[1] = i + 1;
        const w = out[i] as string;
        if (!next.has(w)) continue; // an import of a file that does not exist: tsc reports it
        if (!index.has(w)) {
          index.set(w, counter);
          low.set(w, counter++);
          stack.push(w);
          onStack.add(w);
          work.push([w, 0]);
        } else if (onStack.has(w))
          low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent[0], Math.min(low.get(parent[0]) as number, low.get(v) as number));
      if (low.get(v) !== index.get(v)) continue;
      const component: string[] = [];
      for (;;) {
        const w = stack.pop() as string;
        onStack.delete(w);
        component.push(w);
        if (w === v) break;
      }
      const selfImport = (next.get(v) ?? []).includes(v);
      if (component.length > 1 || selfImport) components.push(component);
    }
  }
  return components.map((c) => ({ members: [...c].sort(), path: cyclePath(c, next) }));
}

/** One cycle through the first module (sorted) of a component, by breadth-first search. */
function cyclePath(component: readonly string[], next: ReadonlyMap<string, string[]>): string[] {
  const members = new Set(component);
  const start = [...component].sort()[0] as string;
  const from = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift() as string;
    for (const w of next.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let at = v; at !== start; at = from.get(at) as string) path.splice(1, 0, at);
        return [...path, start];
      }
      if (!from.has(w)) {
        from.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

function report(title: string, lines: readonly string[]): string {
  return `${lines.length} ${title}:\n  ${lines.join('\n  ')}`;
}

const graph = importGraph();

describe('layering of src/ (rule table: LAYERS, LEAVES, TEST_SUPPORT above)', () => {
  it('finds the modules and their imports (the test itself can fail)', () => {
    assert.ok(graph.modules.length > 100, `only ${graph.modules.length} modules found`);
    assert.ok(graph.edges.length > 500, `only ${graph.edges.length} imports found`);
    // Type-only, multi-line, export-from and dynamic imports are all edges.
    const has = (from: string, to: string) =>
      graph.edges.some((e) => e.from === from && e.to === to);
    assert.ok(has('src/cli/cli-main.ts', 'src/cli/serve.ts'), 'dynamic import() missed');
    assert.ok(has('src/fdt/index.ts', 'src/fdt/tree.ts'), 'export-from missed');
  });

  it("README.md's layer table is this one", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const table = readme.slice(readme.indexOf('| layer | folders |'));
    const rows = table.slice(0, table.indexOf('\n\n')).split('\n').slice(2);
    const shown = rows.map((row) => {
      const [layer = '', folders = ''] = row.split('|').slice(1, 3);
      return [layer.trim(), [...folders.matchAll(/`([a-z0-9-]+)`/g)].map((m) => m[1])];
    });
    const ours = [...LAYERS.map((folders, i) => [String(i), [...folders]]), ['leaf', [...LEAVES]]];
    assert.deepEqual(shown, ours);
  });

  it('every folder of src/ has a layer', () => {
    const known = new Set([...LAYERS.flat(), ...LEAVES, ENTRY]);
    const unknown = [...new Set(graph.modules.map(folderOf))].filter((f) => !known.has(f));
    assert.deepEqual(unknown, [], `folders without a layer: ${unknown.join(', ')}`);
  });

  it('imports point down the layers', () => {
    const bad = graph.edges.map(layerViolation).filter((v) => v !== undefined);
    assert.deepEqual(bad, [], report('imports against the layers', bad));
  });

  it('imports inside a folder with rooms point down its rows (ROOMS)', () => {
    const bad = graph.edges.map(roomViolation).filter((v) => v !== undefined);
    assert.deepEqual(bad, [], report('imports against the rooms', bad));
    const rooms = Object.entries(ROOMS).flatMap(([f, rows]) => rows.flat().map((r) => `${f}/${r}`));
    const present = new Set(graph.modules.map((m) => `${folderOf(m)}/${roomOf(m)}`));
    const missing = rooms.filter((r) => !present.has(r));
    assert.deepEqual(missing, [], `ROOMS names rooms that do not exist: ${missing.join(', ')}`);
    const unknown = [...present].filter(
      (r) => ROOMS[r.split('/')[0] as string] && !r.endsWith('/undefined') && !rooms.includes(r),
    );
    assert.deepEqual(unknown, [], `rooms without a row in ROOMS: ${unknown.join(', ')}`);
  });

  it("imports across folders go through the folder's index.ts", () => {
    const bad = graph.edges.map(indexViolation).filter((v) => v !== undefined);
    assert.deepEqual(bad, [], report("imports that bypass a folder's index.ts", bad));
  });

  it('no module of src/ imports the package by its own name', () => {
    const bad = graph.bare.map(selfImportViolation).filter((v) => v !== undefined);
    assert.deepEqual(bad, [], report('self-imports of the package', bad));
    assert.ok(
      graph.bare.some((e) => e.to === 'node:fs'),
      'bare imports missed',
    );
  });

  it('production code imports nothing outside src/ (test/support/ is for tests only)', () => {
    const bad = graph.edges.map(outsideSrcViolation).filter((v) => v !== undefined);
    assert.deepEqual(bad, [], report('production imports from outside src/', bad));
    // The rule has something to hold: tests of src/ do import test/support/.
    assert.ok(
      graph.edges.some((e) => isTest(e.from) && e.to.startsWith(TEST_SUPPORT)),
      'no test of src/ imports test/support/',
    );
  });

  it('src/ holds no test helpers (no testing/ folders: they live in test/support/)', () => {
    const helpers = graph.modules.filter((m) => m.split('/').includes('testing'));
    assert.deepEqual(helpers, [], `test helpers under src/: ${helpers.join(', ')}`);
  });

  it('src/ holds no module that only tests import (test helpers live in test/support/)', () => {
    const bad = testOnlyModules(graph.modules, [...graph.edges, ...testEdges()]);
    assert.deepEqual(bad, [], report('modules of src/ imported by tests only', bad));
  });

  it('no module imports itself through a cycle', () => {
    const found = cycles(graph.modules, graph.edges);
    const key = (members: readonly string[]) => members.join(' ');
    const known = new Set(KNOWN_CYCLES.map(key));
    const fresh = found
      .filter(({ members }) => !known.has(key(members)))
      .map(
        ({ members, path }) =>
          `cycle among ${members.length} modules (${members.join(', ')}), e.g. ${path.join(' → ')}`,
      );
    const seen = new Set(found.map(({ members }) => key(members)));
    const gone = KNOWN_CYCLES.filter((m) => !seen.has(key(m))).map(
      (m) => `KNOWN_CYCLES lists a cycle that is gone (remove it): ${m.join(', ')}`,
    );
    assert.deepEqual([...fresh, ...gone], [], report('import cycles', [...fresh, ...gone]));
  });

  it('the checks catch what they are for', () => {
    assert.match(
      layerViolation({ from: 'src/vfio-user/x.ts', to: 'src/machine/index.ts' }) ?? '',
      /layer vfio-user → layer machine/,
    );
    assert.match(
      layerViolation({ from: 'src/nvlink2/x.ts', to: 'src/nvgrace/index.ts' }) ?? '',
      /same layer/,
    );
    assert.match(
      layerViolation({ from: 'src/trace/x.ts', to: 'src/native/index.ts' }) ?? '',
      /a leaf imports no other folder/,
    );
    assert.equal(layerViolation({ from: 'src/fdt/x.ts', to: 'src/trace/index.ts' }), undefined);
    assert.match(
      selfImportViolation({ from: 'src/cli/x.ts', to: 'vfio-nvlink2' }) ?? '',
      /src\/cli\/x\.ts: imports 'vfio-nvlink2' \(the package itself/,
    );
    assert.match(selfImportViolation({ from: 'src/x.test.ts', to: 'vfio-nvlink2/x' }) ?? '', /x/);
    assert.equal(
      selfImportViolation({ from: 'src/cli/x.ts', to: 'vfio-nvlink2-other' }),
      undefined,
    );
    assert.match(
      roomViolation({
        from: 'src/vfio-user/client/client.ts',
        to: 'src/vfio-user/server/index.ts',
      }) ?? '',
      /room vfio-user\/client → room vfio-user\/server\): same row/,
    );
    assert.match(
      roomViolation({ from: 'src/vfio-user/server/x.ts', to: 'src/vfio-user/client/index.ts' }) ??
        '',
      /same row/,
    );
    assert.match(
      roomViolation({ from: 'src/vfio-user/wire/x.ts', to: 'src/vfio-user/server/index.ts' }) ?? '',
      /upward/,
    );
    assert.match(
      roomViolation({ from: 'src/vfio-user/client/x.ts', to: 'src/vfio-user/index.ts' }) ?? '',
      /room vfio-user\/client → room vfio-user\/\(root\)\): upward/,
    );
    assert.equal(
      roomViolation({ from: 'src/vfio-user/server/x.ts', to: 'src/vfio-user/wire/index.ts' }),
      undefined,
    );
    assert.equal(
      roomViolation({ from: 'src/vfio-user/index.ts', to: 'src/vfio-user/client/index.ts' }),
      undefined,
    );
    assert.equal(layerViolation({ from: 'src/index.ts', to: 'src/cli/index.ts' }), undefined);
    assert.match(
      layerViolation({ from: 'src/cli/x.ts', to: 'src/index.ts' }) ?? '',
      /\(layer cli → layer \(src\)\): upward/,
    );
    assert.match(
      indexViolation({ from: 'src/cli/x.ts', to: 'src/vfio/errors.ts' }) ?? '',
      /bypasses src\/vfio\/index\.ts/,
    );
    assert.equal(
      indexViolation({ from: 'src/platform/witherspoon/x.ts', to: 'src/platform/types.ts' }),
      undefined,
    );
    assert.match(
      indexViolation({ from: 'src/cli/x.ts', to: 'src/vfio-user/wire/index.ts' }) ?? '',
      /bypasses src\/vfio-user\/index\.ts/,
    );
    assert.match(
      indexViolation({ from: 'src/vfio-user/server/x.ts', to: 'src/vfio-user/wire/header.ts' }) ??
        '',
      /bypasses src\/vfio-user\/wire\/index\.ts/,
    );
    assert.match(
      outsideSrcViolation({ from: 'src/vfio-user/x.ts', to: 'test/support/frames.ts' }) ?? '',
      /\(test support, for tests only\)/,
    );
    assert.match(
      outsideSrcViolation({ from: 'src/vfio/x.ts', to: 'test/support/fdt/dtc.ts' }) ?? '',
      /\(test support, for tests only\)/,
    );
    assert.match(
      outsideSrcViolation({ from: 'src/index.ts', to: 'scripts/dist.mjs' }) ?? '',
      /\(outside src\/, for tests only\)/,
    );
    assert.equal(
      outsideSrcViolation({ from: 'src/vfio/x.test.ts', to: 'test/support/fdt/dtc.ts' }),
      undefined,
    );
    assert.equal(
      indexViolation({ from: 'src/vfio/x.test.ts', to: 'test/support/x.ts' }),
      undefined,
    );
    assert.deepEqual(
      testOnlyModules(
        ['src/p/f.ts', 'src/p/f.test.ts', 'src/p/g.ts', 'src/p/h.ts', 'src/p/main.ts'],
        [
          { from: 'src/p/f.test.ts', to: 'src/p/g.ts' },
          { from: 'src/p/f.test.ts', to: 'src/p/f.ts' },
          { from: 'src/p/h.ts', to: 'src/p/f.ts' },
        ],
      ),
      ['src/p/g.ts: imported only by src/p/f.test.ts (move it to test/support/)'],
    );
    const a = 'src/a/a.ts';
    const b = 'src/a/b.ts';
    assert.deepEqual(
      cycles(
        [a, b],
        [
          { from: a, to: b },
          { from: b, to: a },
        ],
      ),
      [{ members: [a, b], path: [a, b, a] }],
    );
  });
});
