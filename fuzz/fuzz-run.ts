// A fuzz run in progress: the cases sent over several connections, each reply counted, the
// daemon's RSS sampled, a crash noticed; then the spool drained and the books checked.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  account,
  spoolCensus,
  type Accounting,
  type SpoolCensus,
} from './accounting.js';
import {
  loadCorpus,
  makeCase,
  type CorpusMessage,
  type FuzzCase,
  canary,
} from './cases.js';
import { DaemonProcess, memoryOf, type DaemonExit } from './daemon-process.js';
import { writeCase } from './failures.js';
import {
  caseRef,
  codeKey,
  type CaseRef,
  type DeadFinding,
  type Failure,
  type SlowCase,
} from './report.js';
import { createRng } from './rng.js';
import { SmtpWire, type Outcome } from './smtp-wire.js';
import { StandInApi } from './stand-in-api.js';

export interface RunOptions {
  seed: number;
  /** how many generated cases (ignored with `replay`) */
  cases: number;
  /** the number of the first generated case (default 0): `--case N` runs N alone */
  first?: number;
  /** message files to send instead of generated cases */
  replay?: string[];
  /** SMTP connections sending at once (default 8) */
  connections?: number;
  /** how far the daemon's RSS may grow over its RSS at start, in MiB (DEFAULT_RSS_LIMIT_MIB) */
  rssLimitMiB?: number;
  /** a reply not come within this is a failure (default 120 s) */
  replyTimeoutMs?: number;
  /** give up waiting for the spool to drain after this long without an outcome (default 60 s) */
  drainStallMs?: number;
  /** where failing messages are written; null writes none */
  failuresDir: string | null;
  /** a line of progress now and then */
  progress?: (line: string) => void;
}

/**
 * How far the daemon's RSS may grow, in MiB, unless told: the post thread's heap limit for the
 * fuzzer's 4 MiB messages (256 MiB), what the main thread's heap reached in a 30,000-case run
 * (115 MB), and the pages V8 and the allocator keep after a burst of large cases (about 200 MiB
 * by mapping). A 30,000-case run levels off under it (docs/fuzzing.md, "Memory").
 */
export const DEFAULT_RSS_LIMIT_MIB = 600;

export class FuzzRun {
  readonly failures: Failure[] = [];
  readonly codes: Record<string, number> = {};
  readonly mutators: Record<string, { cases: number; accepted: number }> = {};
  /** queue ids of the 250s, in order, and the case of each */
  readonly accepted: string[] = [];
  readonly caseOf = new Map<string, CaseRef>();
  readonly inFlight = new Set<FuzzCase>();
  /** the slowest transactions, slowest first (not a failure: a lead) */
  readonly slowest: SlowCase[] = [];
  sent = 0;
  /** no more cases are sent (a crash, a runaway RSS) */
  stopping = false;
  /** the RSS went over the limit once (noted as a failure then) */
  overLimit = false;
  /** transactions whose reply after the message never came: the daemon may have taken them */
  unanswered = 0;
  startRss = 0;
  /** the daemon's RSS at the last sample, and the most it was, in MiB */
  rss = 0;
  peakRss = 0;
  private readonly corpus: CorpusMessage[];
  private readonly rssLimit: number;

  constructor(
    private readonly options: RunOptions,
    private readonly api: StandInApi,
    private readonly daemon: DaemonProcess,
  ) {
    this.corpus = options.replay ? [] : loadCorpus();
    this.rssLimit = options.rssLimitMiB ?? DEFAULT_RSS_LIMIT_MIB;
  }

  get total(): number {
    return this.options.replay?.length ?? this.options.cases;
  }

  /** Case `k` of this run: generated, or the k-th replayed file. */
  caseAt(k: number): FuzzCase & { file?: string } {
    const { replay, seed } = this.options;
    const file = replay?.[k];
    if (file === undefined) {
      return makeCase(this.corpus, seed, (this.options.first ?? 0) + k);
    }
    const bytes = readFileSync(file);
    return {
      index: k,
      seed,
      source: file,
      mutators: [],
      declareSize: false,
      bytes,
      file,
    };
  }

  /** The bytes of a case named by `ref`, made again. */
  bytesOf(ref: CaseRef): Buffer {
    if (ref.file) return readFileSync(ref.file);
    if (ref.index < 0) return canary(ref.seed).bytes;
    return makeCase(this.corpus, ref.seed, ref.index).bytes;
  }

  fail(failure: Failure, bytes?: Buffer): void {
    const dir = this.options.failuresDir;
    if (failure.case && dir) {
      const story = { kind: failure.kind, detail: failure.detail };
      failure.file = writeCase(
        dir,
        failure.case,
        bytes ?? this.bytesOf(failure.case),
        story,
      );
    }
    this.failures.push(failure);
  }

  /** The daemon exited by itself: a failure, with the cases being sent then. */
  crashed(exit: DaemonExit): void {
    this.stopping = true;
    const lastErrors = this.daemon.errors
      .slice(-3)
      .map(e => JSON.stringify(e))
      .join(' | ');
    const detail =
      `the daemon exited (code ${exit.code}, signal ${exit.signal}) after ${this.sent} ` +
      `cases; stderr: ${this.daemon.stderr().slice(-1500)}; last error lines: ${lastErrors}`;
    this.fail({ kind: 'crash', detail });
    for (const c of this.inFlight) {
      const ref = caseRef(c);
      this.fail(
        { kind: 'crash', detail: 'being sent when it exited', case: ref },
        c.bytes,
      );
    }
  }

  /**
   * Samples the daemon's RSS. Over the limit is a failure, noted once with the cases being sent
   * then, and the run goes on (its books are still worth having); over the limit plus 1 GiB the
   * run stops, so that a runaway cannot take the machine down.
   */
  sampleRss(): void {
    const memory = memoryOf(this.daemon.pid);
    if (!memory || this.daemon.exit) return;
    this.rss = memory.rss;
    this.peakRss = Math.max(this.peakRss, memory.rss);
    const limit = this.startRss + this.rssLimit;
    if (memory.rss > limit && !this.overLimit) {
      this.overLimit = true;
      const detail =
        `daemon RSS ${memory.rss.toFixed(1)} MiB after ${this.sent} cases, over ` +
        `${this.startRss.toFixed(1)} + ${this.rssLimit} MiB; the cases being sent then follow`;
      this.fail({ kind: 'rss', detail });
      for (const c of this.inFlight) {
        const ref = caseRef(c);
        this.fail(
          { kind: 'rss', detail: 'being sent then', case: ref },
          c.bytes,
        );
      }
    }
    if (memory.rss > limit + 1024 && !this.stopping) {
      this.stopping = true;
      const detail = `daemon RSS ${memory.rss.toFixed(1)} MiB: the run stopped`;
      this.fail({ kind: 'rss', detail });
    }
  }

  async record(
    c: FuzzCase & { file?: string },
    outcome: Outcome,
  ): Promise<void> {
    const key = codeKey(outcome);
    this.codes[key] = (this.codes[key] ?? 0) + 1;
    const ok =
      outcome.kind === 'reply' &&
      outcome.stage === 'message' &&
      outcome.code === 250;
    for (const name of new Set(c.mutators)) {
      const tally = (this.mutators[name] ??= { cases: 0, accepted: 0 });
      tally.cases++;
      if (ok) tally.accepted++;
    }
    if (outcome.kind === 'dropped') {
      if (outcome.stage === 'message') this.unanswered++;
      // a crash drops every connection: the crash is the failure, reported once
      await Promise.race([this.daemon.exited, sleep(1000)]);
      if (this.daemon.exit) return;
      const detail = `${outcome.detail} (after ${outcome.stage})`;
      this.fail({ kind: 'dropped', detail, case: caseRef(c) }, c.bytes);
      return;
    }
    if (c.index === -1 && !ok) {
      const detail = `a clean message after the cases got ${outcome.text}`;
      this.fail({ kind: 'not-serving', detail, case: caseRef(c) }, c.bytes);
    }
    if (!ok) return;
    if (!outcome.queueId) {
      const detail = `250 without a queue id: ${outcome.text}`;
      this.fail({ kind: 'no-queue-id', detail, case: caseRef(c) }, c.bytes);
      return;
    }
    this.accepted.push(outcome.queueId);
    this.caseOf.set(outcome.queueId, caseRef(c));
  }

  /** Keeps the 10 slowest transactions (MAIL to the last reply): where to look for a stall. */
  noteSlow(c: FuzzCase, ms: number): void {
    const slow = this.slowest;
    if (slow.length === 10 && ms <= slow[slow.length - 1]!.ms) return;
    slow.push({ ms, size: c.bytes.length, case: caseRef(c) });
    slow.sort((a, b) => b.ms - a.ms);
    slow.length = Math.min(slow.length, 10);
  }

  /** One connection's loop: takes the next case until none is left or the run stops. */
  async sender(worker: number, next: () => number | undefined): Promise<void> {
    const rng = createRng(this.options.seed ^ (0x5eed0000 + worker));
    const timeout = this.options.replyTimeoutMs ?? 120_000;
    let wire: SmtpWire | undefined;
    for (let k = next(); k !== undefined && !this.stopping; k = next()) {
      const c = k < 0 ? canary(this.options.seed) : this.caseAt(k);
      this.inFlight.add(c);
      try {
        if (!wire?.usable) {
          const opened = await SmtpWire.open(this.daemon.smtpPort, timeout);
          if (!(opened instanceof SmtpWire)) {
            await this.record(c, opened);
            continue;
          }
          wire = opened;
        }
        const began = Date.now();
        await this.record(c, await wire.send(c.bytes, c.declareSize));
        this.noteSlow(c, Date.now() - began);
        this.sent++;
        if (rng.chance(0.1)) {
          await wire.close();
          wire = undefined;
        }
      } finally {
        this.inFlight.delete(c);
      }
    }
    await wire?.close();
  }

  async sendAll(): Promise<void> {
    let cursor = 0;
    const next = () => (cursor < this.total ? cursor++ : undefined);
    const progress = setInterval(() => {
      void this.daemon
        .heapSummary()
        .then(heap =>
          this.options.progress?.(
            `${this.sent}/${this.total} sent, ${this.accepted.length} answered 250, ` +
              `${this.api.posted} posted, RSS ${this.rss.toFixed(0)} MiB ` +
              `(peak ${this.peakRss.toFixed(0)})${heap}`,
          ),
        );
    }, 10_000);
    try {
      const count = Math.max(1, this.options.connections ?? 8);
      await Promise.all(
        Array.from({ length: count }, (_, w) => this.sender(w, next)),
      );
      if (!this.stopping) {
        let once = false;
        await this.sender(count, () =>
          once ? undefined : ((once = true), -1),
        );
      }
    } finally {
      clearInterval(progress);
    }
  }

  /** Waits until every 250 has an outcome (or none came for drainStallMs); the spool census. */
  async drain(): Promise<SpoolCensus> {
    const stallMs = this.options.drainStallMs ?? 60_000;
    let last = -1;
    let lastChange = Date.now();
    for (let poll = 0; !this.daemon.exit; poll++) {
      const done = this.accepted.filter(
        id => this.daemon.delivered.has(id) || this.daemon.dead.has(id),
      ).length;
      if (done === this.accepted.length) break;
      if (poll % 8 === 7) {
        const census = await spoolCensus(this.daemon.spoolDir);
        const settled = this.accepted.every(
          id =>
            this.daemon.delivered.has(id) ||
            census.dead.has(id) ||
            census.held.includes(id),
        );
        if (settled && census.waiting.length + census.claimed.length === 0) {
          break;
        }
      }
      if (done !== last) [last, lastChange] = [done, Date.now()];
      if (Date.now() - lastChange > stallMs) break;
      await sleep(250);
    }
    // a post or an outcome more than there should be would come now
    await sleep(1000);
    return spoolCensus(this.daemon.spoolDir);
  }

  /** The books and the findings they lead to. */
  settle(census: SpoolCensus): {
    accounting: Accounting;
    deadByApi: number;
    deadOther: DeadFinding[];
  } {
    const accounting = account({
      accepted: this.accepted,
      delivered: new Set(this.daemon.delivered.keys()),
      posted: this.api.posted,
      unanswered: this.unanswered,
      census,
    });
    for (const problem of accounting.problems) {
      this.fail({ kind: 'accounting', detail: problem });
    }
    const unfinished = new Set([...accounting.lost, ...accounting.stuck]);
    for (const id of [...unfinished].slice(0, 50)) {
      const ref = this.caseOf.get(id);
      const state = census.states.get(id);
      const where = state
        ? `; in ${state.folder}/ after ${state.attempts} attempts (last error ` +
          `${state.lastError}), due ${new Date(state.nextAttemptAt ?? 0).toISOString()}, ` +
          `${Math.round(((state.nextAttemptAt ?? 0) - Date.now()) / 1000)} s from now`
        : '';
      const deferred = this.daemon.deferredIds.get(id) ?? 0;
      const detail =
        `${id} answered 250, never posted, held or dead${where}; ` +
        `${deferred} "delivery deferred" lines`;
      this.fail({ kind: 'accounting', detail, ...(ref ? { case: ref } : {}) });
    }
    const deadOther: DeadFinding[] = [];
    let deadByApi = 0;
    for (const [queueId, dead] of census.dead) {
      if (dead.status === 422) {
        deadByApi++;
        continue;
      }
      const ref = this.caseOf.get(queueId);
      const dir = this.options.failuresDir;
      const file =
        ref && dir && deadOther.length < 50
          ? writeCase(dir, ref, this.bytesOf(ref), {
              dead: dead.reason,
              queueId,
            })
          : undefined;
      deadOther.push({
        queueId,
        reason: dead.reason,
        ...(ref ? { case: ref } : {}),
        ...(file ? { file } : {}),
      });
    }
    return { accounting, deadByApi, deadOther };
  }
}
