// The CI share of `npm run fuzz` (docs/fuzzing.md): 300 mutated corpus messages on a fixed seed,
// through the same path as the 10,000-case run: the daemon as a child process, raw SMTP, the
// stand-in API. No timing is asserted: only that the daemon stayed up and the books balance.
import { expect } from 'chai';
import { formatReport } from '../../fuzz/report.js';
import { runFuzz } from '../../fuzz/run-fuzz.js';

/** Fixed, so CI sends the same cases every time; `npm run fuzz -- --seed 16 --cases 300`. */
const SEED = 16;
const CASES = 300;

describe('fuzz: 300 mutated corpus messages (seed 16)', function () {
  // a few seconds on a laptop; generous for two slow, shared cores
  this.timeout(240_000);

  it('the daemon stays up, RSS stays bounded, every 250 is posted, held or dead', async () => {
    const report = await runFuzz({
      seed: SEED,
      cases: CASES,
      connections: 4,
      rssLimitMiB: 300,
      failuresDir: null,
    });
    const text = formatReport(report);
    expect(report.failures, text).to.deep.equal([]);
    // every case and the clean message after them were answered
    expect(report.cases, text).to.equal(CASES + 1);
    const books = report.accounting;
    expect(books?.balanced, text).to.equal(true);
    expect(books!.accepted).to.equal(books!.posted + books!.held + books!.dead);
    // the run reached both sides: accepted and posted, and refused with a code
    expect(books!.posted).to.be.above(CASES / 2);
    const refused = Object.keys(report.codes).filter(
      code => !code.startsWith('250'),
    );
    expect(refused, text).not.to.deep.equal([]);
    expect(report.payloadProblems, text).to.deep.equal([]);
  });
});
