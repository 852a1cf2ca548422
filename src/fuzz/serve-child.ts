/**
 * The server under fuzz: a real `vfio-nvlink2 serve` child process on a fresh socket
 * directory (the built-in platform, every device), ready once devices.json exists and it
 * printed "ready". Its log is read line by line as it comes (it can be large: one line per
 * error reply) and only what a report needs is kept: the line count, lines that say
 * "internal error" (a handler threw something other than a VfioError), and the last lines.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { cliEntry, stopChild } from '../bench/index.ts';
import {
  readServeState,
  type ServedDevice,
  type ServeState,
  servedDevices,
} from '../serve-dir/index.ts';
import { descriptorCount } from './descriptor-count.ts';

const KEEP_INTERNAL = 20;
const KEEP_TAIL = 40;
const READY_TIMEOUT_MS = 60_000;

/** The parts of state.json a run compares before and after. */
export type ServerTables = Pick<ServeState, 'partitions' | 'lpidsInUse' | 'firmware'>;

/** The server under fuzz, as the module header describes. */
export class ServeChild {
  readonly dir: string;
  readonly child: ChildProcess;
  logLines = 0;
  readonly internalErrors: string[] = [];
  internalErrorCount = 0;
  readonly #tail: string[] = [];
  #exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  #stdout = '';
  /** The whole log is copied here when asked for (fd of the file), else -1. */
  #logFd = -1;

  private constructor(dir: string, child: ChildProcess, logFile: string | undefined) {
    this.dir = dir;
    this.child = child;
    if (logFile !== undefined) this.#logFd = openSync(logFile, 'w');
    child.once('exit', (code, signal) => {
      this.#exit = { code, signal };
    });
    child.stdout?.on('data', (d: Buffer) => {
      if (this.#stdout.length < 65536) this.#stdout += d.toString();
    });
    if (child.stderr) {
      createInterface({ input: child.stderr }).on('line', (line) => this.#onLog(line));
    }
  }

  /**
   * Starts `serve` (extra `args` appended) and waits until every socket is listed.
   * @throws Error when it exits or stays silent for a minute, with its log.
   */
  static async start(args: readonly string[] = [], logFile?: string): Promise<ServeChild> {
    const dir = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-fuzz-'));
    const cmd = cliEntry(['serve', '--socket-dir', dir, ...args]);
    const child = spawn(cmd.file, cmd.args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const serve = new ServeChild(dir, child, logFile);
    // Whatever ends this process (an error, ^C through the CLI's handler) ends the server too.
    const onExit = () => {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    };
    process.once('exit', onExit);
    child.once('exit', () => process.off('exit', onExit));
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!(existsSync(join(dir, 'devices.json')) && serve.#stdout.includes('ready'))) {
      if (serve.exit !== null || Date.now() > deadline) {
        await serve.stop();
        throw new Error(
          `serve ${serve.exit ? `exited (${serve.describeExit()})` : 'did not get ready'} before listening:\n${serve.tail().join('\n')}`,
        );
      }
      await sleep(20);
    }
    return serve;
  }

  #onLog(line: string): void {
    this.logLines++;
    if (this.#logFd >= 0) writeSync(this.#logFd, `${line}\n`);
    if (/internal error|release failed/.test(line)) {
      this.internalErrorCount++;
      if (this.internalErrors.length < KEEP_INTERNAL) this.internalErrors.push(line);
    }
    this.#tail.push(line);
    if (this.#tail.length > KEEP_TAIL) this.#tail.shift();
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** How it ended, or null while it runs. */
  get exit(): { code: number | null; signal: NodeJS.Signals | null } | null {
    return this.#exit;
  }

  describeExit(): string {
    const e = this.#exit;
    if (e === null) return 'running';
    return e.signal !== null ? `signal ${e.signal}` : `exit code ${e.code}`;
  }

  /** The last lines of its log. */
  tail(): string[] {
    return [...this.#tail];
  }

  /** Every served device (devices.json entries with a socket). */
  devices(): ServedDevice[] {
    return servedDevices(this.dir);
  }

  tables(): ServerTables {
    const s = readServeState(join(this.dir, 'state.json'));
    return { partitions: s.partitions, lpidsInUse: s.lpidsInUse, firmware: s.firmware };
  }

  /** Open descriptors (/proc/PID/fd) but the ones serve holds for an instant (`descriptorCount`). */
  fdCount(): number {
    return descriptorCount(this.pid);
  }

  /** VmRSS in KiB (/proc/PID/status). */
  rssKiB(): number {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  }

  /** utime + stime in seconds (/proc/PID/stat fields 14 and 15, in clock ticks of 1/100 s). */
  cpuSeconds(): number {
    const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  }

  /** SIGTERM (then SIGKILL after 5 s) and removes the socket directory. */
  async stop(): Promise<void> {
    await stopChild(this.child);
    if (this.#logFd >= 0) closeSync(this.#logFd);
    this.#logFd = -1;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
