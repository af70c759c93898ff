// A throwaway Postfix for interop tests: its own config, queue and data folders in a temporary
// directory, smtpd on a free 127.0.0.1 port (never 25), a master that cannot collide with a
// system Postfix (its lock and pid live in the throwaway queue). Debian's postfix, installed
// (/usr/sbin) or unpacked by .ci/run into .ci/.tools/postfix (where exim4, Debian's default
// MTA, holds the package slot: the two packages conflict).
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import {
  chmod,
  chown,
  mkdir,
  mkdtemp,
  readdir,
  writeFile,
} from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  freePort,
  groupId,
  MailLog,
  runProgram,
  stopThrowaway,
  userIds,
} from './mta.js';

/** Where Postfix's programs are. */
interface PostfixInstall {
  /** sendmail, postfix, postqueue, ... */
  commandDir: string;
  /** master, smtpd, qmgr, ... */
  daemonDir: string;
  shlibDir: string;
  /** postfix-files, postfix-script */
  metaDir: string;
  /** the shared libraries' folder when it is not where the programs look (an unpacked .deb) */
  libraryPath?: string;
}

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const UNPACKED = join(ROOT, '.ci/.tools/postfix');

/** Postfix as installed here, or why it cannot run (the tests then skip, saying so). */
function findPostfix(): PostfixInstall | string {
  if (process.platform !== 'linux' || userInfo().uid !== 0) {
    return 'Postfix interop runs as root on Linux (CI does)';
  }
  if (!userIds('postfix') || groupId('postdrop') === undefined) {
    return 'Postfix interop needs the postfix user and the postdrop group (.ci/run adds them)';
  }
  for (const [prefix, unpacked] of [
    ['', false],
    [UNPACKED, true],
  ] as const) {
    const daemonDir = join(prefix, '/usr/lib/postfix/sbin');
    if (!existsSync(join(prefix, '/usr/sbin/postfix'))) continue;
    if (!existsSync(join(daemonDir, 'master'))) continue;
    return {
      commandDir: join(prefix, '/usr/sbin'),
      daemonDir,
      shlibDir: join(prefix, '/usr/lib/postfix'),
      metaDir: join(prefix, '/etc/postfix'),
      ...(unpacked ? { libraryPath: join(prefix, '/usr/lib/postfix') } : {}),
    };
  }
  return (
    'Postfix is not installed: its interop tests are skipped here (.ci/run installs it: ' +
    "Debian's postfix, or the package unpacked into .ci/.tools/postfix beside exim4)"
  );
}

export const postfixInstall = findPostfix();

/** Why the Postfix tests skip, or undefined when Postfix can run here. */
export const POSTFIX_MISSING =
  typeof postfixInstall === 'string' ? postfixInstall : undefined;

/** The services of master.cf, none chrooted; smtpd only on the throwaway port. */
const SERVICES = [
  'pickup    unix  n - n 60   1 pickup',
  'cleanup   unix  n - n -    0 cleanup',
  'qmgr      unix  n - n 300  1 qmgr',
  'rewrite   unix  - - n -    - trivial-rewrite',
  'bounce    unix  - - n -    0 bounce',
  'defer     unix  - - n -    0 bounce',
  'trace     unix  - - n -    0 bounce',
  'verify    unix  - - n -    1 verify',
  'flush     unix  n - n 1000? 0 flush',
  'proxymap  unix  - - n -    - proxymap',
  'smtp      unix  - - n -    - smtp',
  'relay     unix  - - n -    - smtp',
  'showq     unix  n - n -    - showq',
  'error     unix  - - n -    - error',
  'retry     unix  - - n -    - error',
  'discard   unix  - - n -    - discard',
  'lmtp      unix  - - n -    - lmtp',
  'anvil     unix  - - n -    1 anvil',
  'scache    unix  - - n -    1 scache',
  'postlog   unix-dgram n - n - 1 postlogd',
];

/** One message of `postqueue -j`. */
export interface QueuedMessage {
  queue_name: string;
  queue_id: string;
  sender: string;
  recipients: Array<{ address: string; delay_reason?: string }>;
}

export interface PostfixOptions {
  /** the domain Postfix relays */
  domain: string;
  /** its transport, e.g. `smtp:[127.0.0.1]:2525` or `lmtp:inet:127.0.0.1:2525` */
  transport: string;
  /** further main.cf parameters (e.g. the recipient verification of the door tests) */
  main?: Record<string, string>;
}

/**
 * A running throwaway Postfix. start() writes its configuration and starts its master; stop()
 * stops the master (waiting until it is gone) and removes the folder.
 */
export class ThrowawayPostfix {
  /** smtpd's port on 127.0.0.1 */
  port = 0;
  dir = '';
  private maillog?: MailLog;
  private masterPid = 0;

  constructor(
    private readonly install: PostfixInstall,
    private readonly options: PostfixOptions,
  ) {}

  /** main.cf's folder (sendmail -C, postqueue -c) */
  get configDir(): string {
    return join(this.dir, 'etc');
  }

  /** The mail log (maillog_file), to wait on. */
  get log(): MailLog {
    if (!this.maillog) throw new Error('Postfix is not started');
    return this.maillog;
  }

  /** A Postfix program of this instance (a wrapper that sets the library path, if needed). */
  private command(name: string): string {
    return join(this.commandDir, name);
  }

  private get commandDir(): string {
    return this.install.libraryPath
      ? join(this.dir, 'bin')
      : this.install.commandDir;
  }

  async start(): Promise<this> {
    this.dir = await mkdtemp(join(tmpdir(), 'mailbridge-postfix-'));
    // the postfix user must get through to its queue and data folders
    await chmod(this.dir, 0o755);
    this.port = await freePort();
    const etc = this.configDir;
    const queue = join(this.dir, 'queue');
    const data = join(this.dir, 'data');
    await mkdir(etc);
    await mkdir(data);
    // the mail owner writes the data folder (master.lock, caches)
    const owner = userIds('postfix')!;
    await chown(data, owner.uid, owner.gid);
    await makeQueue(queue, owner.uid);
    if (this.install.libraryPath) await this.writeWrappers();
    await writeFile(join(etc, 'main.cf'), this.mainCf(queue, data));
    await writeFile(
      join(etc, 'master.cf'),
      [`127.0.0.1:${this.port} inet n - n - - smtpd`, ...SERVICES, ''].join(
        '\n',
      ),
    );
    const logPath = join(this.dir, 'maillog');
    await writeFile(logPath, '');
    this.maillog = new MailLog(logPath);
    // the master itself, not `postfix start`: that one's checks of every file and folder
    // take two seconds; -w returns once the master runs
    await this.run(join(this.install.daemonDir, 'master'), ['-c', etc, '-w']);
    const pidFile = join(queue, 'pid/master.pid');
    this.masterPid = Number(readFileSync(pidFile, 'utf8').trim());
    return this;
  }

  /** Submits a message through Postfix's sendmail (as a local user would). */
  async sendmail(
    from: string,
    to: string[],
    raw: string | Buffer,
  ): Promise<void> {
    await this.run(
      this.command('sendmail'),
      ['-C', this.configDir, '-i', '-f', from, '--', ...to],
      raw,
    );
  }

  /** `postqueue -f`: every queued message is tried again now, backoff or not. */
  async flush(): Promise<void> {
    await this.run(this.command('postqueue'), ['-c', this.configDir, '-f']);
  }

  /** The queue, as `postqueue -j` lists it. */
  async queue(): Promise<QueuedMessage[]> {
    const out = await this.run(this.command('postqueue'), [
      '-c',
      this.configDir,
      '-j',
    ]);
    return out
      .split('\n')
      .filter(line => line.trim())
      .map(line => JSON.parse(line) as QueuedMessage);
  }

  /**
   * Resolves once the queue, as `postqueue -j` lists it, satisfies `check` (bounded: looked at
   * again whenever the log changes, and at least every 250 ms).
   */
  async waitForQueue(
    check: (queue: QueuedMessage[]) => boolean,
    what: string,
    timeoutMs = 20_000,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const queue = await this.queue();
      if (check(queue)) return;
      if (Date.now() > deadline) {
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for Postfix's queue: ${what} ` +
            `(queue: ${JSON.stringify(queue)}; log: ${this.log.tail()})`,
        );
      }
      await once(this.log, 'change');
    }
  }

  async stop(): Promise<void> {
    this.maillog?.close();
    if (!this.dir) return;
    // as `postfix stop` does; the master takes its children down with it
    await stopThrowaway(
      this.dir,
      this.masterPid,
      join(this.dir, 'queue/pid/master.pid'),
      "Postfix's master",
    );
    this.masterPid = 0;
    this.dir = '';
  }

  private mainCf(queue: string, data: string): string {
    const { install, options } = this;
    const params: Record<string, string> = {
      compatibility_level: '3.6',
      queue_directory: queue,
      data_directory: data,
      daemon_directory: install.daemonDir,
      shlib_directory: install.shlibDir,
      meta_directory: install.metaDir,
      command_directory: this.commandDir,
      sendmail_path: this.command('sendmail'),
      mailq_path: this.command('mailq'),
      newaliases_path: this.command('newaliases'),
      // the daemons the master starts need the library path of an unpacked package too
      import_environment: [
        'MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME',
        ...(install.libraryPath
          ? [`LD_LIBRARY_PATH=${install.libraryPath}`]
          : []),
      ].join(' '),
      mail_owner: 'postfix',
      setgid_group: 'postdrop',
      maillog_file: join(this.dir, 'maillog'),
      maillog_file_prefixes: this.dir,
      myhostname: 'mta.test',
      myorigin: 'mta.test',
      mydestination: '',
      inet_interfaces: '127.0.0.1',
      inet_protocols: 'ipv4',
      mynetworks: '127.0.0.0/8',
      alias_maps: '',
      alias_database: '',
      biff: 'no',
      // nothing leaves but the relayed domain: no bounce to a forged sender can go out
      default_transport: 'error:outbound mail disabled in this test',
      relay_transport: 'error:outbound mail disabled in this test',
      local_transport: 'error:local delivery disabled in this test',
      relay_domains: options.domain,
      transport_maps: `inline:{ ${options.domain}=${options.transport} }`,
      smtpd_relay_restrictions: 'permit_mynetworks, reject_unauth_destination',
      ...options.main,
    };
    return (
      Object.entries(params)
        .map(([key, value]) => `${key} = ${value}`)
        .join('\n') + '\n'
    );
  }

  /** bin/<program> for every program: the unpacked package's, with its library path. */
  private async writeWrappers(): Promise<void> {
    const { commandDir, libraryPath } = this.install;
    const bin = join(this.dir, 'bin');
    await mkdir(bin);
    for (const name of await readdir(commandDir)) {
      const path = join(bin, name);
      await writeFile(
        path,
        `#!/bin/sh\nLD_LIBRARY_PATH=${libraryPath} exec ${join(commandDir, name)} "$@"\n`,
      );
      await chmod(path, 0o755);
    }
  }

  /** Runs a program of this Postfix; rejects with its output and the log's tail unless 0. */
  private run(
    path: string,
    args: string[],
    input: string | Buffer = '',
  ): Promise<string> {
    const { libraryPath } = this.install;
    return runProgram(path, args, {
      input,
      env: libraryPath ? { LD_LIBRARY_PATH: libraryPath } : {},
      context: () => this.maillog?.tail() ?? '',
    });
  }
}

/**
 * The queue's folders, with the owners and modes `postfix start` would give them (its
 * post-install, as Debian's postfix-files lists them).
 */
async function makeQueue(queue: string, owner: number): Promise<void> {
  const postdrop = groupId('postdrop')!;
  const folders: Array<[string, number, number, number]> = [
    ...PRIVATE_QUEUES.map((name): [string, number, number, number] => [
      name,
      owner,
      0,
      0o700,
    ]),
    ['maildrop', owner, postdrop, 0o730],
    ['public', owner, postdrop, 0o710],
    ['pid', 0, 0, 0o755],
  ];
  await mkdir(queue);
  for (const [name, uid, gid, mode] of folders) {
    const path = join(queue, name);
    await mkdir(path);
    await chown(path, uid, gid);
    await chmod(path, mode);
  }
}

const PRIVATE_QUEUES = [
  'active',
  'bounce',
  'corrupt',
  'defer',
  'deferred',
  'flush',
  'hold',
  'incoming',
  'private',
  'saved',
  'trace',
];

/** Starts a throwaway Postfix (Postfix must be installed: see POSTFIX_MISSING). */
export function startPostfix(
  options: PostfixOptions,
): Promise<ThrowawayPostfix> {
  if (typeof postfixInstall === 'string') throw new Error(postfixInstall);
  return startOrClean(new ThrowawayPostfix(postfixInstall, options));
}

/** Starts `postfix`; whatever a failed start left running or on disk is removed. */
async function startOrClean(
  postfix: ThrowawayPostfix,
): Promise<ThrowawayPostfix> {
  try {
    return await postfix.start();
  } catch (err) {
    await postfix.stop().catch(() => {});
    throw err;
  }
}
