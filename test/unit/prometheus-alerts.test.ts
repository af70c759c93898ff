// docs/prometheus-alerts.yml stays true to the metrics: every mailbridge_* series its rules use
// is one the daemon exports, with the labels and values it sets.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import {
  createMetrics,
  KNOWN_LABELS,
} from '../../src/observability/metrics.js';

interface Rule {
  alert: string;
  expr: string;
  labels: { severity: string };
  annotations: { summary: string; description: string };
}

const FILE = new URL('../../docs/prometheus-alerts.yml', import.meta.url);
const rules = (
  parse(readFileSync(FILE, 'utf8')) as { groups: Array<{ rules: Rule[] }> }
).groups.flatMap(g => g.rules);

/** Label values the daemon sets (and shows at 0 from the start), by metric and label. */
const LABEL_VALUES: Record<
  string,
  Record<string, readonly string[]>
> = KNOWN_LABELS;

describe('docs/prometheus-alerts.yml', () => {
  const exported = new Set(
    createMetrics()
      .registry.getMetricsAsArray()
      .map(m => m.name),
  );

  it('has rules, each with a name, severity, summary and description', () => {
    expect(rules.length).to.be.greaterThan(5);
    for (const rule of rules) {
      expect(rule.alert, rule.alert).to.match(/^Mailbridge[A-Z]\w+$/);
      expect(rule.labels.severity, rule.alert).to.be.oneOf([
        'critical',
        'warning',
        'info',
      ]);
      expect(rule.annotations.summary, rule.alert).to.have.length.above(0);
      expect(rule.annotations.description, rule.alert).to.have.length.above(0);
    }
  });

  for (const rule of rules) {
    it(`${rule.alert}: uses exported series with labels the daemon sets`, () => {
      const uses = [...rule.expr.matchAll(/(mailbridge_\w+)(\{[^}]*\})?/g)];
      if (rule.alert === 'MailbridgeDown') {
        return expect(uses).to.have.length(0);
      }
      expect(uses, 'a mailbridge series').to.not.have.length(0);
      for (const [, series, selector] of uses) {
        const name = series!.replace(/_(bucket|sum|count)$/, '');
        expect(exported, series).to.include(name);
        for (const [, label, value] of (selector ?? '').matchAll(
          /(\w+)="([^"]*)"/g,
        )) {
          expect(LABEL_VALUES[name]?.[label!], `${series} ${label}`).to.include(
            value,
          );
        }
      }
    });
  }
});
