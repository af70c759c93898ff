// A throwaway Exim for interop tests: Debian's exim4 with a configuration of its own (-C), its
// spool, logs and pid in a temporary directory, a daemon on a free 127.0.0.1 port (-oX, never
// 25). Exim gives up root for a -C file that is not in its TRUSTED_CONFIG_LIST ("exim user lost
// privilege for using -C option") and runs as its exim user: enough to relay to mailbridge,
// whose folders that user then owns.
import { existsSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import {
  freePort,
  MailLog,
  runProgram,
  stopThrowaway,
  userIds,
} from './mta.js';

const EXIM = '/usr/sbin/exim4';
/** Debian's exim user (the one compiled in) */
const EXIM_USER = 'Debian-exim';

function eximMissing(): string | undefined {
  if (process.platform !== 'linux' || userInfo().uid !== 0) {
    return 'Exim interop runs as root on Linux (CI does)';
  }
  if (!existsSync(EXIM) || !userIds(EXIM_USER)) {
    return 'Exim is not installed: its interop tests are skipped here (.ci/run installs exim4-daemon-light)';
  }
  return undefined;
}

/** Why the Exim tests skip, or undefined when Exim can run here. */
export const EXIM_MISSING = eximMissing();

export interface EximOptions {
  /** the domain Exim relays to mailbridge */
  domain: string;
  /** mailbridge's port on 127.0.0.1 */
  port: number;
  /** hand over with LMTP (the transport's protocol = lmtp) */
  lmtp?: boolean;
  /** ask mailbridge at RCPT time (verify = recipient/callout): unknown recipients refused */
  verifyRecipients?: boolean;
}

/**
 * A running throwaway Exim daemon. start() writes its configuration and starts it; stop() ends
 * it (waiting until it is gone) and removes the folder.
 */
export class ThrowawayExim {
  /** the daemon's port on 127.0.0.1 */
  port = 0;
  dir = '';
  private mainlog?: MailLog;
  private pid = 0;

  constructor(private readonly options: EximOptions) {}

  get configFile(): string {
    return join(this.dir, 'exim.conf');
  }

  /** The main log, to wait on. */
  get log(): MailLog {
    if (!this.mainlog) throw new Error('Exim is not started');
    return this.mainlog;
  }

  async start(): Promise<this> {
    this.dir = await mkdtemp(join(tmpdir(), 'mailbridge-exim-'));
    this.port = await freePort();
    const { uid, gid } = userIds(EXIM_USER)!;
    // the daemon runs as the exim user: it writes its spool, logs and pid here
    await chmod(this.dir, 0o755);
    for (const name of ['spool', 'log', 'run']) {
      await mkdir(join(this.dir, name));
      await chown(join(this.dir, name), uid, gid);
    }
    await writeFile(this.configFile, eximConfig(this.dir, this.options));
    const logPath = join(this.dir, 'log/mainlog');
    await writeFile(logPath, '');
    await chown(logPath, uid, gid);
    this.mainlog = new MailLog(logPath);
    const pidFile = join(this.dir, 'run/exim.pid');
    // -bd forks the daemon and returns; -oP writes its pid, which -oX alone does not
    await this.run(['-bd', '-oX', String(this.port), '-oP', pidFile]);
    await this.log.waitFor(/daemon started/);
    this.pid = Number(readFileSync(pidFile, 'utf8').trim());
    return this;
  }

  /** Submits a message on the command line (as a local user would), delivered before return. */
  async sendmail(
    from: string,
    to: string[],
    raw: string | Buffer,
  ): Promise<void> {
    await this.run(['-odi', '-oi', '-f', from, '--', ...to], raw);
  }

  /** `exim -qff`: a queue run now, retry times and frozen messages included. */
  async flush(): Promise<void> {
    await this.run(['-qff']);
  }

  /** The queue as `exim -bp` lists it ('' when empty). */
  async queue(): Promise<string> {
    return (await this.run(['-bp'])).trim();
  }

  async stop(): Promise<void> {
    this.mainlog?.close();
    if (!this.dir) return;
    await stopThrowaway(
      this.dir,
      this.pid,
      join(this.dir, 'run/exim.pid'),
      "Exim's daemon",
    );
    this.pid = 0;
    this.dir = '';
  }

  private run(args: string[], input: string | Buffer = ''): Promise<string> {
    return runProgram(EXIM, ['-C', this.configFile, ...args], {
      input,
      context: () => this.mainlog?.tail() ?? '',
    });
  }
}

/**
 * The configuration: docs/deployment.md's "Behind Exim" router and transport (the port and
 * LMTP as told), with recipient verification at RCPT when asked for, and nothing else
 * delivered anywhere.
 */
function eximConfig(dir: string, options: EximOptions): string {
  return `
keep_environment =
primary_hostname = exim.test
spool_directory = ${dir}/spool
log_file_path = ${dir}/log/%slog
local_interfaces = 127.0.0.1
domainlist relay_to_domains = ${options.domain}
acl_smtp_rcpt = acl_check_rcpt
# no STARTTLS offered (Exim would make up a self-signed certificate)
tls_advertise_hosts =

begin acl

acl_check_rcpt:
  deny    !domains = +relay_to_domains
          message = relay not permitted
${options.verifyRecipients ? '  require verify = recipient/callout=10s\n' : ''}  accept

begin routers

mailbridge:
  driver = manualroute
  domains = +relay_to_domains
  route_list = * 127.0.0.1
  transport = mailbridge_smtp
  self = send
  no_more

# anything else (a bounce to a forged sender): refused here, never sent
nowhere:
  driver = redirect
  data = :fail: outbound mail disabled in this test
  allow_fail

begin transports

mailbridge_smtp:
  driver = smtp
  port = ${options.port}
  allow_localhost
${options.lmtp ? '  protocol = lmtp\n' : ''}
begin retry

*  *  F,1h,1m
`;
}

/** Starts a throwaway Exim (Exim must be installed: see EXIM_MISSING). */
export function startExim(options: EximOptions): Promise<ThrowawayExim> {
  if (EXIM_MISSING) throw new Error(EXIM_MISSING);
  return startOrClean(new ThrowawayExim(options));
}

/** Starts `exim`; whatever a failed start left running or on disk is removed. */
async function startOrClean(exim: ThrowawayExim): Promise<ThrowawayExim> {
  try {
    return await exim.start();
  } catch (err) {
    await exim.stop().catch(() => {});
    throw err;
  }
}
