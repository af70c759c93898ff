// Unit tables for what a reload changes (config/config-changes.ts) and the live view.
import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { changedKeys, planReload } from '../../src/config/config-changes.js';
import { LiveConfig } from '../../src/config/live-config.js';
import { loadConfig, validate } from '../../src/config/load-config.js';
import type { Config } from '../../src/config/schema.js';

const SHIPPED = fileURLToPath(new URL('../../config/', import.meta.url));

function config(overrides: Record<string, unknown> = {}): Config {
  return loadConfig({
    configDir: SHIPPED,
    env: {},
    overrides: overrides as never,
  });
}

describe('config changes on reload', () => {
  describe('changedKeys', () => {
    const rows: Array<[title: string, a: unknown, b: unknown, keys: string[]]> =
      [
        ['nothing', { a: { b: 1 } }, { a: { b: 1 } }, []],
        [
          'a nested value',
          { a: { b: 1, c: 2 } },
          { a: { b: 1, c: 3 } },
          ['a.c'],
        ],
        [
          'a list is one key',
          { a: { l: [1, 2] } },
          { a: { l: [1, 3] } },
          ['a.l'],
        ],
        ['a key that appears', { a: {} }, { a: { n: null } }, ['a.n']],
        ['a mapping replaced by a value', { a: { b: 1 } }, { a: 2 }, ['a']],
      ];
    for (const [title, a, b, keys] of rows) {
      it(`${title} -> ${JSON.stringify(keys)}`, () => {
        expect(changedKeys(a, b)).to.deep.equal(keys);
      });
    }
  });

  describe('planReload', () => {
    const TLS = { key: '/k.pem', cert: '/c.pem' };
    const rows: Array<{
      title: string;
      running?: Record<string, unknown>;
      next: Record<string, unknown>;
      applied: string[];
      needsRestart: string[];
    }> = [
      {
        title: 'routes and limits apply',
        next: {
          routes: [{ match: 'a@example.com' }],
          smtp: { maxRecipients: 3, maxMessageSize: 1000 },
          log: { level: 'warn' },
        },
        applied: [
          'smtp.maxMessageSize',
          'smtp.maxRecipients',
          'log.level',
          'routes',
        ],
        needsRestart: [],
      },
      {
        title: 'listeners, spool, mode and workers need a restart',
        next: {
          smtp: { host: '127.0.0.2', port: 2600 },
          http: { port: 9100 },
          spool: { dir: '/elsewhere' },
          delivery: { mode: 'sync' },
          cluster: { workers: 4 },
        },
        applied: [],
        needsRestart: [
          'smtp.host',
          'smtp.port',
          'http.port',
          'spool.dir',
          'delivery.mode',
          'cluster.workers',
        ],
      },
      {
        title:
          'the API needs a restart, and so does a token set where there was none (dry-run)',
        next: { api: { token: 'new', timeoutMs: 5 } },
        applied: [],
        needsRestart: ['api.token', 'api.timeoutMs'],
      },
      {
        title: 'a rotated token applies now',
        running: { api: { token: 'old' } },
        next: { api: { token: 'new' } },
        applied: ['api.token'],
        needsRestart: [],
      },
      {
        title: 'a token removed (dry-run again) needs a restart',
        running: { api: { token: 'old' } },
        next: { api: { token: null } },
        applied: [],
        needsRestart: ['api.token'],
      },
      {
        title: 'new TLS files apply while TLS stays on',
        running: { smtp: { tls: TLS } },
        next: { smtp: { tls: { key: '/k2.pem', cert: '/c2.pem' } } },
        applied: ['smtp.tls.key', 'smtp.tls.cert'],
        needsRestart: [],
      },
      {
        title: 'turning TLS on needs a restart',
        next: { smtp: { tls: TLS } },
        applied: [],
        needsRestart: ['smtp.tls.key', 'smtp.tls.cert'],
      },
    ];
    for (const row of rows) {
      it(row.title, () => {
        const running = config(row.running);
        const plan = planReload(
          running,
          config({ ...row.running, ...row.next }),
        );
        expect(plan.applied).to.have.members(row.applied);
        expect(plan.needsRestart).to.have.members(row.needsRestart);
        // what is put in force keeps every restart key's running value
        const inForce = validate(plan.config);
        expect(changedKeys(running, inForce)).to.have.members(row.applied);
      });
    }

    it('a live change that needs a restart key is refused as a whole', () => {
      // required TLS, with the TLS files (a restart key) not yet in force
      const plan = planReload(
        config(),
        config({ smtp: { tls: { ...TLS, required: true } } }),
      );
      expect(() => validate(plan.config)).to.throw(/smtp\.tls\.key: /);
    });
  });

  describe('LiveConfig', () => {
    it('shows the configuration in force through the same view', () => {
      const live = new LiveConfig(config());
      const view = live.view;
      const smtp = view.smtp;
      live.replace(config({ smtp: { maxRecipients: 7 } }));
      expect(view.smtp.maxRecipients).to.equal(7);
      // a slice taken before is the old one: what reads at start keeps its value
      expect(smtp.maxRecipients).to.equal(100);
      expect(JSON.parse(JSON.stringify(view))).to.deep.equal(
        JSON.parse(JSON.stringify(live.current)),
      );
    });
  });
});
