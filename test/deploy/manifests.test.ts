// The shipped deployments (docker-compose.yml, deploy/kubernetes/, the Dockerfile) parsed and
// checked against the daemon: probe paths it serves, a grace period above its drain, the spool
// volume where the image keeps the spool, the token from a file, everything installed pinned.
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { get } from 'node:http';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { startBridge, apiAt, type TestBridge } from '../helpers/bridge.js';
import { sendRaw, makeMessage } from '../helpers/smtp-client.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const K8S = join(ROOT, 'deploy/kubernetes');

type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Every YAML document of a file. */
async function documents(path: string): Promise<Doc[]> {
  const docs = parseAllDocuments(await readFile(path, 'utf8'));
  for (const doc of docs) {
    expect(doc.errors, path).to.deep.equal([]);
  }
  return docs.map(doc => doc.toJS() as Doc);
}

/** The drain the daemon does on SIGTERM by default, in seconds (config/default.yaml). */
async function drainSeconds(): Promise<number> {
  const defaults = parse(
    await readFile(join(ROOT, 'config/default.yaml'), 'utf8'),
  ) as {
    smtp: { closeTimeoutMs: number };
    delivery: { shutdownTimeoutMs: number };
  };
  return (
    (defaults.smtp.closeTimeoutMs + defaults.delivery.shutdownTimeoutMs) / 1000
  );
}

/** The image's settings read from the Dockerfile: ENV values, EXPOSEd ports, FROM lines. */
async function dockerfile(): Promise<{
  env: Record<string, string>;
  expose: number[];
  from: string[];
  args: Record<string, string>;
  text: string;
}> {
  const text = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
  const joined = text.replace(/\\\n/g, ' ');
  const env: Record<string, string> = {};
  const args: Record<string, string> = {};
  for (const [, body] of joined.matchAll(/^ENV (.+)$/gm)) {
    for (const [, key, value] of body!.matchAll(/(\w+)=(\S+)/g)) {
      env[key!] = value!;
    }
  }
  for (const [, key, value] of joined.matchAll(/^ARG (\w+)=(\S+)$/gm)) {
    args[key!] = value!;
  }
  const expose = [...joined.matchAll(/^EXPOSE (.+)$/gm)].flatMap(([, ports]) =>
    ports!.split(/\s+/).map(Number),
  );
  const from = [...joined.matchAll(/^FROM (\S+)/gm)].map(([, image]) =>
    image!.replace(/^\$\{(\w+)\}$/, (_, name: string) => args[name] ?? name),
  );
  return { env, expose, from, args, text };
}

/** The status of GET path on a loopback port. */
function httpStatus(port: number, path: string): Promise<number> {
  return new Promise((done, fail) => {
    get({ host: '127.0.0.1', port, path }, res => {
      res.resume();
      done(res.statusCode ?? 0);
    }).once('error', fail);
  });
}

/** A compose duration ("60s", "1m30s") in seconds. */
function seconds(duration: string): number {
  let total = 0;
  for (const [, n, unit] of duration.matchAll(/(\d+)(h|m|s)/g)) {
    total += Number(n) * { h: 3600, m: 60, s: 1 }[unit as 'h' | 'm' | 's'];
  }
  return total;
}

describe('deploy: docker-compose.yml, deploy/kubernetes, Dockerfile', function () {
  this.timeout(30_000);
  let compose: Doc;
  let k8s: Doc[];
  let image: Awaited<ReturnType<typeof dockerfile>>;
  let drain: number;
  let production: { spool: { dir: string } };

  before(async () => {
    [compose] = (await documents(join(ROOT, 'docker-compose.yml'))) as [Doc];
    k8s = [];
    for (const file of (await readdir(K8S)).filter(f => f.endsWith('.yaml'))) {
      k8s.push(...(await documents(join(K8S, file))));
    }
    image = await dockerfile();
    drain = await drainSeconds();
    production = parse(
      await readFile(join(ROOT, 'config/production.yaml'), 'utf8'),
    ) as typeof production;
  });

  const kind = (name: string): Doc[] => k8s.filter(d => d.kind === name);
  const statefulSet = (): Doc => kind('StatefulSet')[0]!;
  const container = (): Doc => statefulSet().spec.template.spec.containers[0];

  describe('Dockerfile', () => {
    it('pins the base image by version and digest, and the packages it adds', () => {
      expect(image.from).to.have.length(2);
      for (const from of image.from) {
        expect(from).to.match(
          /^node:\d+\.\d+\.\d+-alpine@sha256:[0-9a-f]{64}$/,
        );
      }
      expect(image.text).to.match(
        /apk add --no-cache 'dumb-init~\d+\.\d+\.\d+'/,
      );
      // npm packages from the lockfile only
      expect(image.text).not.to.match(/npm install/);
      expect(image.text.match(/npm ci /g)).to.have.length(2);
    });

    it('applies the speed patches to the dependencies it runs with (installed without scripts)', () => {
      const runtime = image.text.slice(image.text.lastIndexOf('FROM '));
      expect(runtime).to.match(
        /npm ci --omit=dev --ignore-scripts[^\n]*\\\n\s*node scripts\/patch-dependencies\.mjs /,
      );
      expect(runtime).to.include(
        'COPY scripts/patch-dependencies.mjs ./scripts/',
      );
    });

    it('keeps the spool where production.yaml says, and copies no local.yaml', () => {
      expect(image.env.MAILBRIDGE_SPOOL_DIR).to.equal(production.spool.dir);
      expect(image.text).to.include(`VOLUME ["${production.spool.dir}"]`);
      expect(image.text).not.to.match(/^COPY config \.\/config/m);
    });
  });

  describe('docker-compose.yml', () => {
    it('gives mailbridge longer to stop than its drain', () => {
      const service = compose.services.mailbridge;
      expect(seconds(service.stop_grace_period)).to.be.greaterThan(drain);
    });

    it('mounts a volume at the spool and reads the token from a secret file', () => {
      const service = compose.services.mailbridge;
      expect(service.volumes).to.include(`spool:${production.spool.dir}`);
      expect(compose.volumes).to.have.property('spool');
      expect(service.environment.MAILBRIDGE_API_TOKEN_FILE).to.equal(
        '/run/secrets/api_token',
      );
      expect(service.secrets).to.deep.equal(['api_token']);
      expect(compose.secrets.api_token.file).to.match(
        /examples\/stand-in-token/,
      );
      expect(service.environment).not.to.have.property('MAILBRIDGE_API_TOKEN');
    });

    it('posts to the stand-in API unless MAILBRIDGE_API_URL says otherwise', () => {
      const service = compose.services.mailbridge;
      expect(service.environment.MAILBRIDGE_API_URL).to.equal(
        '${MAILBRIDGE_API_URL:-http://api:8080/api/v1/message}',
      );
      expect(compose.services.api.environment.PORT).to.equal('8080');
      expect(compose.services.api.image).to.equal(image.from[1]);
    });

    it('publishes the ports the image exposes, on loopback', () => {
      const published = compose.services.mailbridge.ports as string[];
      expect(published.map(p => Number(p.split(':').pop()))).to.deep.equal(
        image.expose,
      );
      for (const port of published) expect(port).to.match(/^127\.0\.0\.1:/);
    });
  });

  describe('deploy/kubernetes', () => {
    it('ships a StatefulSet with a volume per pod, two Services, a ConfigMap, a Secret', () => {
      expect(k8s.map(d => d.kind).sort()).to.deep.equal([
        'ConfigMap',
        'Kustomization',
        'Secret',
        'Service',
        'Service',
        'StatefulSet',
      ]);
      const claims = statefulSet().spec.volumeClaimTemplates as Doc[];
      expect(claims.map(c => c.metadata.name)).to.deep.equal(['spool']);
      expect(claims[0]!.spec.accessModes).to.deep.equal(['ReadWriteOnce']);
      const headless = kind('Service').find(s => s.spec.clusterIP === 'None');
      expect(statefulSet().spec.serviceName).to.equal(headless?.metadata.name);
    });

    it('mounts the spool volume where the image keeps the spool', () => {
      const mounts = container().volumeMounts as Doc[];
      expect(mounts.find(m => m.name === 'spool')?.mountPath).to.equal(
        production.spool.dir,
      );
      // the ConfigMap does not move it elsewhere
      const config = parse(
        kind('ConfigMap')[0]!.data['mailbridge.yaml'],
      ) as Doc;
      expect(config).not.to.have.property('spool');
    });

    it('waits longer than the drain before SIGKILL', () => {
      expect(
        statefulSet().spec.template.spec.terminationGracePeriodSeconds,
      ).to.be.greaterThan(drain);
    });

    it('reads the token from the Secret mounted as a file (MAILBRIDGE_API_TOKEN_FILE)', () => {
      const env = Object.fromEntries(
        (container().env as Doc[]).map(e => [e.name, e.value]),
      );
      const secret = kind('Secret')[0]!;
      const volume = (statefulSet().spec.template.spec.volumes as Doc[]).find(
        v => v.secret?.secretName === secret.metadata.name,
      )!;
      const mount = (container().volumeMounts as Doc[]).find(
        m => m.name === volume.name,
      )!;
      const [key] = Object.keys(secret.stringData);
      expect(env.MAILBRIDGE_API_TOKEN_FILE).to.equal(
        `${mount.mountPath}/${key}`,
      );
      expect(env).not.to.have.property('MAILBRIDGE_API_TOKEN');
      // 0440: the fsGroup (the image's node user) reads it, nobody else
      expect(volume.secret.defaultMode).to.equal(0o440);
      expect(statefulSet().spec.template.spec.securityContext.fsGroup).to.equal(
        1000,
      );
    });

    it('mounts the ConfigMap where MAILBRIDGE_CONFIG points', () => {
      const env = Object.fromEntries(
        (container().env as Doc[]).map(e => [e.name, e.value]),
      );
      const mount = (container().volumeMounts as Doc[]).find(
        m => m.name === 'config',
      )!;
      const [file] = Object.keys(kind('ConfigMap')[0]!.data);
      expect(env.MAILBRIDGE_CONFIG).to.equal(`${mount.mountPath}/${file}`);
    });

    it('names the ports the image exposes, and the Service sends 25 to SMTP', () => {
      const ports = container().ports as Doc[];
      expect(ports.map(p => p.containerPort)).to.deep.equal(image.expose);
      const smtp = kind('Service').find(s => s.spec.clusterIP !== 'None')!;
      expect(smtp.spec.ports).to.deep.equal([
        { name: 'smtp', port: 25, targetPort: 'smtp' },
      ]);
    });

    it('renders with kubectl kustomize (when kubectl is installed)', function () {
      const run = spawnSync('kubectl', ['kustomize', K8S], {
        encoding: 'utf8',
      });
      if (run.error) {
        console.log('      skipped: kubectl is not installed');
        this.skip();
      }
      expect(run.stderr).to.equal('');
      const rendered = parseAllDocuments(run.stdout).map(d => d.toJS() as Doc);
      expect(rendered.map(d => d.kind).sort()).to.deep.equal([
        'ConfigMap',
        'Secret',
        'Service',
        'Service',
        'StatefulSet',
      ]);
    });
  });

  describe('against the daemon', () => {
    let bridge: TestBridge | undefined;
    afterEach(async () => {
      await bridge?.close();
      bridge = undefined;
    });

    it('serves every probe path with 200 (Kubernetes, the image HEALTHCHECK)', async () => {
      bridge = await startBridge({});
      const port = bridge.daemon.httpPort!;
      const paths = new Set<string>();
      for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
        paths.add(container()[probe].httpGet.path as string);
        expect(container()[probe].httpGet.port).to.equal('http');
      }
      const healthcheck =
        /HEALTHCHECK .*http:\/\/127\.0\.0\.1:9025(\/\S+)/.exec(image.text);
      paths.add(healthcheck![1]!);
      expect([...paths].sort()).to.deep.equal(['/healthz', '/readyz']);
      for (const path of paths) {
        expect(await httpStatus(port, path), path).to.equal(200);
      }
    });

    it("compose's stand-in API takes the daemon's posts and prints them", async () => {
      const standIn = spawn(
        process.execPath,
        [join(ROOT, 'examples/stand-in-api.mjs')],
        {
          env: { PORT: '0', HOST: '127.0.0.1' },
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      try {
        const lines: Doc[] = [];
        const waiters: Array<() => void> = [];
        let partial = '';
        standIn.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          partial += chunk;
          const done = partial.split('\n');
          partial = done.pop() ?? '';
          for (const line of done) lines.push(JSON.parse(line) as Doc);
          for (const wake of waiters.splice(0)) wake();
        });
        const line = async (match: (l: Doc) => boolean): Promise<Doc> => {
          for (;;) {
            const found = lines.find(match);
            if (found) return found;
            await new Promise<void>(wake => waiters.push(wake));
          }
        };
        const listening = await line(l => 'listening' in l);
        const port = String(listening.listening).split(':').pop();
        const routes = (
          parse(
            await readFile(join(ROOT, 'examples/mailbridge.yaml'), 'utf8'),
          ) as { routes: unknown }
        ).routes;
        bridge = await startBridge({
          api: apiAt(`http://127.0.0.1:${port}/api/v1/message`),
          routes,
        } as Parameters<typeof startBridge>[0]);
        await sendRaw({
          port: bridge.smtpPort,
          from: 'jane@example.net',
          to: ['support@example.com'],
          raw: makeMessage({
            From: 'jane@example.net',
            To: 'support@example.com',
            Subject: 'Compose',
            'Message-ID': '<compose-1@example.net>',
          }),
        });
        const posted = await line(l => l.method === 'POST');
        expect(posted).to.deep.include({
          path: '/api/v1/message',
          bearer: true,
        });
        expect(posted.body).to.include({
          subject: 'Compose',
          mailbox_id: 'mb-support',
        });
      } finally {
        standIn.kill();
      }
    });
  });
});
