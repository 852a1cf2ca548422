#!/usr/bin/env node
/**
 * `npm run doctor-coverage [-- --every-variant] [--list] [--markdown] [--json]`: the doctor's
 * coverage, measured. Every fault `dt generate` can inject into the built-in 6-GPU tree (with
 * --every-variant: into each of the 36 clean variants) is linted and must be found by exactly
 * the rule its row of the table names; every clean variant must have no finding.
 * Prints the table by rule and the totals (--list: every fault too; --markdown: the README
 * table only; --json: everything). Exit 0 when complete, 1 when not, 2 for usage.
 */
import { parseArgs } from 'node:util';
import { SingleBar } from 'cli-progress';
import { cleanWitherspoonVariants } from '../src/platform/witherspoon/variants.ts';
import {
  coverageComplete,
  coverageMarkdown,
  coverageSummary,
  exactlyExpected,
  measureCoverage,
} from '../test/support/nvlink2/lint/coverage.ts';

let values: { 'every-variant'?: boolean; list?: boolean; markdown?: boolean; json?: boolean };
try {
  ({ values } = parseArgs({
    options: {
      'every-variant': { type: 'boolean' },
      list: { type: 'boolean' },
      markdown: { type: 'boolean' },
      json: { type: 'boolean' },
    },
    strict: true,
  }));
} catch (err) {
  console.error(`doctor-coverage: ${(err as Error).message}`);
  process.exit(2);
}

const clean = cleanWitherspoonVariants();
const bases = values['every-variant'] ? clean : [{ label: 'built-in 6-GPU tree', options: {} }];
const bar =
  process.stderr.isTTY && !values.json
    ? new SingleBar({
        stream: process.stderr,
        format: 'doctor-coverage [{bar}] {value}/{total} trees | {eta_formatted} left',
        hideCursor: true,
      })
    : null;
let started = false;
const coverage = measureCoverage(bases, clean, (done, total) => {
  if (!started) bar?.start(total, 0);
  started = true;
  bar?.update(done);
});
bar?.stop();

if (values.json) {
  console.log(JSON.stringify({ ...coverage, complete: coverageComplete(coverage) }, null, 2));
} else if (values.markdown) {
  console.log(coverageMarkdown(coverage));
} else {
  if (values.list) {
    for (const f of coverage.faults) {
      const mark = exactlyExpected(f) ? 'ok  ' : 'MISS';
      const where = bases.length > 1 ? `${f.variant}: ` : '';
      console.log(
        `${mark} ${f.expected} ${f.found.join(',') || '-'} ${f.findings} ${where}${f.flags}`,
      );
    }
    console.log('');
  }
  console.log(coverageMarkdown(coverage));
  console.log('');
  for (const f of coverage.faults.filter((x) => !exactlyExpected(x)))
    console.log(
      `MISS ${f.variant}: ${f.flags}: expected ${f.expected}, found ${f.found.join(', ') || 'nothing'}`,
    );
  for (const v of coverage.clean.filter((x) => x.findings.length > 0))
    console.log(`DIRTY ${v.label}: ${v.findings.join('; ')}`);
  for (const line of coverageSummary(coverage)) console.log(line);
}
process.exitCode = coverageComplete(coverage) ? 0 : 1;
