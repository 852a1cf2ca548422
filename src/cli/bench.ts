/**
 * `vfio-nvlink2 bench [--json FILE] [--quick]`: measures the vfio-user server against floors
 * taken in the same run (src/bench/run-bench.ts), prints the table on stdout, a progress bar on
 * stderr when it is a terminal, and writes the results as JSON (default bench-results.json). Exit 0 when every target
 * is met, 3 when one is missed (0 with --no-fail); 1 when something could not be measured, 2
 * for bad usage.
 */
import {
  type BenchPlan,
  benchVerdict,
  describePlacement,
  FULL_PLAN,
  QUICK_PLAN,
  renderTable,
  runBench,
} from '../bench/index.ts';
import { CliError } from './cli-error.ts';
import { printLine, writeOutputFile } from './output.ts';
import { startProgress } from './progress.ts';

const USAGE = `usage: vfio-nvlink2 bench [--json FILE] [--quick] [--no-pin] [--no-fail]

Measures, in one run, against floors taken on the same CPU: 4-byte config-space REGION_READ
round trip (p50, p99) and 1 MiB REGION_READ/REGION_WRITE throughput against a C echo (and a
Node echo), GPU RAM copies through the client's mapping, \`serve\` start-up and RSS (6 GPUs),
and region reads with the tracer detached after a \`trace\` client against never traced.
With LVU_GPIO=PATH (a built libvfio-user samples/gpio-pci-idio-16), that server is measured
too, interleaved, with the same client.
A progress bar shows on a terminal (stderr); piped, only the table is printed.

  --json FILE   where to write the results (default bench-results.json)
  --quick       few samples: checks that every figure can be measured, nothing more
  --no-fail     exit 0 even when a target is missed (by default: exit 3)
  --no-pin      let the scheduler place the bench and its peer (by default both are pinned
                to one CPU for the wire figures, so the floor does not flip between runs)`;

interface BenchArgs {
  json: string;
  quick: boolean;
  pin: boolean;
  fail: boolean;
}

function parseArgs(argv: readonly string[]): BenchArgs | null {
  const args: BenchArgs = { json: 'bench-results.json', quick: false, pin: true, fail: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') return null;
    if (a === '--quick') args.quick = true;
    else if (a === '--no-pin') args.pin = false;
    else if (a === '--no-fail') args.fail = false;
    else if (a === '--json') {
      const file = argv[++i];
      // An option next is not a file name (one starting with a dash goes as --json=FILE).
      if (file === undefined || file.startsWith('-'))
        throw new CliError(
          'bench',
          'USAGE',
          `--json needs a file${file === undefined ? '' : `, not the option '${file}' (a file starting with a dash: --json=FILE)`}\n\n${USAGE}`,
        );
      args.json = file;
    } else if (a.startsWith('--json=')) args.json = a.slice('--json='.length);
    else throw new CliError('bench', 'USAGE', `unknown option '${a}'\n\n${USAGE}`);
  }
  return args;
}

/** Progress messages runBench sends: five phases, one per start-up run, the tracer one. */
function benchSteps(plan: BenchPlan): number {
  return 6 + plan.startup.runs;
}

/**
 * `vfio-nvlink2 bench [--quick] [--no-pin] [--json FILE]`: returns the exit status.
 * @throws CliError USAGE for an unknown option or --json without a file.
 */
export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  if (args === null) {
    await printLine(USAGE);
    return 0;
  }
  const plan = args.quick ? QUICK_PLAN : FULL_PLAN;
  // A bar on a terminal, one step per phase and per start-up run; nothing when piped.
  const bar = startProgress('bench', benchSteps(plan));
  let step = 0;
  let result: Awaited<ReturnType<typeof runBench>>;
  try {
    result = await runBench(
      plan,
      (m) => bar.update(step++, m),
      args.pin,
      process.env.LVU_GPIO || null,
    );
    bar.update(benchSteps(plan), 'done');
  } finally {
    bar.stop();
  }
  await printLine(renderTable(result.figures));
  const load = (l: readonly number[]) => l.map((v) => v.toFixed(2)).join(' ');
  await printLine(
    `\n${result.cpus} CPUs, load average ${load(result.load.start)} at start, ${load(result.load.end)} at end; ${describePlacement(result.placement)}`,
  );
  writeOutputFile('bench', args.json, `${JSON.stringify(result, null, 2)}\n`);
  const verdict = benchVerdict(result.figures, !args.fail);
  await printLine(`\n${verdict.summary}; results in ${args.json}`);
  return verdict.exitCode;
}
