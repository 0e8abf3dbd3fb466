/**
 * A Kafka outage, on a broker of this test's own (test/shared/dedicated-infra.ts; the shared one is never
 * stopped), with the alerts and ingest services running on it as child processes (issue 12, items 4-6):
 *
 * - exit events survive it: tracks that time out while the broker is down have their exits kept (counted by
 *   faceflow_alerts_pending_events) and published once it is back: every enter has its exit, exactly once;
 * - it is visible: /readyz answers 503 while the broker is down and 200 once it is back, /livez stays 200;
 *   a push is refused at once with 503 and Retry-After (not after kafkajs's ~22 s of retries), and counted;
 * - a pull source that fails (a file that is not there yet) is logged, counted, shown in /readyz, and retried
 *   until it works;
 * - the matcher's /readyz follows Redis too (the test's own Redis), its /livez does not.
 *
 * The figures it observes (events pending, how long they waited) are printed, for docs/operations.md.
 */
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IdentityEventSchema, MatchSchema, topicNames, type IdentityEvent, type Match } from '@faceflow/shared';
import { KafkaBus } from '@faceflow/shared/kafka';
import { startDedicatedInfra, skipUnlessDedicatedInfra, type DedicatedInfra } from '../shared/dedicated-infra.js';
import { PLAINTEXT_ENV, uniq, until } from '../shared/infra.js';
import { ready, startService, type Service } from './services.js';

const exec = promisify(execFile);
const skip = skipUnlessDedicatedInfra();
const id = uniq();
const prefix = `test-outage-${id}`;
const topics = topicNames(prefix);
const services: Service[] = [];
const TRACKS = 4;
const IDLE_MS = 20_000;
const PUSH_TIMEOUT_MS = 2000;
const KEY = 'outage-key';
let infra: DedicatedInfra | undefined;
let dir: string;

const url = (s: Service, p: string): string => `http://127.0.0.1:${s.port!}${p}`;
const status = async (s: Service, p: string): Promise<number> => {
  try {
    return (await fetch(url(s, p), { signal: AbortSignal.timeout(10_000) })).status;
  } catch {
    return -1;
  }
};
async function metric(s: Service, name: string): Promise<number> {
  const text = await (await fetch(url(s, '/metrics'))).text();
  let sum = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) {
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
      seen = true;
    }
  }
  return seen ? sum : NaN;
}

async function events(): Promise<IdentityEvent[]> {
  const { stdout } = await exec('kcat', ['-b', infra!.brokers, '-C', '-t', topics.identityEvents, '-o', 'beginning', '-e', '-q', '-f', '%s\\n'], { timeout: 30_000 });
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => IdentityEventSchema.decode(Buffer.from(l)));
}

function push(ingest: Service): Promise<Response> {
  const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(16, 7), Buffer.from([0xff, 0xd9])]);
  return fetch(url(ingest, '/v1/frames'), { method: 'POST', body: jpeg, headers: { authorization: `Bearer ${KEY}`, 'content-type': 'image/jpeg', 'x-camera-id': 'pushcam' }, signal: AbortSignal.timeout(60_000) });
}

beforeAll(async () => {
  if (skip) return;
  dir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-outage-'));
  infra = await startDedicatedInfra({ kafka: 19192, controller: 19193, redis: 16479 });
  const bus = new KafkaBus({ brokers: [infra.brokers] });
  await bus.createTopics([topics.frames, topics.framesDlq, topics.matches, `${topics.matches}.dlq`, topics.identityEvents].map((topic) => ({ topic, partitions: 2 })));
  await bus.close();
});

afterAll(async () => {
  for (const s of services) if (s.child.exitCode === null) s.child.kill('SIGKILL');
  await infra?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** What the outage showed, recorded in the outage test and checked by the readiness one. */
interface Observed {
  pending: number;
  pendingLater: number;
  readyDown: { alerts: number; ingest: number };
  liveDown: { alerts: number; ingest: number };
  pushDown: { status: number; retryAfter: string | null; ms: number };
  rejectedCounted: number;
  readyUp: { alerts: number; ingest: number };
  pushUp: number;
}

/** Polls until `cond` holds or `ms` passed; false then (the caller's assertion says what failed). */
async function eventually(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return cond();
}

describe.skipIf(skip)('a Kafka outage', () => {
  let alerts: Service;
  let ingest: Service;
  let observed: Observed | undefined;
  const late = (): string => path.join(dir, 'late.mp4');

  beforeAll(async () => {
    const env = { ...PLAINTEXT_ENV, FACEFLOW_KAFKA_BROKERS: infra!.brokers, FACEFLOW_REDIS_URL: infra!.redisUrl };
    alerts = startService(services, prefix, 'alerts', { ...env, FACEFLOW_ALERTS_GROUP: `alerts-${id}`, FACEFLOW_ALERT_IDLE: `${IDLE_MS}ms`, FACEFLOW_ALERT_COOLDOWN: '0ms' });
    ingest = startService(services, prefix, 'ingest', {
      ...env,
      FACEFLOW_INGEST_API_KEYS: `pushcam:${createHash('sha256').update(KEY).digest('hex')}`,
      FACEFLOW_INGEST_PUSH_TIMEOUT: `${PUSH_TIMEOUT_MS}ms`,
      FACEFLOW_INGEST_SOURCES: `late=${late()}`,
      FACEFLOW_INGEST_SOURCE_RETRY_MAX: '1s',
    });
    await ready(alerts);
    await ready(ingest);
  });

  it('a_failing_pull_source_is_logged_counted_reported_and_retried_until_it_works', async () => {
    await until(async () => (await metric(ingest, 'faceflow_ingest_source_errors_total')) >= 1, 30_000, 'a source error counted');
    const failing = (await (await fetch(url(ingest, '/readyz'))).json()) as { sources?: Record<string, { state: string; errors: number; lastError?: string }> };
    expect(failing.sources?.late).toMatchObject({ state: 'failing' });
    expect(failing.sources?.late?.lastError).toMatch(/late\.mp4/);
    expect(ingest.logs.some((l) => l.includes('"source failed"') && l.includes('late.mp4'))).toBe(true);
    await exec('ffmpeg', ['-y', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=5', '-t', '1', '-pix_fmt', 'yuv420p', late()]);
    await until(async () => ((await (await fetch(url(ingest, '/readyz'))).json()) as typeof failing).sources?.late?.state === 'ended', 60_000, 'the late source read to its end');
  });

  it('exit_events_survive_a_broker_outage', async () => {
    // TRACKS tracks, one per camera (so that only the idle sweeper ends them), each announced
    const bus = new KafkaBus({ brokers: [infra!.brokers] });
    const t0 = Date.now();
    const matches: Match[] = [];
    for (let t = 0; t < TRACKS; t++) {
      for (let i = 0; i < 4; i++) {
        const identity = `person-${t}`;
        matches.push({
          frameId: `f-${t}-${i}`,
          cameraId: `cam-${t}`,
          captureTs: t0 + i * 100,
          faceIndex: 0,
          trackId: `track-${t}`,
          box: { x: 0, y: 0, width: 50, height: 50 },
          identity,
          score: 0.9,
          candidates: [{ identity, score: 0.9 }],
          quality: 0.9,
          galleryVersion: 1,
          track: { identity, confidence: 0.9, startTs: t0, faces: i + 1, reason: 'match' },
        });
      }
    }
    await bus.publish(topics.matches, matches.map((m) => ({ key: m.cameraId, value: MatchSchema.encode(m) })));
    await bus.close();
    await until(async () => (await events()).filter((e) => e.type === 'enter').length === TRACKS, 60_000, 'every track entered');
    const sentAt = Date.now();
    expect((await events()).filter((e) => e.type === 'exit')).toEqual([]);

    // the outage: the tracks go idle (IDLE_MS after their last match) while the broker is down
    await infra!.stopKafka();
    const stoppedAt = Date.now();
    await new Promise((r) => setTimeout(r, Math.max(0, sentAt + IDLE_MS + 3000 - Date.now())));
    await eventually(async () => (await status(alerts, '/readyz')) === 503 && (await status(ingest, '/readyz')) === 503, 20_000);
    const o: Partial<Observed> = {};
    o.pending = await metric(alerts, 'faceflow_alerts_pending_events');
    o.readyDown = { alerts: await status(alerts, '/readyz'), ingest: await status(ingest, '/readyz') };
    o.liveDown = { alerts: await status(alerts, '/livez'), ingest: await status(ingest, '/livez') };
    const pushStart = Date.now();
    const refused = await push(ingest).catch(() => undefined);
    o.pushDown = { status: refused?.status ?? -1, retryAfter: refused?.headers.get('retry-after') ?? null, ms: Date.now() - pushStart };
    o.rejectedCounted = await metric(ingest, 'faceflow_ingest_push_rejected_total');
    // still pending after several more retries
    await new Promise((r) => setTimeout(r, 5000));
    o.pendingLater = await metric(alerts, 'faceflow_alerts_pending_events');

    await infra!.up();
    const upAt = Date.now();
    await eventually(async () => (await events()).filter((e) => e.type === 'exit').length >= TRACKS, 60_000);
    const deliveredAt = Date.now();
    await eventually(async () => (await status(alerts, '/readyz')) === 200 && (await status(ingest, '/readyz')) === 200, 60_000);
    o.readyUp = { alerts: await status(alerts, '/readyz'), ingest: await status(ingest, '/readyz') };
    o.pushUp = (await push(ingest)).status;
    observed = o as Observed;

    const all = await events();
    const enters = all.filter((e) => e.type === 'enter').map((e) => e.trackId).sort();
    const exits = all.filter((e) => e.type === 'exit').map((e) => e.trackId).sort();
    expect(enters).toHaveLength(TRACKS);
    expect(exits).toEqual(enters);
    expect(o.pending).toBe(TRACKS);
    expect(o.pendingLater).toBe(TRACKS);
    expect(await metric(alerts, 'faceflow_alerts_pending_events')).toBe(0);
    console.log(
      `[outage figures] broker down ${((upAt - stoppedAt) / 1000).toFixed(1)} s (restart included); exits pending: ${o.pending}; ` +
        `published ${((deliveredAt - upAt) / 1000).toFixed(1)} s after the broker answered again, ${((deliveredAt - sentAt - IDLE_MS) / 1000).toFixed(1)} s after the tracks went idle; ` +
        `push refused in ${o.pushDown.ms} ms with ${o.pushDown.status}, Retry-After ${o.pushDown.retryAfter}`,
    );
  }, 400_000);

  it('readiness_reflects_the_broker_and_a_push_is_refused_at_once_while_it_is_down', () => {
    expect(observed).toBeDefined();
    const o = observed!;
    expect(o.readyDown).toEqual({ alerts: 503, ingest: 503 });
    expect(o.liveDown).toEqual({ alerts: 200, ingest: 200 });
    expect(o.pushDown.status).toBe(503);
    expect(Number(o.pushDown.retryAfter)).toBeGreaterThan(0);
    // a bound, not a measurement: refused within the configured timeout (plus slack), not after kafkajs's retries
    expect(o.pushDown.ms).toBeLessThan(PUSH_TIMEOUT_MS + 5000);
    expect(o.rejectedCounted).toBeGreaterThanOrEqual(1);
    expect(o.readyUp).toEqual({ alerts: 200, ingest: 200 });
    expect(o.pushUp).toBe(202);
  });
});

describe.skipIf(skip)('a Redis outage', () => {
  it('matcher_readiness_reflects_redis_and_its_liveness_does_not', async () => {
    const matcher = startService(services, prefix, 'matcher', {
      ...PLAINTEXT_ENV,
      FACEFLOW_KAFKA_BROKERS: infra!.brokers,
      FACEFLOW_REDIS_URL: infra!.redisUrl,
      FACEFLOW_MATCHER_GROUP: `matcher-${id}`,
      FACEFLOW_GALLERY_PREFIX: `test:outage:${id}:`,
    });
    await ready(matcher);
    await until(async () => (await status(matcher, '/readyz')) === 200, 30_000, 'matcher ready');
    await infra!.stopRedis();
    await until(async () => (await status(matcher, '/readyz')) === 503, 30_000, 'matcher not ready while Redis is down');
    const body = (await (await fetch(url(matcher, '/readyz'))).json()) as { dependencies?: Record<string, { up: boolean }> };
    expect(body.dependencies).toMatchObject({ kafka: { up: true }, redis: { up: false } });
    expect(await status(matcher, '/livez')).toBe(200);
    await infra!.up();
    await until(async () => (await status(matcher, '/readyz')) === 200, 60_000, 'matcher ready again once Redis is back');
  }, 200_000);
});
