// Every corpus message gives the record reviewed in test/fixtures/corpus-golden (REVIEW.md lists
// what should still change): a change of behaviour shows here, message by message.
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import {
  corpusFiles,
  GOLDEN,
  goldenFiles,
  goldenPath,
  goldenRecord,
  REGENERATE,
} from '../helpers/golden-record.js';

const FILES = corpusFiles();

describe('corpus: golden records', () => {
  it('has a golden record for each of the 193 messages, and no other', () => {
    expect(FILES).to.have.length(193);
    const expected = FILES.map(file => file.replace(/\.eml$/, '.json'));
    const stale = goldenFiles().filter(file => !expected.includes(file));
    expect(stale, `golden records in ${GOLDEN} of no corpus message`).to.eql(
      [],
    );
  });

  for (const file of FILES) {
    it(file, async () => {
      const path = goldenPath(file);
      if (!existsSync(path)) {
        expect.fail(`no golden record ${path}; write it with: ${REGENERATE}`);
      }
      const golden: unknown = JSON.parse(readFileSync(path, 'utf8'));
      const record = await goldenRecord(file);
      expect(
        record,
        `${file} differs from its golden record; if the change is right: ${REGENERATE}, review the diff and REVIEW.md`,
      ).to.deep.equal(golden);
    });
  }
});
