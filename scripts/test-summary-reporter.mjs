// A node:test reporter for scripts/run-tests.mjs: prints nothing while tests run (the spec
// reporter does that), then TAP-style summary lines a CI job can parse (`# tests N`,
// `# pass N`, `# fail N`, ...) and the slowest files. With VFIO_NVLINK2_TEST_SUMMARY set, it
// also writes the counts as JSON to that file, so the runner can refuse a run of zero tests
// or a test file that declares none.
import { writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { sourcePath } from './dist.mjs';

const COUNTS = ['tests', 'suites', 'pass', 'fail', 'cancelled', 'skipped', 'todo', 'duration_ms'];

export default async function* summary(source) {
  const counts = {};
  /** file → summed duration (ms) of its top-level tests (a file's tests run one after another). */
  const files = new Map();
  /** Files that declared no test: Node 20 reports such a file as one passing test of its name. */
  const empty = [];
  for await (const event of source) {
    const data = event.data ?? {};
    if ((event.type === 'test:pass' || event.type === 'test:fail') && data.nesting === 0) {
      // Named by their source (the runner runs dist/…/x.test.js for x.test.ts).
      const file = data.file ? relative(process.cwd(), sourcePath(data.file)) : '?';
      if (event.type === 'test:pass' && data.file && data.name === data.file) empty.push(file);
      files.set(file, (files.get(file) ?? 0) + (data.details?.duration_ms ?? 0));
    } else if (event.type === 'test:diagnostic' && data.nesting === 0) {
      const m = /^(\w+) ([\d.]+)$/.exec(data.message ?? '');
      if (m && COUNTS.includes(m[1])) counts[m[1]] = Number(m[2]);
    }
  }
  const lines = ['', '# summary (scripts/run-tests.mjs)'];
  for (const key of COUNTS) if (key in counts) lines.push(`# ${key} ${counts[key]}`);
  const slowest = [...files].sort((a, b) => b[1] - a[1]).slice(0, 10);
  if (slowest.length > 0) {
    lines.push('# slowest files (seconds, summed over their top-level tests):');
    for (const [file, ms] of slowest)
      lines.push(`#   ${(ms / 1000).toFixed(1).padStart(6)}  ${file}`);
  }
  yield `${lines.join('\n')}\n`;
  const out = process.env.VFIO_NVLINK2_TEST_SUMMARY;
  if (out) writeFileSync(out, JSON.stringify({ counts, empty, files: Object.fromEntries(files) }));
}
