// /metrics of the running daemon: every known label value from the start, standard process
// metric names, the latency histograms, and output that `promtool check metrics` passes.
import { expect } from 'chai';
import { KNOWN_LABELS } from '../../src/observability/metrics.js';
import { apiAt, useBridge } from '../helpers/bridge.js';
import {
  hasPromtool,
  promtool,
  PROMTOOL_MISSING,
} from '../helpers/promtool.js';
import { makeMessage, sendRaw } from '../helpers/smtp-client.js';

describe('/metrics', () => {
  const t = useBridge();
  const scrape = async () =>
    (
      await fetch(`http://127.0.0.1:${t.bridge.daemon.httpPort}/metrics`)
    ).text();

  beforeEach(async () => {
    await t.start({ api: apiAt(t.api.url) });
  });

  it('shows every known label value of each labelled counter at 0 right after start', async () => {
    const text = await scrape();
    for (const [name, labels] of Object.entries(KNOWN_LABELS)) {
      for (const [label, values] of Object.entries(labels)) {
        for (const value of values) {
          expect(text).to.include(`\n${name}{${label}="${value}"} 0\n`);
        }
      }
    }
    // no labelled counter is left out of the list
    for (const metric of t.bridge.daemon.metrics.registry.getMetricsAsArray()) {
      const { name, type, labelNames } = metric as unknown as {
        name: string;
        type: string;
        labelNames: string[];
      };
      if (type !== 'counter' || labelNames.length === 0) continue;
      expect(KNOWN_LABELS, name).to.have.property(name);
    }
  });

  it('uses the standard names of process and Node metrics, and says which build runs', async () => {
    const text = await scrape();
    expect(text).to.match(/^process_cpu_user_seconds_total \d/m);
    expect(text).to.match(/^nodejs_heap_size_used_bytes \d/m);
    expect(text).not.to.match(/^mailbridge_(process|nodejs)_/m);
    expect(text).to.match(
      new RegExp(
        `^mailbridge_build_info\\{version="\\d+\\.\\d+\\.\\d+[^"]*",node="${process.versions.node}"\\} 1$`,
        'm',
      ),
    );
  });

  it('times the POST and the whole delivery of a message', async () => {
    const sent = await sendRaw({
      port: t.bridge.smtpPort,
      to: ['support@example.com'],
      raw: makeMessage({ From: 'jane@example.net', Subject: 'time me' }),
    });
    expect(sent.code).to.equal(250);
    await t.bridge.waitForLog(l => l.message === 'message delivered');
    const text = await scrape();
    expect(text).to.match(/^mailbridge_api_post_seconds_count 1$/m);
    expect(text).to.match(/^mailbridge_delivery_seconds_count 1$/m);
    expect(text).to.match(/^mailbridge_queue_oldest_age_seconds \d/m);
  });

  it('passes promtool check metrics', async function () {
    if (!hasPromtool) {
      console.warn(`      ${PROMTOOL_MISSING}`);
      this.skip();
    }
    // with a message through, so the histograms have samples too
    await sendRaw({
      port: t.bridge.smtpPort,
      to: ['support@example.com'],
      raw: makeMessage({ From: 'jane@example.net', Subject: 'check me' }),
    });
    await t.bridge.waitForLog(l => l.message === 'message delivered');
    const text = await scrape();
    expect(text).to.match(/^mailbridge_messages_total/m);
    const { code, output } = await promtool(['check', 'metrics'], text);
    expect(output).to.equal('');
    expect(code).to.equal(0);
  });
});
