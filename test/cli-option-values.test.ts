/**
 * An option that takes a value followed directly by another option is one usage line in every
 * command (`vfio-nvlink2: CMD: USAGE: --OPT needs a value, not the option '--NEXT' …`, exit 2),
 * naming both, instead of parseArgs' own "argument is ambiguous" text; the other parseArgs
 * failures (unknown option, a value given to a flag) are one line naming the option too.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCliInProcess } from './support/cli.ts';

/** [command words, the option taking a value, the option following it]. */
const CASES: readonly [readonly string[], string, string][] = [
  [['migrate', '--from', 'a.sock', '--to', 'b.sock'], '--pause-pid', '--json'],
  [['serve'], '--socket-dir', '--json'],
  [['inspect'], '--socket-dir', '--json'],
  [['guest'], '--socket-dir', '--json'],
  [['topology'], '--svg', '--dot'],
  [['trace'], '--socket-dir', '--json'],
  [['fuzz'], '--messages', '--json'],
  [['dt', 'generate'], '--machine', '--output'],
  [['dt', 'show'], '--node', '--json'],
  [['dt', 'doctor'], '--kernel', '--json'],
  [['bench'], '--json', '--quick'],
];

describe('an option missing its value, followed by another option', () => {
  for (const [words, option, next] of CASES) {
    const command = words.filter((w) => !w.startsWith('-') && !w.endsWith('.sock')).join(' ');
    it(`${command} ${option} ${next}: one usage line naming both, exit 2`, async () => {
      const r = await runCliInProcess([...words, option, next]);
      assert.equal(r.status, 2, r.stderr);
      assert.equal(
        r.stderr.split('\n')[0],
        `vfio-nvlink2: ${command}: USAGE: ${option} needs a ${command === 'bench' ? 'file' : 'value'}, not the option '${next}' (a ${command === 'bench' ? 'file' : 'value'} starting with a dash: ${option}=${command === 'bench' ? 'FILE' : 'VALUE'})`,
      );
    });
  }

  it('an unknown option and a value given to a flag: one line naming the option', async () => {
    for (const [args, line] of [
      [['dt', 'show', '--bogus'], "vfio-nvlink2: dt show: USAGE: unknown option '--bogus'"],
      [['topology', '--dot=1'], 'vfio-nvlink2: topology: USAGE: --dot takes no value'],
      [['migrate', '--from', 'a', '--to'], 'vfio-nvlink2: migrate: USAGE: --to needs a value'],
    ] as const) {
      const r = await runCliInProcess([...args]);
      assert.equal(r.status, 2, r.stderr);
      assert.equal(r.stderr.split('\n')[0], line);
    }
  });
});
