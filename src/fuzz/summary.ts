/**
 * A fuzz report as text for a person: what was sent, how the server answered (replies by
 * errno), how connections ended, whether it survived and came back to where it started, and
 * every failure with what is needed to reproduce it.
 */
import type { FuzzReport } from './run-fuzz.ts';

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
const mbKiB = (kib: number | null) =>
  kib === null ? '?' : `${((kib * 1024) / 1e6).toFixed(0)} MB`;

/** Error replies, most frequent first: "EINVAL 6012, ENOENT 103". */
function errnoList(errors: Record<string, number>): string {
  return Object.entries(errors)
    .sort((a, b) => b[1] - a[1])
    .map(([name, n]) => `${name} ${n}`)
    .join(', ');
}

/** The report of a fuzz run as text for people. */
export function renderSummary(r: FuzzReport): string {
  const c = r.counts;
  const errorReplies = Object.values(c.errors).reduce((a, b) => a + b, 0);
  const s = r.server;
  const lines = [
    `fuzz: seed ${r.seed}, ${c.messages} messages over ${r.lanes} lanes to ${r.devices} devices in ${r.seconds.toFixed(1)} s`,
    `  messages sent     ${c.messages} (${mb(c.bytes)})${c.unsent > 0 ? `, ${c.unsent} planned for second clients that had no turn` : ''}`,
    `  connections       ${c.connections}: closed by the server ${c.closedByServer}, second clients refused ${c.refused}, reconnects while busy ${c.busyRetries}`,
    `  replies           ${c.ok + errorReplies}: OK ${c.ok}${errorReplies > 0 ? `, ${errnoList(c.errors)}` : ''}`,
    `  fds in replies    ${c.replyFds}`,
    `  guarded writes    ${c.guarded} (fuzz writes moved off the canaries)`,
    `  crashes           ${s.alive ? 0 : 1} (server ${s.alive ? 'alive' : s.exit})`,
    `  server CPU        ${s.cpuSeconds === null ? '?' : `${s.cpuSeconds.toFixed(1)} s`}`,
    `  server after      fds ${s.fdsBefore} → ${s.fdsAfter ?? '?'}, RSS ${mbKiB(s.rssKiBBefore)} → ${mbKiB(s.rssKiBAfter)}, tables ${s.tablesUnchanged === null ? '?' : s.tablesUnchanged ? 'unchanged' : 'CHANGED'}, ${s.logLines} log lines, ${s.internalErrorCount} internal errors`,
    `  well-behaved      ${r.devices - new Set(r.checks.map((f) => f.device)).size}/${r.devices} devices served right and canaries intact`,
  ];
  if (r.failures.length === 0) {
    lines.push('  result            PASS');
    return lines.join('\n');
  }
  lines.push(`  result            FAIL (${r.failures.length})`);
  for (const f of r.failures) lines.push(`    ${f}`);
  for (const a of r.anomalies.slice(0, 10)) {
    lines.push(
      `    reproduce: --seed ${r.seed} --messages ${r.messagesPlanned} (lane ${a.lane}, connection ${a.connection}${a.frame ? `, frame ${a.frame.index}: ${a.frame.label}` : ''})`,
    );
  }
  for (const e of s.internalErrors) lines.push(`    server: ${e}`);
  if (s.logTail.length > 0) {
    lines.push('  last server log lines:');
    for (const l of s.logTail.slice(-15)) lines.push(`    ${l}`);
  }
  return lines.join('\n');
}
