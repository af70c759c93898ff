// A throwaway Postfix for interop tests: its own config, queue and data folders in a temporary
// directory, smtpd on a free 127.0.0.1 port (never 25), a master that cannot collide with a
// system Postfix (its lock and pid live in the throwaway queue). Debian's postfix, installed
// (/usr/sbin) or unpacked by .ci/run into .ci/.tools/postfix (where exim4, Debian's default
// MTA, holds the package slot: the two packages conflict).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { userInfo } from 'node:os';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EventEmitter } from 'node:events';
import { waitFor } from './wait-for.js';

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

/** A free port on 127.0.0.1 (bound and released: Postfix binds it right after). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise(done => server.close(done));
  return port;
}

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
 * A running throwaway Postfix. start() writes its configuration and starts it; stop() stops its
 * master (waiting until it is gone) and removes the folder.
 */
export class ThrowawayPostfix {
  /** smtpd's port on 127.0.0.1 */
  port = 0;
  dir = '';
  /** emits 'change' when the mail log may have grown (fs.watch, and a slow backstop tick) */
  private readonly logChanges = new EventEmitter();
  private watcher?: FSWatcher;
  private masterPid = 0;
  private ticker?: NodeJS.Timeout;

  constructor(
    private readonly install: PostfixInstall,
    private readonly options: PostfixOptions,
  ) {}

  /** main.cf's folder (postfix -c, sendmail -C, postqueue -c) */
  get configDir(): string {
    return join(this.dir, 'etc');
  }

  /** A Postfix program of this instance (a wrapper that sets the library path, if needed). */
  command(name: string): string {
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
    await mkdir(queue);
    await mkdir(data);
    // the mail owner writes the data folder (master.lock, caches)
    await chown(data, postfixIds().uid, postfixIds().gid);
    await makeQueue(queue);
    if (this.install.libraryPath) await this.writeWrappers();
    await writeFile(join(etc, 'main.cf'), this.mainCf(queue, data));
    await writeFile(
      join(etc, 'master.cf'),
      [`127.0.0.1:${this.port} inet n - n - - smtpd`, ...SERVICES, ''].join(
        '\n',
      ),
    );
    await writeFile(this.logPath, '');
    this.watcher = watch(this.logPath, () => this.logChanges.emit('change'));
    // a backstop for a file system whose change events are late or lost (a bounded wait's
    // re-check, not a timed assertion)
    this.ticker = setInterval(() => this.logChanges.emit('change'), 250);
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
      'sendmail',
      ['-C', this.configDir, '-i', '-f', from, '--', ...to],
      raw,
    );
  }

  /** `postqueue -f`: every queued message is tried again now, backoff or not. */
  async flush(): Promise<void> {
    await this.run('postqueue', ['-c', this.configDir, '-f']);
  }

  /** The queue, as `postqueue -j` lists it. */
  async queue(): Promise<QueuedMessage[]> {
    const out = await this.run('postqueue', ['-c', this.configDir, '-j']);
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
            `(queue: ${JSON.stringify(queue)}; log: ${this.logTail()})`,
        );
      }
      await once(this.logChanges, 'change');
    }
  }

  get logPath(): string {
    return join(this.dir, 'maillog');
  }

  /** The mail log so far. */
  log(): string {
    return readFileSync(this.logPath, 'utf8');
  }

  /** Resolves once the mail log matches `pattern` (bounded; the log's tail in the error). */
  waitForLog(pattern: RegExp, timeoutMs = 20_000): Promise<void> {
    return waitFor(
      () => pattern.test(this.log()),
      [[this.logChanges, 'change']],
      {
        timeoutMs,
        what: `Postfix's log to match ${pattern}`,
        describe: () => this.logTail(),
      },
    );
  }

  /** The last lines of the mail log, for a failure's message. */
  logTail(lines = 15): string {
    if (!this.dir) return '';
    return this.log().trim().split('\n').slice(-lines).join('\n');
  }

  async stop(): Promise<void> {
    clearInterval(this.ticker);
    this.watcher?.close();
    if (!this.dir) return;
    const pid = this.masterPid;
    this.masterPid = 0;
    // as `postfix stop` does; the master takes its children down with it: wait for it before
    // removing the folder
    if (pid > 0 && isRunning(pid)) {
      process.kill(pid, 'SIGTERM');
      const ticks = new EventEmitter();
      const timer = setInterval(() => ticks.emit('tick'), 50);
      await waitFor(() => !isRunning(pid), [[ticks, 'tick']], {
        timeoutMs: 10_000,
        what: `Postfix's master (pid ${pid}) to exit`,
      }).finally(() => clearInterval(timer));
    }
    await rm(this.dir, { recursive: true, force: true });
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
      maillog_file: this.logPath,
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
    const { readdir } = await import('node:fs/promises');
    for (const name of await readdir(commandDir)) {
      const path = join(bin, name);
      await writeFile(
        path,
        `#!/bin/sh\nLD_LIBRARY_PATH=${libraryPath} exec ${join(commandDir, name)} "$@"\n`,
      );
      await chmod(path, 0o755);
    }
  }

  /** Runs a Postfix program; rejects with its output (and the log's tail) unless it exits 0. */
  private async run(
    name: string,
    args: string[],
    input: string | Buffer = '',
  ): Promise<string> {
    const { libraryPath } = this.install;
    const child = spawn(name.includes('/') ? name : this.command(name), args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: {
        PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
        ...(libraryPath ? { LD_LIBRARY_PATH: libraryPath } : {}),
      },
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (output += s));
    let errors = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (errors += s));
    child.stdin.end(input);
    const [code] = (await once(child, 'close')) as [number | null];
    if (code !== 0) {
      throw new Error(
        `${name} ${args.join(' ')} exited ${code}: ${errors}${output}\n${this.logTail()}`,
      );
    }
    return output;
  }
}

/**
 * The queue's folders, with the owners and modes `postfix start` would give them (its
 * post-install, as Debian's postfix-files lists them).
 */
async function makeQueue(queue: string): Promise<void> {
  const { uid } = postfixIds();
  const postdrop = groupId('postdrop');
  const folders: Array<[string, number, number, number]> = [
    ...[
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
    ].map((name): [string, number, number, number] => [name, uid, 0, 0o700]),
    ['maildrop', uid, postdrop, 0o730],
    ['public', uid, postdrop, 0o710],
    ['pid', 0, 0, 0o755],
  ];
  for (const [name, owner, group, mode] of folders) {
    const path = join(queue, name);
    await mkdir(path);
    await chown(path, owner, group);
    await chmod(path, mode);
  }
}

/** A group's id, from /etc/group. */
function groupId(name: string): number {
  const line = readFileSync('/etc/group', 'utf8')
    .split('\n')
    .find(l => l.startsWith(`${name}:`));
  if (!line) throw new Error(`no ${name} group in /etc/group`);
  return Number(line.split(':')[2]);
}

/** The postfix user's ids. */
function postfixIds(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find(l => l.startsWith('postfix:'));
  if (!line) throw new Error('no postfix user in /etc/passwd');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** Whether a process runs (a zombie nobody reaped yet does not). */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Starts a throwaway Postfix (Postfix must be installed: see POSTFIX_MISSING). */
export function startPostfix(
  options: PostfixOptions,
): Promise<ThrowawayPostfix> {
  if (typeof postfixInstall === 'string') throw new Error(postfixInstall);
  return new ThrowawayPostfix(postfixInstall, options).start();
}
