// Mocha reporter: the spec output, then a plain "N passed, N failed" line that CI reads.
'use strict';
const Mocha = require('mocha');

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once('end', () => {
      const { passes = 0, failures = 0, pending = 0 } = runner.stats || {};
      const skipped = pending ? `, ${pending} skipped` : '';
      process.stdout.write(
        `\n${passes} passed, ${failures} failed${skipped}\n`,
      );
    });
  }
}

module.exports = SummaryReporter;
