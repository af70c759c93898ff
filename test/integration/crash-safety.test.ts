// kill -9 and SIGTERM of the real daemon process: nothing answered 250 is lost or posted twice.
import { expect } from 'chai';
import { EventEmitter } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  startFakeApi,
  type FakeApi,
  type FakeReply,
  type RecordedRequest,
} from '../helpers/fake-api.js';
import { makeMessage, sendRaw } from '../helpers/smtp-client.js';
import {
  freePort,
  startCli,
  type CliExit,
  type CliProcess,
} from '../helpers/spawn-daemon.js';
import {
  countLogs,
  spoolFiles,
  spoolIds,
  waitFor,
  waitForLogCount,
} from '../helpers/wait-for.js';

/** delivery.shutdownTimeoutMs of these daemons */
const SHUTDOWN_TIMEOUT_MS = 500;

/** How long any one wait may take before the test fails instead of hanging. */
const WAIT_MS = 10_000;

/**
 * Small retry delays and a fast rescan, so a restarted daemon delivers at once; a long API
 * timeout, so a stalled POST ends only when the daemon gives up on it.
 */
/** api.concurrency of these daemons */
const CONCURRENCY = 4;

const CONFIG_YAML = `delivery:
  mode: queue
  scanIntervalMs: 100
  shutdownTimeoutMs: ${SHUTDOWN_TIMEOUT_MS}
  retry:
    initialDelayMs: 20
    multiplier: 2
    maxDelayMs: 100
api:
  timeoutMs: 20000
  concurrency: ${CONCURRENCY}
`;

/** The stand-in never answers (the status is never sent). */
const STALL: FakeReply = { status: 0, stall: true };

/** How the stand-in answered one POST: a status, or never. */
interface Answer {
  messageId: string;
  answer: number | 'stall';
}

describe('crash safety (the daemon as a real process)', function () {
  this.timeout(30_000);

  let dir: string;
  let spoolDir: string;
  let configFile: string;
  let api: FakeApi;
  let daemons: CliProcess[];
  /** every POST the stand-in received, in order, with what it answered */
  let answers: Answer[];
  let current: FakeReply;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-crash-'));
    spoolDir = join(dir, 'spool');
    configFile = join(dir, 'crash.yaml');
    await writeFile(configFile, CONFIG_YAML);
    daemons = [];
    answers = [];
    api = await startFakeApi();
    // only the default reply is used, so `current` is what each request was answered
    api.on('request', (request: RecordedRequest) => {
      answers.push({
        messageId: String(request.body.ext_msg_id),
        answer: current.stall ? 'stall' : current.status,
      });
    });
    answerWith({ status: 204 });
  });

  afterEach(async () => {
    await Promise.all(daemons.map(d => d.kill()));
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** From now on the stand-in answers every POST this way. */
  function answerWith(reply: FakeReply): void {
    current = reply;
    api.setDefault(reply);
  }

  /** POSTs of `messageId` that the stand-in answered 2xx. */
  function accepted2xx(messageId: string, from = 0): number {
    return answers
      .slice(from)
      .filter(
        a =>
          a.messageId === messageId &&
          typeof a.answer === 'number' &&
          a.answer >= 200 &&
          a.answer < 300,
      ).length;
  }

  /** Starts `mailbridge serve` on free ports and the shared spool; resolves once it listens. */
  async function serve(): Promise<{ proc: CliProcess; smtpPort: number }> {
    const smtpPort = await freePort();
    const proc = startCli(['serve', '--config', configFile], {
      MAILBRIDGE_SMTP_PORT: String(smtpPort),
      MAILBRIDGE_HTTP_PORT: String(await freePort()),
      MAILBRIDGE_SPOOL_DIR: spoolDir,
      MAILBRIDGE_API_URL: api.url,
      MAILBRIDGE_API_TOKEN: 'crash-test-token',
      MAILBRIDGE_LOG_LEVEL: 'info',
    });
    daemons.push(proc);
    await proc.waitForLog('mailbridge started');
    return { proc, smtpPort };
  }

  /** Sends one message to support@example.com with this Message-ID. */
  function send(smtpPort: number, messageId: string) {
    return sendRaw({
      port: smtpPort,
      to: ['support@example.com'],
      raw: makeMessage({
        From: 'jane@example.net',
        To: 'support@example.com',
        Subject: `Crash test ${messageId}`,
        'Message-ID': messageId,
      }),
    });
  }

  /** The spool holds nothing: no state, no raw message, no temporary file. */
  async function expectSpoolEmpty(): Promise<void> {
    for (const folder of ['queue', 'active', 'dead', 'msg', 'tmp']) {
      expect(await spoolFiles(spoolDir, folder), `${folder}/`).to.deep.equal(
        [],
      );
    }
  }

  /** Resolves with the exit, or rejects when the child is still running after `ms`. */
  async function exitWithin(proc: CliProcess, ms: number): Promise<CliExit> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(`mailbridge still running ${ms} ms after the signal`),
          ),
        ms,
      );
    });
    try {
      return await Promise.race([proc.exited, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  it('kill -9 while 4 senders stream: every 250 is delivered after restart, none twice', async () => {
    const SENDERS = 4;
    /** bound of each sender's loop; the kill comes long before */
    const MAX_PER_SENDER = 100;
    const { proc, smtpPort } = await serve();

    const attempted = new Set<string>();
    const got250 = new Set<string>();
    const progress = new EventEmitter();
    let stop = false;
    let sending = 0;
    const senders = Array.from({ length: SENDERS }, async (_, s) => {
      for (let n = 0; n < MAX_PER_SENDER && !stop; n++) {
        const messageId = `<crash-${s}-${n}@example.net>`;
        attempted.add(messageId);
        sending++;
        try {
          const sent = await send(smtpPort, messageId);
          if (sent.code !== 250) return; // refused: nothing was promised
          got250.add(messageId);
          progress.emit('accepted');
        } catch {
          return; // the connection was refused or cut: the daemon is gone
        } finally {
          sending--;
        }
      }
    });

    const count = (answer: Answer['answer'], from = 0) =>
      answers.slice(from).filter(a => a.answer === answer).length;
    const triggers: Array<[EventEmitter, string]> = [
      [progress, 'accepted'],
      [api, 'request'],
    ];
    const state = () =>
      `250s: ${got250.size}, answers: ${JSON.stringify(answers.map(a => a.answer))}`;

    // 1. healthy: some messages are delivered and gone from the spool
    await waitFor(() => got250.size >= 6 && count(204) >= 3, triggers, {
      timeoutMs: WAIT_MS,
      what: 'some deliveries',
      describe: state,
    });
    // 2. failing: accepted messages wait in queue/ for their retry
    answerWith({ status: 503 });
    let mark = answers.length;
    let accepted = got250.size;
    await waitFor(
      () => count(503, mark) >= 3 && got250.size >= accepted + 3,
      triggers,
      { timeoutMs: WAIT_MS, what: '503 answers', describe: state },
    );
    // 3. stalled: up to api.concurrency POSTs hang (their entries in active/), more pile up
    answerWith(STALL);
    mark = answers.length;
    accepted = got250.size;
    await waitFor(
      () => count('stall', mark) >= 1 && got250.size >= accepted + 5,
      triggers,
      { timeoutMs: WAIT_MS, what: 'a stalled POST', describe: state },
    );
    // no 2xx may be on its way to the daemon at the kill: that duplicate is the next test's
    await waitFor(
      () => countLogs(proc, 'message delivered') === count(204),
      [...triggers, [proc.child.stdout!, 'data']],
      {
        timeoutMs: WAIT_MS,
        what: 'every 204 to be filed',
        describe: () => `${countLogs(proc, 'message delivered')} filed`,
      },
    );

    const midFlight = sending;
    proc.child.kill('SIGKILL');
    stop = true;
    expect(await proc.exited).to.deep.equal({ code: null, signal: 'SIGKILL' });
    await Promise.all(senders);
    expect(midFlight, 'sessions open at the kill').to.be.greaterThan(0);

    // up to api.concurrency are stalled in their POST; the others wait, fresh in active/
    // (claimed by the process that accepted them) or in queue/; one killed while it was
    // parked is in both (in queue/, its journal record not yet marked done), counted once
    const spooled = new Set([
      ...(await spoolIds(spoolDir, 'queue')),
      ...(await spoolIds(spoolDir, 'active')),
    ]);
    expect(spooled.size, 'waiting or stalled at the kill').to.be.greaterThan(
      CONCURRENCY,
    );
    const undelivered = [...got250].filter(id => accepted2xx(id) === 0);
    expect(undelivered.length).to.be.greaterThan(SENDERS);

    // restart on the same spool with a healthy API: every spooled message goes out
    answerWith({ status: 204 });
    const restarted = await serve();
    await waitForLogCount(
      restarted.proc,
      'message delivered',
      spooled.size,
      WAIT_MS,
    );

    for (const messageId of got250) {
      expect(accepted2xx(messageId), messageId).to.equal(1);
    }
    for (const { messageId } of answers) {
      expect(attempted.has(messageId), messageId).to.equal(true);
      expect(accepted2xx(messageId), messageId).to.be.at.most(1);
    }
    await expectSpoolEmpty();
  });

  const lostAnswers: Array<{
    name: string;
    reply: FakeReply;
    /** how many POSTs of the message, from the fatal one on, may reach the API */
    posts: [number, number];
  }> = [
    // the API has the message but the daemon never hears so: it must post it again
    { name: 'before the API answers', reply: STALL, posts: [2, 2] },
    // the 204 is on the wire: the dedupe record may or may not have been written
    { name: 'as the API answers 204', reply: { status: 204 }, posts: [1, 2] },
  ];
  for (const { name, reply, posts } of lostAnswers) {
    it(`kill -9 ${name}: posted at most twice, never lost, spool empty`, async () => {
      answerWith({ status: 503 });
      const { proc, smtpPort } = await serve();
      const messageId = '<lost-answer-1@example.net>';
      const sent = await send(smtpPort, messageId);
      expect(sent.code, sent.response).to.equal(250);
      const queueId = /queued as (\S+)/.exec(sent.response)?.[1];
      expect(queueId, sent.response).to.be.a('string');
      await api.waitForRequests(1); // failing: it is retried every few ms

      // the next POST is the fatal one: the daemon dies right as the stand-in answers it
      const mark = answers.length;
      const killed = new Promise<void>(resolve => {
        const onRequest = () => {
          api.off('request', onRequest);
          proc.child.kill('SIGKILL');
          resolve();
        };
        api.on('request', onRequest);
      });
      answerWith(reply);
      await killed;
      expect(await proc.exited).to.deep.equal({
        code: null,
        signal: 'SIGKILL',
      });
      const spooled = [
        ...(await spoolIds(spoolDir, 'queue')),
        ...(await spoolIds(spoolDir, 'active')),
      ];

      answerWith({ status: 204 });
      const restarted = await serve();
      if (spooled.includes(queueId!)) {
        await waitForLogCount(restarted.proc, 'message delivered', 1, WAIT_MS);
        expect(
          restarted.proc.logs.find(l => l.message === 'message delivered'),
        ).to.include({ queueId, outcome: 'delivered' });
      } else {
        // the daemon had filed the 204 before it died: nothing left to do
        expect(reply.status).to.equal(204);
      }

      const fatalOn = answers
        .slice(mark)
        .filter(a => a.messageId === messageId);
      expect(fatalOn.length, JSON.stringify(fatalOn)).to.be.within(...posts);
      expect(accepted2xx(messageId, mark), 'never lost').to.be.at.least(1);
      await expectSpoolEmpty();
    });
  }

  it('SIGTERM mid-delivery: exits 0 within shutdownTimeoutMs, delivers after restart', async () => {
    answerWith(STALL);
    const { proc, smtpPort } = await serve();
    const messageId = '<sigterm-1@example.net>';
    const sent = await send(smtpPort, messageId);
    expect(sent.code, sent.response).to.equal(250);
    const queueId = /queued as (\S+)/.exec(sent.response)?.[1];
    await api.waitForRequests(1);

    proc.child.kill('SIGTERM');
    // smtp.closeTimeoutMs (500 in config/test.yaml) + delivery.shutdownTimeoutMs + a margin;
    // the stalled POST alone would hold it for api.timeoutMs (20 s)
    const exit = await exitWithin(proc, 500 + SHUTDOWN_TIMEOUT_MS + 4000);
    expect(exit).to.deep.equal({ code: 0, signal: null });
    expect(proc.logs.map(l => l.message)).to.include.members([
      'signal received',
      'stopped with deliveries in flight; they are retried at the next start',
      'mailbridge stopped',
    ]);
    expect(proc.stderr()).to.equal('');
    // in queue/, or still in the journal, or both (its parking done, the process gone before
    // the record was marked): one message either way
    const spooled = new Set([
      ...(await spoolIds(spoolDir, 'queue')),
      ...(await spoolIds(spoolDir, 'active')),
    ]);
    expect([...spooled]).to.deep.equal([queueId]);

    answerWith({ status: 204 });
    const restarted = await serve();
    await waitForLogCount(restarted.proc, 'message delivered', 1, WAIT_MS);
    expect(answers).to.deep.equal([
      { messageId, answer: 'stall' },
      { messageId, answer: 204 },
    ]);
    await expectSpoolEmpty();
  });
});
