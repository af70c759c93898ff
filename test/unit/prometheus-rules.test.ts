// docs/prometheus-alerts.yml is valid for Prometheus, and its alerts fire when they must:
// `promtool check rules` and `promtool test rules` (test/fixtures/prometheus/alerts.test.yml).
import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import {
  hasPromtool,
  promtool,
  PROMTOOL_MISSING,
} from '../helpers/promtool.js';

const path = (relative: string) =>
  fileURLToPath(new URL(`../../${relative}`, import.meta.url));

describe('docs/prometheus-alerts.yml with promtool', () => {
  before(function () {
    if (hasPromtool) return;
    console.warn(`      ${PROMTOOL_MISSING}`);
    this.skip();
  });

  it('passes promtool check rules', async () => {
    const { code, output } = await promtool([
      'check',
      'rules',
      path('docs/prometheus-alerts.yml'),
    ]);
    expect(code, output).to.equal(0);
  });

  it('passes promtool test rules: dead letters and 451s alert on the first event after a restart', async () => {
    const { code, output } = await promtool([
      'test',
      'rules',
      path('test/fixtures/prometheus/alerts.test.yml'),
    ]);
    expect(code, output).to.equal(0);
    expect(output).to.match(/SUCCESS/);
  });
});
