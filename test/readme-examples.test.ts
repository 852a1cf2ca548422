/**
 * Every example command of README.md, pasted in order into a shell (issue 13.5): each fenced
 * `vfio-nvlink2 …` line (a `$ ` line of a console block, any line of an sh block) runs with
 * `bash -c` in one scratch directory, `vfio-nvlink2` on PATH, the README's socket dirs pointing
 * at one `serve` of the built-in platform that this test starts. An example whose README output
 * is an error line must fail with that code; any other must exit 0; none may print a stack.
 * Examples that cannot run here are skipped, each with its reason. Every run is bounded.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI, cliArgs, HANG_GUARD_MS, ROOT } from './support/cli.ts';
import { type ServeProcess, startServe } from './support/serve-process.ts';

/** One example: the command line, and the error code its README output shows, if any. */
interface Example {
  readonly line: string;
  readonly errorCode: string | undefined;
  /** Another example of its block that it needs (a `serve --dt X` this test does not run). */
  readonly after: string | undefined;
  /** The lines README shows under a console block's `$ ` line (none for an sh block). */
  readonly output: readonly string[] | undefined;
  /** A `serve` with options earlier in its block, whose state the example shows. */
  readonly servedBy: string | undefined;
}

/** The `vfio-nvlink2` command lines of README.md's fenced blocks, in order. */
export function readmeExamples(readme: string): Example[] {
  const out: Example[] = [];
  const blocks = readme.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm);
  for (const [, lang, body = ''] of blocks) {
    const lines = body.split('\n');
    let skippedServe: string | undefined;
    let servedBy: string | undefined;
    lines.forEach((first, i) => {
      const shell = lang === 'sh';
      if (!shell && !first.startsWith('$ ')) return;
      // A line ending in a backslash goes on in the next, as the shell reads it.
      let text = first;
      while (text.endsWith('\\') && i + 1 < lines.length) {
        i += 1;
        text = `${text.slice(0, -1)} ${(lines[i] ?? '').trim()}`;
      }
      const line = shell ? text : text.slice(2);
      // The CLI's lines, and the file commands between them that make their inputs.
      const setup = !shell && /^(cp|fdtput|dtc|mkdir) /.test(line);
      if (!setup && !/(^|[;&|] *)vfio-nvlink2 /.test(line)) return;
      let errorCode: string | undefined;
      if (!shell) {
        const next = lines[i + 1] ?? '';
        errorCode = /^vfio-nvlink2: [^:]+: ([A-Z_0-9]+): /.exec(next)?.[1];
      }
      let output: string[] | undefined;
      if (!shell) {
        output = [];
        for (let j = i + 1; j < lines.length && !(lines[j] ?? '').startsWith('$ '); j++)
          output.push(lines[j] ?? '');
        while (output.length > 0 && output[output.length - 1] === '') output.pop();
      }
      out.push({ line, errorCode, after: skippedServe, output, servedBy });
      const serve = /vfio-nvlink2 (serve(?: +[^ #>&|]+)*)/.exec(line)?.[1];
      // Options that change what later examples show (not where serve listens, its log or readiness).
      const plain = / --(socket-dir|ready-fd) \S+| --(verbose|quiet)| \d+$/g;
      if (serve !== undefined && serve.replace(plain, '') !== 'serve') servedBy = serve;
      const dt = /vfio-nvlink2 serve --dt (\S+)/.exec(line);
      if (dt) skippedServe = `serve --dt ${dt[1]}`;
    });
  }
  return out;
}

/** ISO 8601 UTC timestamps of log lines: the README's are another day's. */
const TIMESTAMP = /\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\b/g;

/** A README line standing for lines left out: `...` or `…`, maybe with a `# comment`. */
const ELISION = /^\s*(\.\.\.|…)\s*(#.*)?$/;

/**
 * Whether `actual` is what README shows: line for line, where a line that is only `...` (or `…`)
 * (and a `# comment` after it) stands for any number of lines and a `…` inside a line for any text; timestamps and trailing
 * blanks are not compared.
 */
export function outputMatches(expected: readonly string[], actual: readonly string[]): boolean {
  const norm = (l: string) => l.replace(TIMESTAMP, '<time>').trimEnd();
  const want = expected.map(norm);
  const got = actual.map(norm);
  const lineMatches = (w: string, g: string) => {
    if (!w.includes('…')) return w === g;
    const parts = w.split('…').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    return new RegExp(`^${parts.join('.*')}$`).test(g);
  };
  // memo[i][j]: want[i..] matches got[j..]; filled from the ends (at most a few hundred lines).
  const memo = new Map<number, boolean>();
  const match = (i: number, j: number): boolean => {
    const key = i * (got.length + 1) + j;
    const known = memo.get(key);
    if (known !== undefined) return known;
    let r: boolean;
    const w = want[i];
    if (w === undefined) r = j === got.length;
    else if (ELISION.test(w)) {
      r = false;
      for (let k = j; k <= got.length && !r; k++) r = match(i + 1, k);
    } else {
      const g = got[j];
      r = g !== undefined && lineMatches(w, g) && match(i + 1, j + 1);
    }
    memo.set(key, r);
    return r;
  };
  return match(0, 0);
}

/** Why an example's printed output cannot be compared with README's; undefined when it can. */
function outputSkipReason(e: Example): string | undefined {
  if (e.servedBy !== undefined)
    return `shows the state of the \`${e.servedBy}\` README starts before it`;
  return undefined;
}

const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

/** Why an example cannot run here; undefined when it can. */
function skipReason(e: Example): string | undefined {
  const { line } = e;
  if (/vfio-nvlink2 serve\b/.test(line))
    return "serve runs in the foreground: this test's serve of the built-in platform stands for it";
  if (e.after && /\/tmp\/(vn|nv)\b/.test(line)) return `needs the ${e.after} the README starts`;
  if (/\/tmp\/(i7-|hx\/)/.test(line))
    return 'a hostile directory or server built by a test (socket-dir-files, hostile-server)';
  if (/\bdeep\.dtb\b|host-dt\b/.test(line))
    return 'needs a tree the README made outside its examples';
  if (/vfio-nvlink2 bench\b/.test(line)) return 'measures for minutes: npm run bench';
  if (/# while uid \d+ still maps/.test(line))
    return 'needs a client of another uid that keeps its mapping (test/serve-held-memory.test.ts)';
  if (/vfio-nvlink2 trace\b/.test(line)) return 'streams until Ctrl-C';
  if (/vfio-nvlink2 migrate\b/.test(line))
    return 'needs the two serve processes and the writer the README starts (test/migrate-cli.test.ts runs it)';
  if (/\| *dot\b/.test(line) && !has('dot')) return 'needs Graphviz dot';
  if (/\| *jq\b/.test(line) && !has('jq')) return 'needs jq';
  for (const tool of ['dtc', 'fdtput', 'fdtget', 'fdtoverlay'])
    if (new RegExp(`\\b${tool}\\b`).test(line) && !has(tool))
      return `needs ${tool} (device-tree-compiler)`;
  if (/\b(fixed|orig)\.dtb\b/.test(line) && !has('fdtoverlay'))
    return 'its input is made with fdtoverlay (device-tree-compiler)';
  if (/\.dts\b/.test(line) && !has('dtc')) return 'DTS input needs dtc (device-tree-compiler)';
  return undefined;
}

describe('every README example runs', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const examples = readmeExamples(readme);
  const scratch = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-readme-'));
  const bin = join(scratch, 'bin');
  const cwd = join(scratch, 'work');
  let serve: ServeProcess | undefined;

  before(async () => {
    mkdirSync(bin);
    mkdirSync(cwd);
    cliArgs(); // dist/ built and current
    writeFileSync(
      join(bin, 'vfio-nvlink2'),
      `#!/bin/sh\nexec '${process.execPath}' '${CLI}' "$@"\n`,
    );
    chmodSync(join(bin, 'vfio-nvlink2'), 0o755);
    writeFileSync(join(cwd, 'junk.dtb'), 'junk'); // "here junk.dtb holds the four bytes junk"
    serve = await startServe([], { dir: join(scratch, 'sockets') });
  });
  after(async () => {
    await serve?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('finds the examples', () => {
    assert.ok(examples.length >= 40, `only ${examples.length} examples found`);
  });

  it('an example showing `exit N` prints it: its command ends with echo "exit $?"', () => {
    for (const e of examples)
      if (e.output?.some((l) => /^exit \d+$/.test(l)))
        assert.match(e.line, /; echo "exit \$\?"/, e.line);
  });

  it("prints serve's table as README shows it", () => {
    const first = examples.find((e) => /^vfio-nvlink2 serve --socket-dir \/tmp\/vn$/.test(e.line));
    assert.ok(first?.output, 'README shows a plain serve of the built-in platform');
    const dir = join(scratch, 'sockets');
    const printed = (serve?.stdout() ?? '').split(dir).join('/tmp/vn');
    const actual = printed.replace(/\n$/, '').split('\n');
    assert.ok(
      outputMatches(first.output, actual),
      `--- README\n${first.output.join('\n')}\n--- printed\n${actual.join('\n')}`,
    );
  });

  for (const e of examples) {
    const reason = skipReason(e);
    it(e.line, { skip: reason ?? false }, (t) => {
      const dir = join(scratch, 'sockets');
      const line = e.line.replace(/\/tmp\/(vn|nv)\b/g, dir);
      const r = spawnSync('bash', ['-c', line], {
        cwd,
        env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` },
        input: '',
        timeout: HANG_GUARD_MS,
        killSignal: 'SIGKILL',
        maxBuffer: 64 * 1024 * 1024,
      });
      assert.equal(r.error, undefined, `${line}: ${r.error?.message} (killed as hung?)`);
      const stderr = r.stderr.toString();
      assert.doesNotMatch(stderr, /^\s+at /m, `a stack trace:\n${stderr}`);
      assert.doesNotMatch(stderr, /: INTERNAL: /, stderr);
      // `dt diff` exits 1 when the trees differ, as diff(1) does.
      const ok = /vfio-nvlink2 dt diff /.test(line) ? [0, 1] : [0];
      if (e.errorCode === undefined)
        assert.ok(ok.includes(r.status ?? -1), `${line}: status ${r.status}\n${stderr}`);
      else {
        assert.notEqual(r.status, 0, `${line}: the README shows it failing`);
        assert.match(stderr, new RegExp(`: ${e.errorCode}: `), stderr);
      }
      const unchecked = outputSkipReason(e);
      if (unchecked !== undefined) t.diagnostic(`output not compared: ${unchecked}`);
      else if (e.output !== undefined) {
        const token = /\/tmp\/(vn|nv)\b/.exec(e.line)?.[0] ?? '/tmp/vn';
        const printed = `${r.stdout.toString()}${stderr}`.split(dir).join(token);
        const actual = printed === '' ? [] : printed.replace(/\n$/, '').split('\n');
        assert.ok(
          outputMatches(e.output, actual),
          `${line}: prints other than README shows\n--- README\n${e.output.join('\n')}\n--- printed\n${actual.join('\n')}`,
        );
      }
    });
  }
});

describe('README output matching', () => {
  it('compares line for line; `...` lines and inline `…` stand for what is left out', () => {
    assert.ok(outputMatches(['a', 'b'], ['a', 'b']));
    assert.ok(!outputMatches(['a', 'b'], ['a', 'c']));
    assert.ok(!outputMatches(['a'], ['a', 'b']), 'lines README does not show');
    assert.ok(!outputMatches(['a', 'b'], ['a']), 'lines README shows that are not printed');
    assert.ok(outputMatches(['a', '...', 'z'], ['a', 'z']));
    assert.ok(outputMatches(['a', '...   # a comment', 'z'], ['a', 'b', 'c', 'z']));
    assert.ok(!outputMatches(['a', '...', 'z'], ['a', 'b', 'y']));
    assert.ok(outputMatches(['x: …'], ['x: anything (a.b*c)']));
    assert.ok(!outputMatches(['x: …'], ['y: anything']));
    assert.ok(
      outputMatches(['2026-11-30T08:33:40.293Z started'], ['2027-01-01T00:00:00.000Z started']),
    );
    assert.ok(outputMatches([], []));
  });
});
