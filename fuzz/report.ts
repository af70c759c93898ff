// What a fuzz run found, and how it is printed: failures (each with the case to replay), the
// reply codes, the books, memory, and which mutators led where.
import type { Accounting } from './accounting.js';
import type { FuzzCase } from './cases.js';
import type { Outcome } from './smtp-wire.js';
import type { PayloadProblem } from './stand-in-api.js';

/** A case as the report names it (its bytes are made again from seed and number, or read). */
export interface CaseRef {
  index: number;
  seed: number;
  source: string;
  mutators: string[];
  declareSize: boolean;
  /** the replayed file, for a case that is one */
  file?: string;
}

/** How the report names a case: all but its bytes. */
export const caseRef = (c: FuzzCase & { file?: string }): CaseRef => ({
  index: c.index,
  seed: c.seed,
  source: c.source,
  mutators: c.mutators,
  declareSize: c.declareSize,
  ...(c.file ? { file: c.file } : {}),
});

/** The key a reply is counted under: `554 5.6.0`, with ` at MAIL` and so on before DATA ended. */
export function codeKey(outcome: Outcome): string {
  if (outcome.kind === 'dropped') return `no reply (${outcome.stage})`;
  const status = /^\d{3}[ -](\d\.\d{1,3}\.\d{1,3})\b/.exec(outcome.text)?.[1];
  const code = status ? `${outcome.code} ${status}` : String(outcome.code);
  return outcome.stage === 'message'
    ? code
    : `${code} at ${outcome.stage.toUpperCase()}`;
}

export type FailureKind =
  | 'crash'
  | 'dropped'
  | 'no-queue-id'
  | 'accounting'
  | 'rss'
  | 'payload'
  | 'error-log'
  | 'not-serving'
  | 'shutdown';

export interface Failure {
  kind: FailureKind;
  detail: string;
  /** the case it is about, when there is one */
  case?: CaseRef;
  /** where its message was written for --replay */
  file?: string;
}

/** A message answered 250 that went dead for another reason than the stand-in's 422. */
export interface DeadFinding {
  queueId: string;
  reason: string;
  case?: CaseRef;
  file?: string;
}

/** A transaction and how long it took, from MAIL FROM to its last reply. */
export interface SlowCase {
  ms: number;
  /** the message's size in bytes */
  size: number;
  case: CaseRef;
}

export interface FuzzReport {
  seed: number;
  /** cases sent (a run stopped by a crash sends fewer than asked) */
  cases: number;
  durationMs: number;
  /** reply code (with enhanced status, and the stage when not after the message) -> cases */
  codes: Record<string, number>;
  accounting?: Accounting;
  /** dead by the stand-in's 422 */
  deadByApi: number;
  deadOther: DeadFinding[];
  /** POSTs answered 503 (retried) */
  retried: number;
  startRssMiB: number;
  peakRssMiB: number;
  /** after the spool drained (the books were read), before the daemon was stopped */
  endRssMiB: number;
  rssLimitMiB: number;
  /** per mutator: cases it was applied in, and how many of them were answered 250 */
  mutators: Record<string, { cases: number; accepted: number }>;
  /** the 10 slowest transactions, slowest first */
  slowest: SlowCase[];
  /** error lines the daemon logged, by message */
  errorLines: Record<string, number>;
  payloadProblems: PayloadProblem[];
  failures: Failure[];
}

export function passed(report: FuzzReport): boolean {
  return report.failures.length === 0;
}

const mib = (value: number) => `${value.toFixed(1)} MiB`;

/** A case as one line: how to make it again. */
export function describeCase(ref: CaseRef): string {
  if (ref.file) return `replayed file ${ref.file}`;
  const mutators = ref.mutators.length ? ref.mutators.join(' + ') : 'unmutated';
  return `seed ${ref.seed} case ${ref.index}: ${ref.source} with ${mutators}`;
}

/** The report as text, for a terminal or a CI log. */
export function formatReport(report: FuzzReport): string {
  const lines: string[] = [];
  const seconds = (report.durationMs / 1000).toFixed(1);
  lines.push(`seed ${report.seed}: ${report.cases} cases in ${seconds} s`);
  lines.push('replies:');
  const codes = Object.entries(report.codes).sort((a, b) => b[1] - a[1]);
  for (const [code, count] of codes) {
    lines.push(`  ${code.padEnd(32)} ${count}`);
  }
  const books = report.accounting;
  if (books) {
    lines.push(
      `books: ${books.accepted} answered 250 = ${books.posted} posted + ${books.held} held + ` +
        `${books.dead} dead (${report.deadByApi} by the API's 422, ${report.deadOther.length} ` +
        `other); ${report.retried} posts answered 503 and retried: ` +
        (books.balanced ? 'balanced' : 'NOT BALANCED'),
    );
  }
  lines.push(
    `daemon RSS: ${mib(report.startRssMiB)} at start, peak ${mib(report.peakRssMiB)} ` +
      `(limit ${mib(report.startRssMiB + report.rssLimitMiB)}), ` +
      `${mib(report.endRssMiB)} ${books ? 'once drained' : 'at the last sample'}`,
  );
  lines.push('mutators (cases, answered 250):');
  for (const [name, { cases, accepted }] of Object.entries(
    report.mutators,
  ).sort()) {
    lines.push(
      `  ${name.padEnd(20)} ${String(cases).padStart(6)} ${String(accepted).padStart(6)}`,
    );
  }
  lines.push('slowest transactions (MAIL FROM to the last reply):');
  for (const slow of report.slowest.slice(0, 5)) {
    lines.push(
      `  ${String(slow.ms).padStart(7)} ms  ${String(slow.size).padStart(8)} bytes  ` +
        describeCase(slow.case),
    );
  }
  for (const finding of report.deadOther.slice(0, 20)) {
    const where = finding.case ? describeCase(finding.case) : 'no case';
    lines.push(
      `dead, not by the API: ${finding.queueId} (${where}): ${finding.reason}`,
    );
  }
  for (const [message, count] of Object.entries(report.errorLines)) {
    lines.push(`daemon error line x${count}: ${message}`);
  }
  for (const failure of report.failures.slice(0, 50)) {
    const about = failure.case ? ` [${describeCase(failure.case)}]` : '';
    const file = failure.file ? ` -> ${failure.file}` : '';
    lines.push(`FAIL ${failure.kind}: ${failure.detail}${about}${file}`);
  }
  if (report.failures.length > 50) {
    lines.push(`... and ${report.failures.length - 50} more failures`);
  }
  lines.push(
    passed(report) ? 'PASS' : `FAIL: ${report.failures.length} failures`,
  );
  return lines.join('\n');
}
