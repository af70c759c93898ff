// Unit table for checkCredentials: the accounts of smtp.auth.users.
import { expect } from 'chai';
import { checkCredentials } from '../../src/smtp/smtp-auth.js';

describe('checkCredentials', () => {
  const users = [
    { username: 'forwarder', password: 'correct horse battery' },
    { username: 'other', password: 'another-long-secret' },
  ];
  const cases: Array<[username: string, password: string, ok: boolean]> = [
    ['forwarder', 'correct horse battery', true],
    ['other', 'another-long-secret', true],
    ['forwarder', 'another-long-secret', false], // another account's password
    ['other', 'correct horse battery', false],
    ['Forwarder', 'correct horse battery', false], // names are exact
    ['forwarder', 'correct horse battery ', false],
    ['forwarder', 'correct horse batter', false], // a prefix is not the password
    ['forwarder', '', false],
    ['', '', false],
    ['nobody', 'correct horse battery', false],
  ];
  for (const [username, password, ok] of cases) {
    it(`${JSON.stringify(username)} / ${JSON.stringify(password)} -> ${ok}`, () => {
      expect(checkCredentials(users, username, password)).to.equal(ok);
    });
  }
  it('no accounts: nobody gets in', () => {
    expect(checkCredentials([], 'forwarder', 'correct horse battery')).to.equal(
      false,
    );
  });
});
