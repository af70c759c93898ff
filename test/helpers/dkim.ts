// Sender authentication fixtures for the tests: RSA 2048 DKIM keys (made once per run), their
// DNS records, DKIM signing and ARC sealing with mailauth, a domain published in full (SPF,
// DMARC, DKIM key) on the test DNS server, and the resolver function mailauth takes.
import { generateKeyPair } from 'node:crypto';
import type { Resolver } from 'node:dns/promises';
import {
  authenticate,
  dkimSign,
  sealMessage,
  type AuthenticateOptions,
  type DKIMSignOptions,
  type DNSResolver,
} from 'mailauth';
import type { TestDnsServer } from './dns-server.js';

export interface DkimKey {
  /** PKCS#8 PEM, for mailauth's `privateKey`. */
  privateKey: string;
  /** The SubjectPublicKeyInfo DER. */
  publicKeyDer: Buffer;
  /** The TXT record value: `v=DKIM1; k=rsa; p=<base64 SPKI>` (about 410 bytes for 2048 bits). */
  record: string;
}

const keys = new Map<string, Promise<DkimKey>>();

/** The DKIM TXT record value for an RSA public key (SPKI DER). */
export function dkimRecord(publicKeyDer: Buffer): string {
  return `v=DKIM1; k=rsa; p=${publicKeyDer.toString('base64')}`;
}

/**
 * An RSA key pair, made on first use and kept for the rest of the run: the same `label` gives
 * the same key (so the default one is made once), a new label a new key (for a "wrong key" case).
 */
export function dkimKey(label = 'default', bits = 2048): Promise<DkimKey> {
  const id = `${label}/${bits}`;
  let key = keys.get(id);
  if (!key) {
    key = new Promise<DkimKey>((resolve, reject) => {
      generateKeyPair(
        'rsa',
        {
          modulusLength: bits,
          publicKeyEncoding: { type: 'spki', format: 'der' },
          privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
        },
        (err, publicKeyDer, privateKey) => {
          if (err) return reject(err);
          resolve({
            privateKey,
            publicKeyDer,
            record: dkimRecord(publicKeyDer),
          });
        },
      );
    });
    keys.set(id, key);
  }
  return key;
}

export interface SignOptions {
  /** `d=` */
  domain: string;
  /** `s=` */
  selector: string;
  key: DkimKey;
  /** Header fields to sign; mailauth's default list if not given. */
  headerList?: string[];
}

/**
 * The message with a DKIM-Signature prepended (relaxed/relaxed, rsa-sha256). Throws when
 * mailauth made no signature, which it does quietly (for options at the top level instead of in
 * `signatureData`, or a message without From).
 */
export async function signDkim(
  message: string | Buffer,
  options: SignOptions,
): Promise<Buffer> {
  const entry = {
    signingDomain: options.domain,
    selector: options.selector,
    privateKey: options.key.privateKey,
    ...(options.headerList ? { headerList: options.headerList } : {}),
  };
  // index.d.ts asks for signingDomain/selector/privateKey at the top level, but only
  // signatureData is read: the top-level fields alone sign nothing
  const signOptions = { signatureData: [entry] } as unknown as DKIMSignOptions;
  const result = await dkimSign(message, signOptions);
  if (result.errors.length || !result.signatures) {
    const why =
      result.errors.map(e => e.err.message).join('; ') || 'no signature';
    throw new Error(`DKIM signing failed: ${why}`);
  }
  return Buffer.concat([Buffer.from(result.signatures), Buffer.from(message)]);
}

/** The resolver function mailauth takes, asking `resolver` (see resolverFor). */
export function mailauthResolver(resolver: Resolver): DNSResolver {
  // MX answers are objects, not the string[] of the DNSResolver type; mailauth reads them so
  return (name, rrtype) =>
    resolver.resolve(name, rrtype) as unknown as ReturnType<DNSResolver>;
}

export interface DomainAuth {
  /** The SPF TXT record at the domain, e.g. `v=spf1 ip4:127.0.0.1 -all`. */
  spf?: string;
  /** The TXT record at `_dmarc.<domain>`, e.g. `v=DMARC1; p=reject`. */
  dmarc?: string;
  /** Publishes the key at `<selector>._domainkey.<domain>`. */
  dkimSelector?: string;
  /** Which cached key (see dkimKey); default the shared one. */
  keyLabel?: string;
}

export interface AuthDomain {
  domain: string;
  selector: string | undefined;
  key: DkimKey;
  /** Signs for this domain with its selector (throws without dkimSelector). */
  sign(message: string | Buffer): Promise<Buffer>;
}

/** Publishes SPF, DMARC and a DKIM key for `domain` on `dns` (only those given). */
export async function domainWithAuth(
  dns: TestDnsServer,
  domain: string,
  auth: DomainAuth,
): Promise<AuthDomain> {
  const key = await dkimKey(auth.keyLabel);
  if (auth.spf !== undefined) dns.set(domain, 'TXT', [auth.spf]);
  if (auth.dmarc !== undefined) {
    dns.set(`_dmarc.${domain}`, 'TXT', [auth.dmarc]);
  }
  const selector = auth.dkimSelector;
  if (selector !== undefined) {
    dns.set(`${selector}._domainkey.${domain}`, 'TXT', [key.record]);
  }
  return {
    domain,
    selector,
    key,
    sign(message) {
      if (selector === undefined) throw new Error(`${domain}: no dkimSelector`);
      return signDkim(message, { domain, selector, key });
    },
  };
}

export interface SealOptions {
  /** ARC `d=` and `s=`, and the key published at `<selector>._domainkey.<domain>`. */
  domain: string;
  selector: string;
  key: DkimKey;
}

/**
 * The message with one ARC set prepended (ARC-Seal, ARC-Message-Signature,
 * ARC-Authentication-Results). `authResults` is the AAR payload after `i=N;` (mailauth's
 * `arc.authResults`), `cv` the chain status (`arc.status.result`: none, pass or fail).
 */
export async function arcSeal(
  message: string | Buffer,
  seal: SealOptions & { authResults: string; cv: string },
): Promise<Buffer> {
  const headers = await sealMessage(message, {
    signingDomain: seal.domain,
    selector: seal.selector,
    privateKey: seal.key.privateKey,
    authResults: seal.authResults,
    cv: seal.cv,
  });
  if (!headers.length) throw new Error('ARC sealing made no ARC set');
  return Buffer.concat([headers, Buffer.from(message)]);
}

/**
 * A forwarder (a mailing list, say): authenticates the message as it came in (`received`: the
 * SMTP facts and resolver), then changes it with `modify` (which breaks the author's DKIM) and
 * seals the changed message with its own ARC set recording what it saw.
 */
export async function arcForward(
  message: string | Buffer,
  options: {
    received: AuthenticateOptions;
    seal: SealOptions;
    modify?: (message: Buffer) => Buffer;
  },
): Promise<Buffer> {
  const original = Buffer.from(message);
  const { arc } = await authenticate(original, {
    ...options.received,
    disableBimi: true,
  });
  if (!arc) throw new Error('ARC evaluation was disabled');
  const changed = options.modify ? options.modify(original) : original;
  return arcSeal(changed, {
    ...options.seal,
    authResults: arc.authResults ?? '',
    cv: arc.status.result,
  });
}

/** A small text/plain message with CRLF line ends. */
export function buildMessage(fields: {
  from: string;
  to: string;
  subject?: string;
  body?: string;
  messageId?: string;
}): string {
  return [
    `From: ${fields.from}`,
    `To: ${fields.to}`,
    `Subject: ${fields.subject ?? 'test'}`,
    'Date: Mon, 01 Jun 2026 10:00:00 +0000',
    `Message-ID: ${fields.messageId ?? '<auth-test@example.org>'}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    fields.body ?? 'Hello.',
    '',
  ].join('\r\n');
}
