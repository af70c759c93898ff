// deploy/kubernetes-fleet: the overlay of docs/scaling.md renders (kubectl kustomize) into the base
// with N replicas, MAILBRIDGE_REDIS_URL from a Secret naming the Redis Service, a Redis whose
// password is that Secret's, and a PodDisruptionBudget over the mailbridge pods.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FLEET = join(ROOT, 'deploy/kubernetes-fleet');

type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('deploy/kubernetes-fleet', () => {
  let rendered: Doc[] = [];

  before(function () {
    const run = spawnSync('kubectl', ['kustomize', FLEET], {
      encoding: 'utf8',
    });
    if (run.error) {
      console.log('      skipped: kubectl is not installed');
      this.skip();
    }
    expect(run.stderr).to.equal('');
    rendered = parseAllDocuments(run.stdout).map(d => d.toJS() as Doc);
  });

  const find = (kind: string, name: string): Doc => {
    const doc = rendered.find(
      d => d.kind === kind && d.metadata?.name === name,
    );
    expect(doc, `${kind} ${name}`).to.not.equal(undefined);
    return doc!;
  };

  it('runs several mailbridge replicas, each with its own spool volume', () => {
    const set = find('StatefulSet', 'mailbridge');
    expect(set.spec.replicas).to.be.greaterThan(1);
    expect(set.spec.volumeClaimTemplates[0].metadata.name).to.equal('spool');
  });

  it('gives them MAILBRIDGE_REDIS_URL from a Secret that names the Redis Service and its password', () => {
    const set = find('StatefulSet', 'mailbridge');
    const env = set.spec.template.spec.containers[0].env as Doc[];
    const redisUrl = env.find(e => e.name === 'MAILBRIDGE_REDIS_URL');
    const ref = redisUrl?.valueFrom?.secretKeyRef;
    expect(ref).to.deep.equal({ name: 'mailbridge-redis', key: 'url' });
    const secret = find('Secret', 'mailbridge-redis');
    const url = new URL(secret.stringData.url as string);
    const service = find('Service', 'mailbridge-redis');
    expect(url.protocol).to.equal('redis:');
    expect(url.hostname).to.equal(service.metadata.name);
    expect(Number(url.port)).to.equal(service.spec.ports[0].port);
    expect(decodeURIComponent(url.password)).to.equal(
      secret.stringData.password,
    );
    const redis = find('StatefulSet', 'mailbridge-redis');
    const container = redis.spec.template.spec.containers[0];
    expect(container.args).to.include('--requirepass');
    expect(container.env[0].valueFrom.secretKeyRef).to.deep.equal({
      name: 'mailbridge-redis',
      key: 'password',
    });
    expect(service.spec.selector).to.deep.equal(
      redis.spec.template.metadata.labels,
    );
  });

  it('lets a disruption take one mailbridge pod at a time', () => {
    const pdb = find('PodDisruptionBudget', 'mailbridge');
    const set = find('StatefulSet', 'mailbridge');
    expect(pdb.spec.maxUnavailable).to.equal(1);
    expect(pdb.spec.selector.matchLabels).to.deep.equal(
      set.spec.selector.matchLabels,
    );
  });
});
