/**
 * What can be checked of deploy/ without a Docker daemon or a cluster:
 * - `promtool check config` accepts deploy/prometheus/prometheus.yml (and its rule files);
 * - the compose file and every Kubernetes manifest parse as YAML, and have the expected shape;
 * - every FACEFLOW_* variable they set is one that the service it is given to reads (the `env:` of its config
 *   fields in services/<name>/src, the shared fields in packages/shared/src, the engine's variables for the
 *   two services that load the engine);
 * - every faceflow_* metric the Grafana dashboard and the Prometheus rules query is defined in the code.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { ROOT } from '../pipeline/fixtures.js';

const exec = promisify(execFile);
const DEPLOY = path.join(ROOT, 'deploy');
const SERVICES = ['ingest', 'embedder', 'matcher', 'alerts'] as const;
type ServiceName = (typeof SERVICES)[number];

const read = (p: string): string => readFileSync(path.join(ROOT, p), 'utf8');
const sources = (dir: string): string[] =>
  readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('.testkit.ts'))
    .map((f) => read(path.join(dir, f)));

/** The variables a service reads: its own config fields, the shared ones, and the engine's if it loads it. */
function readsEnv(service: ServiceName): Set<string> {
  const texts = [...sources(`services/${service}/src`), read('packages/shared/src/config.ts'), read('packages/shared/src/service.ts')];
  const out = new Set<string>();
  for (const t of texts) for (const m of t.matchAll(/env: '(FACEFLOW_[A-Z0-9_]+)'/g)) out.add(m[1]!);
  if (service === 'embedder') { // the matcher runs no model (issue 13)
    for (const t of sources('packages/engine/src')) for (const m of t.matchAll(/\b(FACEFLOW_[A-Z0-9_]+)\b/g)) out.add(m[1]!);
  }
  return out;
}
const sharedEnv = new Set(SERVICES.map(readsEnv).reduce((a, b) => [...a].filter((x) => b.has(x))));

/** Metric names defined in the code (with the faceflow_ prefix the metrics adapter adds). */
function definedMetrics(): Set<string> {
  const out = new Set<string>();
  for (const dir of ['packages/shared/src', ...SERVICES.map((s) => `services/${s}/src`)]) {
    for (const t of sources(dir)) for (const m of t.matchAll(/(?:name|pendingMetric): '([a-z][a-z0-9_]*)'/g)) out.add(`faceflow_${m[1]!}`);
  }
  return out;
}

describe('deploy/prometheus', () => {
  it('promtool check config accepts prometheus.yml and its rules', async () => {
    const { stdout, stderr } = await exec('promtool', ['check', 'config', path.join(DEPLOY, 'prometheus/prometheus.yml')]);
    expect(`${stdout}${stderr}`).toMatch(/SUCCESS: .*prometheus\.yml is valid/);
    expect(`${stdout}${stderr}`).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('scrapes the four services', () => {
    const p = parse(read('deploy/prometheus/prometheus.yml')) as { scrape_configs: { job_name: string; dns_sd_configs?: { names: string[]; port: number }[] }[] };
    const job = p.scrape_configs.find((j) => j.job_name === 'faceflow')!;
    expect(job.dns_sd_configs![0]!.names.sort()).toEqual([...SERVICES].sort());
    expect(job.dns_sd_configs![0]!.port).toBe(8080);
  });
});

describe('deploy/docker-compose.yml', () => {
  const compose = parse(read('deploy/docker-compose.yml'), { merge: true }) as {
    services: Record<string, { image?: string; build?: { dockerfile: string; args: Record<string, string> }; environment?: Record<string, string> }>;
  };

  it('has Kafka (KRaft), Redis, Prometheus, Grafana and the four services built from deploy/Dockerfile', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['alerts', 'embedder', 'grafana', 'ingest', 'kafka', 'matcher', 'prometheus', 'redis']);
    expect(compose.services.kafka!.environment!.KAFKA_PROCESS_ROLES).toBe('broker,controller');
    for (const s of SERVICES) {
      expect(compose.services[s]!.build).toMatchObject({ dockerfile: 'deploy/Dockerfile', args: { SERVICE: s } });
      expect(read('deploy/Dockerfile')).toContain('services/${SERVICE}/dist/main.js');
    }
  });

  it('sets only FACEFLOW_* variables that each service reads', () => {
    for (const s of SERVICES) {
      const set = Object.keys(compose.services[s]!.environment ?? {}).filter((k) => k.startsWith('FACEFLOW_'));
      expect(set.length).toBeGreaterThan(5);
      const known = readsEnv(s);
      expect({ service: s, unknown: set.filter((k) => !known.has(k)) }).toEqual({ service: s, unknown: [] });
    }
  });
});

describe('deploy/k8s', () => {
  const dir = path.join(DEPLOY, 'k8s');
  const docs = readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) =>
      parseAllDocuments(readFileSync(path.join(dir, f), 'utf8')).map((d) => {
        expect({ file: f, errors: d.errors.map(String) }).toEqual({ file: f, errors: [] });
        return { file: f, doc: d.toJS() as { kind: string; metadata?: { name: string }; data?: Record<string, string>; stringData?: Record<string, string>; spec?: any } };
      }),
    );
  const byKind = (kind: string) => docs.filter((d) => d.doc.kind === kind).map((d) => d.doc);

  it('has a Deployment and a Service per service, the ConfigMap, and the embedder scaled on consumer lag', () => {
    expect(byKind('Deployment').map((d) => d.metadata!.name).sort()).toEqual([...SERVICES].sort());
    expect(byKind('Service').map((d) => d.metadata!.name).sort()).toEqual([...SERVICES].sort());
    const so = byKind('ScaledObject')[0]!;
    expect(so.spec.scaleTargetRef.name).toBe('embedder');
    expect(so.spec.triggers[0]).toMatchObject({ type: 'kafka', metadata: { consumerGroup: 'faceflow-embedder' } });
    const kustomization = byKind('Kustomization')[0] as unknown as { resources: string[] };
    for (const r of kustomization.resources) expect(readdirSync(dir)).toContain(r);
  });

  it('the ConfigMap shared by all four sets only variables every service reads; each Deployment only its own', () => {
    const cm = byKind('ConfigMap')[0]!;
    expect(Object.keys(cm.data!).filter((k) => !sharedEnv.has(k))).toEqual([]);
    for (const s of byKind('Secret')) {
      const keys = Object.keys(s.stringData ?? s.data ?? {});
      const anyService = new Set(SERVICES.flatMap((x) => [...readsEnv(x)]));
      expect(keys.filter((k) => !anyService.has(k))).toEqual([]);
    }
    for (const d of byKind('Deployment')) {
      const name = d.metadata!.name as ServiceName;
      const c = d.spec.template.spec.containers[0] as { env?: { name: string; valueFrom?: { secretKeyRef?: { key: string } } }[]; envFrom?: { configMapRef?: { name: string } }[]; ports: { containerPort: number }[] };
      expect(c.envFrom?.[0]?.configMapRef?.name).toBe(cm.metadata!.name);
      const known = readsEnv(name);
      const set = (c.env ?? []).map((e) => e.name);
      expect({ service: name, unknown: set.filter((k) => !k.startsWith('FACEFLOW_') || !known.has(k)) }).toEqual({ service: name, unknown: [] });
      for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef) expect(known.has(e.valueFrom.secretKeyRef.key)).toBe(true);
      expect(c.ports[0]!.containerPort).toBe(Number(cm.data!.FACEFLOW_HTTP_PORT));
    }
  });
});

describe('deploy/grafana', () => {
  const dashboard = JSON.parse(read('deploy/grafana/dashboards/faceflow.json')) as { panels: { title: string; targets?: { expr: string }[] }[] };
  const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
  const rules = parse(read('deploy/prometheus/rules/faceflow.yml')) as { groups: { rules: { expr: string }[] }[] };
  const ruleExprs = rules.groups.flatMap((g) => g.rules.map((r) => r.expr));

  it('queries only metrics that exist in the code', () => {
    const defined = definedMetrics();
    const used = new Set([...exprs, ...ruleExprs].flatMap((e) => [...e.matchAll(/\bfaceflow_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''))));
    expect(used.size).toBeGreaterThan(8);
    expect([...used].filter((m) => !defined.has(m))).toEqual([]);
  });

  it('shows frames in/out/dropped, consumer lag, batch size, inference and capture-to-event latency, matches, alerts', () => {
    const all = exprs.join('\n');
    for (const m of ['frames_in_total', 'frames_out_total', 'frames_dropped_total', 'consumer_lag_messages', 'embedder_batch_size', 'embedder_inference_seconds', 'capture_to_event_seconds', 'matches_total', 'alerts_total']) {
      expect(all).toContain(`faceflow_${m}`);
    }
    expect(all).toMatch(/histogram_quantile\(0\.5, [^\n]*capture_to_event/);
    expect(all).toMatch(/histogram_quantile\(0\.99, [^\n]*capture_to_event/);
  });

  it('is provisioned with the Prometheus datasource it refers to', () => {
    const ds = parse(read('deploy/grafana/provisioning/datasources/prometheus.yml')) as { datasources: { uid: string; url: string }[] };
    expect(read('deploy/grafana/dashboards/faceflow.json')).toContain(`"uid": "${ds.datasources[0]!.uid}"`);
    expect(ds.datasources[0]!.url).toBe('http://prometheus:9090');
  });
});
