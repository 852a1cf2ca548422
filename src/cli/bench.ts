/**
 * `vfio-nvlink2 bench [--json FILE] [--quick]`: measures the vfio-user server against floors
 * taken in the same run (src/bench/run-bench.ts), prints the table on stdout, progress on
 * stderr, and writes the results as JSON (default bench-results.json). Exit 0 whether or not
 * the targets are met; 1 when something could not be measured, 2 for bad usage.
 */
import { writeFileSync } from 'node:fs';
import { describePlacement, FULL_PLAN, QUICK_PLAN, renderTable, runBench } from '../bench/index.ts';
import { CliError } from './cli-error.ts';

const USAGE = `usage: vfio-nvlink2 bench [--json FILE] [--quick] [--no-pin]

Measures, in one run, against floors taken between the same two processes:
  8-byte REGION_READ round trip (p50, p99), 1 MiB REGION_READ/REGION_WRITE throughput,
  GPU RAM copies through the client's mapping, \`serve\` start-up and RSS (6 GPUs).

  --json FILE   where to write the results (default bench-results.json)
  --quick       few samples: checks that every figure can be measured, nothing more
  --no-pin      let the scheduler place the bench and its peer (by default both are pinned
                to one CPU for the wire figures, so the floor does not flip between runs)`;

interface BenchArgs {
  json: string;
  quick: boolean;
  pin: boolean;
}

function parseArgs(argv: readonly string[]): BenchArgs | null {
  const args: BenchArgs = { json: 'bench-results.json', quick: false, pin: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') return null;
    if (a === '--quick') args.quick = true;
    else if (a === '--no-pin') args.pin = false;
    else if (a === '--json') {
      const file = argv[++i];
      if (file === undefined)
        throw new CliError('bench', 'USAGE', `--json needs a file\n\n${USAGE}`);
      args.json = file;
    } else if (a.startsWith('--json=')) args.json = a.slice('--json='.length);
    else throw new CliError('bench', 'USAGE', `unknown option '${a}'\n\n${USAGE}`);
  }
  return args;
}

/**
 * `vfio-nvlink2 bench [--quick] [--no-pin] [--json FILE]`: returns the exit status.
 * @throws CliError USAGE for an unknown option or --json without a file.
 */
export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  if (args === null) {
    console.log(USAGE);
    return 0;
  }
  const result = await runBench(
    args.quick ? QUICK_PLAN : FULL_PLAN,
    (m) => process.stderr.write(`bench: ${m}\n`),
    args.pin,
  );
  console.log(renderTable(result.figures));
  const load = (l: readonly number[]) => l.map((v) => v.toFixed(2)).join(' ');
  console.log(
    `\n${result.cpus} CPUs, load average ${load(result.load.start)} at start, ${load(result.load.end)} at end; ${describePlacement(result.placement)}`,
  );
  writeFileSync(args.json, `${JSON.stringify(result, null, 2)}\n`);
  const missed = result.figures.filter((f) => !f.pass).length;
  console.log(
    `\n${missed === 0 ? 'every target met' : `${missed} target(s) missed`}; results in ${args.json}`,
  );
  return 0;
}
