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
}

/** The `vfio-nvlink2` command lines of README.md's fenced blocks, in order. */
export function readmeExamples(readme: string): Example[] {
  const out: Example[] = [];
  const blocks = readme.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm);
  for (const [, lang, body = ''] of blocks) {
    const lines = body.split('\n');
    let skippedServe: string | undefined;
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
      out.push({ line, errorCode, after: skippedServe });
      const dt = /vfio-nvlink2 serve --dt (\S+)/.exec(line);
      if (dt) skippedServe = `serve --dt ${dt[1]}`;
    });
  }
  return out;
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

  for (const e of examples) {
    const reason = skipReason(e);
    it(e.line, { skip: reason ?? false }, () => {
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
    });
  }
});
