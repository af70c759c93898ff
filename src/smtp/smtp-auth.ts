// SMTP AUTH against the accounts of smtp.auth.users.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { SmtpConfig } from '../config/schema.js';

type User = SmtpConfig['auth']['users'][number];

/** The SASL mechanisms offered: both carry the password itself, so TLS should carry them. */
export const AUTH_METHODS = ['PLAIN', 'LOGIN'];

/**
 * Whether `username` and `password` are those of an account. Every account is compared, each
 * password through a fixed-length digest in constant time, so the time taken tells nothing of
 * how much of a password was right.
 */
export function checkCredentials(
  users: readonly User[],
  username: string,
  password: string,
): boolean {
  const given = digest(password);
  let match = false;
  for (const user of users) {
    const right = timingSafeEqual(digest(user.password), given);
    if (right && user.username === username) match = true;
  }
  return match;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
