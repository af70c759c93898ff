// Starts the real daemon on port 0 with a throw-away spool, and captures its JSON log lines;
// useBridge() gives a describe a stand-in API and closes what each test started.
import { EventEmitter, once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/load-config.js';
import type { Config } from '../../src/config/schema.js';
import {
  startDaemon,
  type Daemon,
  type DaemonOptions,
} from '../../src/app/daemon.js';
import { createLogger } from '../../src/observability/logger.js';
import { startFakeApi, type FakeApi } from './fake-api.js';

export interface TestBridge {
  daemon: Daemon;
  config: Config;
  smtpPort: number;
  spoolDir: string;
  /** every log line the daemon wrote, parsed */
  logs: Array<Record<string, unknown>>;
  /** Resolves with the first log line (already written or still to come) that matches. */
  waitForLog(
    match: (line: Record<string, unknown>) => boolean,
  ): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

type Overrides = Parameters<typeof loadConfig>[0] extends infer O
  ? O extends { overrides?: infer T }
    ? T
    : never
  : never;

/** How the bridge is started, beyond its configuration. */
export interface BridgeOptions {
  /** the daemon's test seams (clock, randomness of the retry schedule) */
  daemon?: DaemonOptions;
  /** use this spool folder (e.g. one prepared by hand, or a stopped bridge's) */
  spoolDir?: string;
  /** leave the spool folder on disk at close(), for a second bridge to start on */
  keepSpool?: boolean;
}

/**
 * Starts the daemon with config/test.yaml plus `overrides`; env variables of the machine are
 * ignored so a developer's MAILBRIDGE_* cannot change a test.
 */
export async function startBridge(
  overrides: Overrides = {},
  options: BridgeOptions = {},
): Promise<TestBridge> {
  const spoolDir =
    options.spoolDir ?? (await mkdtemp(join(tmpdir(), 'mailbridge-test-')));
  const config = loadConfig({
    env: { NODE_ENV: 'test' },
    overrides: {
      spool: { dir: spoolDir },
      log: { level: 'debug' },
      ...overrides,
    },
  });
  const logs: Array<Record<string, unknown>> = [];
  const logged = new EventEmitter();
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line.trim()) continue;
        logs.push(JSON.parse(line) as Record<string, unknown>);
        logged.emit('line');
      }
      done();
    },
  });
  const log = createLogger({ level: config.log.level, stream });
  const daemon = await startDaemon(config, log, options.daemon);
  let closed: Promise<void> | undefined;
  return {
    daemon,
    config,
    smtpPort: daemon.smtpPort,
    spoolDir,
    logs,
    async waitForLog(match) {
      for (;;) {
        const found = logs.find(match);
        if (found) return found;
        await once(logged, 'line');
      }
    },
    close() {
      // a second close() (a test's own, then useBridge's) must not remove the folder again:
      // another bridge may have started on it since
      closed ??= (async () => {
        await daemon.close();
        if (!options.keepSpool) {
          await rm(spoolDir, { recursive: true, force: true });
        }
      })();
      return closed;
    },
  };
}

/** What useBridge() gives a describe: the stand-in API and the bridges of the running test. */
export interface BridgeFixture {
  /** the stand-in API, a fresh one for each test */
  readonly api: FakeApi;
  /** the bridge this test started last; throws when it has started none */
  readonly bridge: TestBridge;
  /** every bridge this test started, in order */
  readonly bridges: readonly TestBridge[];
  /** Starts a bridge as startBridge() does; it is closed after the test, before the API. */
  start(overrides?: Overrides, options?: BridgeOptions): Promise<TestBridge>;
}

/**
 * Call inside a describe: before each test it starts a stand-in API; after it, it closes the
 * test's bridges in the order they were started, then the API.
 */
export function useBridge(
  hooks: {
    /** runs first after each test, e.g. to drop client connections that would hold up close() */
    beforeClose?: () => void | Promise<void>;
  } = {},
): BridgeFixture {
  let api: FakeApi | undefined;
  const bridges: TestBridge[] = [];
  beforeEach(async () => {
    api = await startFakeApi();
  });
  afterEach(async () => {
    await hooks.beforeClose?.();
    for (const bridge of bridges.splice(0)) await bridge.close();
    await api?.close();
  });
  return {
    get api() {
      if (!api) throw new Error('the stand-in API starts in beforeEach');
      return api;
    },
    get bridge() {
      const last = bridges.at(-1);
      if (!last) throw new Error('no bridge started in this test');
      return last;
    },
    get bridges() {
      return bridges;
    },
    async start(overrides, options) {
      const bridge = await startBridge(overrides, options);
      bridges.push(bridge);
      return bridge;
    },
  };
}

/** A config override pointing the bridge at a stand-in API with a token. */
export function apiAt(url: string, extra: Record<string, unknown> = {}) {
  return { url, token: 'test-token-123', timeoutMs: 2000, ...extra };
}
