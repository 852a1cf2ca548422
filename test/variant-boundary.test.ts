/**
 * The line between the vfio-pci core and its variants, as the kernel draws it between
 * drivers/vfio/pci/vfio_pci_core.c and its variant drivers: src/vfio imports no variant folder
 * and names no variant in its code or strings (comments may cite history), and a variant's
 * files import one another without a cycle (type imports count: a cycle of types is still one
 * module that cannot be read in parts). Read from the source text with TypeScript's scanner.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { ROOT } from './support/root.ts';
import { imports, tokens, tsFiles } from './support/source-tokens.ts';

const SRC = join(ROOT, 'src');
/** The variant driver folders (one per subdriver). */
const VARIANTS = ['nvlink2', 'nvgrace'] as const;
/** What the core may import: the layers below it and the leaves. */
const CORE_MAY_IMPORT = ['vfio', 'platform', 'fdt', 'trace', 'native', 'text', 'errors'];
/** Words that name a variant, its hardware or its regions. */
const VARIANT_WORDS =
  /nvlink|nvgrace|nvidia|grace.?(hopper|blackwell)|v100|p100|npu|atsd|ssatgt|lnkspd|witherspoon|ibm,/i;
/** The variants' PCI vendors, as literals. */
const VARIANT_NUMBERS = /^0x0*(10de|1014)$/i;

const SUPPORT = join(ROOT, 'test', 'support');

/**
 * The top folder of src/ a path lies in ('vfio', 'nvlink2', …); a test helper of one folder
 * counts as that folder (test/support/native/python.ts: 'native').
 */
function folderOf(path: string): string {
  const support = relative(SUPPORT, path);
  const ofFolder = !support.startsWith('..') && support.includes('/');
  return (ofFolder ? support : relative(SRC, path)).split('/')[0] ?? '';
}

describe('the vfio core names no variant', () => {
  const core = tsFiles(join(SRC, 'vfio'));

  it('src/vfio imports only the core, platform, fdt and the leaves (trace, native, text, errors)', () => {
    const bad = core.flatMap((file) =>
      imports(file)
        .filter((target) => !CORE_MAY_IMPORT.includes(folderOf(target)))
        .map((target) => `${relative(ROOT, file)} imports ${relative(ROOT, target)}`),
    );
    assert.deepEqual(bad, []);
  });

  it('no identifier, string or vendor literal in src/vfio names a variant', () => {
    const bad: string[] = [];
    for (const file of core) {
      for (const t of tokens(readFileSync(file, 'utf8'))) {
        const named =
          t.kind === ts.SyntaxKind.NumericLiteral
            ? VARIANT_NUMBERS.test(t.text)
            : VARIANT_WORDS.test(t.text);
        if (named) bad.push(`${relative(ROOT, file)}:${t.line}: ${t.text}`);
      }
    }
    assert.deepEqual(bad, []);
  });

  it('the check sees code and strings, not comments', () => {
    const words = (text: string) =>
      tokens(text)
        .filter((t) => VARIANT_WORDS.test(t.text))
        .map((t) => t.text);
    assert.deepEqual(words("// NVLink2 history\nconst a = 'plain'; /* npu */"), []);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the text is TypeScript with a template
    assert.deepEqual(words('const nvlinkIndex = 1;\nconst s = `x ${a} ibm,npu`;'), [
      'nvlinkIndex',
      '} ibm,npu`',
    ]);
    assert.deepEqual(words('const r = /atsd/.test(s) ? "V100" : 0;'), ['/atsd/', '"V100"']);
  });
});

describe('variant folders have no import cycle', () => {
  // A variant folder is checked from the day it exists.
  for (const variant of VARIANTS.filter((v) => existsSync(join(SRC, v)))) {
    it(`src/${variant}`, () => {
      const files = tsFiles(join(SRC, variant));
      const cycles = stronglyConnected(
        new Map(files.map((f) => [f, imports(f).filter((d) => files.includes(d))])),
      );
      assert.deepEqual(
        cycles.map((c) => c.map((f) => relative(ROOT, f)).sort()),
        [],
      );
    });
  }
});

/** Tarjan's strongly connected components with more than one file (each is an import cycle). */
function stronglyConnected(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    for (let w = stack.pop(); w !== undefined; w = w === v ? undefined : stack.pop()) {
      onStack.delete(w);
      component.push(w);
    }
    if (component.length > 1) out.push(component);
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}
