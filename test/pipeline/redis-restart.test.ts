/**
 * Redis restarted under load: the matcher keeps matching from the gallery it holds in memory while Redis is
 * down, reconnects when it is back (its pub/sub subscription too), and the identity events are the same as
 * without the restart (the enrolled person named once, nobody misnamed, one exit per enter).
 *
 * The test owns its Redis (a `redis-server` child on a random port, append-only file in a temporary
 * folder, fsync on every write), so that killing it disturbs no other test. Redis is killed with SIGKILL
 * (a crash, not a clean shutdown) once the first matches are out, and started again on the same port and
 * data folder two seconds later; the gallery comes back from the append-only file, as it would in a
 * deployment that runs Redis with persistence (deploy/ does). After the restart a second identity is
 * enrolled: the matcher must pick the change up (gallery version 2 in its /metrics).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IdentityEventSchema, MatchSchema, topicNames, type IdentityEvent } from '@faceflow/shared';
import { KafkaBus } from '@faceflow/shared/kafka';
import { RedisGalleryStore } from '@faceflow/shared/redis';
import { config, probeKafka, skipUnlessReachable, uniq, until } from '../shared/infra.js';
import { fixture, type Fixture } from './fixtures.js';
import { kcat, kcatCount, ready, startService, type Service } from './services.js';

const skip = skipUnlessReachable(await probeKafka());
const id = uniq();
const prefix = `test-redis-${id}`;
const topics = topicNames(prefix);
const extra = [`${topics.faces}.dlq`, `${topics.matches}.dlq`];
const galleryPrefix = `test:redis:${id}:`;
const groups = { embedder: `embedder-${id}`, matcher: `matcher-${id}`, alerts: `alerts-${id}` };
const services: Service[] = [];
let bus: KafkaBus;
let f: Fixture;
let redisDir = '';
let redisPort = 0;
let redis: ChildProcess | undefined;
const redisUrl = (): string => `redis://127.0.0.1:${redisPort}`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

async function startRedis(): Promise<void> {
  redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', redisDir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'], {
    stdio: 'ignore',
  });
  await until(
    async () => {
      try {
        const s = await RedisGalleryStore.open({ url: redisUrl(), connectTimeoutMs: 500 });
        await s.close();
        return true;
      } catch {
        return false;
      }
    },
    20_000,
    `redis-server on ${redisPort}`,
  );
}

async function stopRedis(): Promise<void> {
  const r = redis;
  redis = undefined;
  if (!r || r.exitCode !== null) return;
  const gone = new Promise((resolve) => r.once('exit', resolve));
  r.kill('SIGKILL');
  await gone;
}

async function metric(port: number, name: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

beforeAll(async () => {
  if (skip) return;
  f = await fixture();
  redisDir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-redis-'));
  redisPort = await freePort();
  await startRedis();
  bus = new KafkaBus({ brokers: [...config.kafkaBrokers] });
  await bus.createTopics([...Object.values(topics), ...extra].map((topic) => ({ topic, partitions: 2 })));
  const store = await RedisGalleryStore.open({ url: redisUrl(), keyPrefix: galleryPrefix });
  await store.put('alice', [f.aliceEmbedding], { metadata: { model: 'faceapi-recognition' } });
  await store.close();
});

afterAll(async () => {
  for (const s of services) if (s.child.exitCode === null) s.child.kill('SIGKILL');
  await stopRedis();
  if (redisDir) await rm(redisDir, { recursive: true, force: true });
  if (skip) return;
  await bus?.deleteGroups(Object.values(groups)).catch(() => undefined);
  await bus?.deleteTopics([...Object.values(topics), ...extra]).catch(() => undefined);
  await bus?.close();
});

describe.skipIf(skip)('Redis restarted under load', () => {
  it('the matcher recovers and the matches stay the same', async () => {
    const start = (name: string, env: Record<string, string>): Service => startService(services, prefix, name, { FACEFLOW_REDIS_URL: redisUrl(), ...env });
    const embedder = start('embedder', { FACEFLOW_EMBEDDER_GROUP: groups.embedder, FACEFLOW_EMBEDDER_WORKERS: '1', FACEFLOW_EMBEDDER_MAX_BATCH: '2' });
    const matcher = start('matcher', { FACEFLOW_MATCHER_GROUP: groups.matcher, FACEFLOW_GALLERY_PREFIX: galleryPrefix, FACEFLOW_GALLERY_REFRESH: '500ms' });
    const alerts = start('alerts', { FACEFLOW_ALERTS_GROUP: groups.alerts, FACEFLOW_ALERT_IDLE: '3s' });
    await Promise.all([ready(embedder), ready(matcher), ready(alerts)]);
    expect(await metric(matcher.port!, 'faceflow_gallery_version')).toBe(1);
    const ingest = start('ingest', { FACEFLOW_INGEST_SOURCES: `lobby=${f.clip}`, FACEFLOW_INGEST_FPS: '4' });
    await ready(ingest);

    // under load: the first matches are out, most frames are still to come
    await until(async () => (await kcat(topics.matches)).length >= 1, 240_000, 'first matches');
    await stopRedis();
    const logsAtKill = matcher.logs.length;
    await new Promise((r) => setTimeout(r, 2_000));
    await startRedis();
    // the matcher saw the outage (a connection error logged while Redis was down) and is still ready
    expect(matcher.logs.slice(logsAtKill).some((l) => l.includes('redis') && l.includes('error'))).toBe(true);
    expect((await fetch(`http://127.0.0.1:${matcher.port}/readyz`)).status).toBe(200);

    // a change after the restart reaches the matcher (re-subscribed, or the version backstop)
    const store = await RedisGalleryStore.open({ url: redisUrl(), keyPrefix: galleryPrefix });
    expect(await store.version()).toBe(1); // the gallery came back from the append-only file
    const bob = Array.from({ length: f.aliceEmbedding.length }, (_, i) => (i === 0 ? 1 : 0));
    await store.put('bob', [bob], { metadata: { model: 'faceapi-recognition' } });
    await store.close();
    await until(async () => (await metric(matcher.port!, 'faceflow_gallery_version')) === 2, 30_000, 'gallery version 2 in the matcher');
    expect(await metric(matcher.port!, 'faceflow_gallery_identities')).toBe(2);

    // every frame was matched, and the identity events are those of an undisturbed run
    const frames = await kcatCount(topics.frames);
    expect(frames).toBe(10);
    await until(async () => new Set((await kcat(topics.matches)).map((m) => MatchSchema.decode(Buffer.from(m.value)).frameId)).size === frames, 240_000, 'matches of every frame');
    let events: IdentityEvent[] = [];
    await until(
      async () => {
        events = (await kcat(topics.identityEvents)).map((m) => IdentityEventSchema.decode(Buffer.from(m.value)));
        const enters = events.filter((e) => e.type === 'enter').length;
        return enters >= 3 && events.filter((e) => e.type === 'exit').length === enters;
      },
      120_000,
      'enter and exit events',
    ).catch((e: Error) => {
      throw new Error(`${e.message}; events: ${JSON.stringify(events.map((x) => [x.type, x.identity, x.trackId]))}`);
    });
    expect(events.filter((e) => e.type === 'enter' && e.identity === 'alice')).toHaveLength(1);
    expect(events.every((e) => e.identity === 'alice' || e.identity === null)).toBe(true);
    const matches = (await kcat(topics.matches)).map((m) => MatchSchema.decode(Buffer.from(m.value)));
    expect(matches.every((m) => m.identity === 'alice' || m.identity === null)).toBe(true);
    expect(matches.some((m) => m.identity === 'alice')).toBe(true);
    expect(matcher.child.exitCode).toBeNull();
  }, 480_000); // several engine processes on a shared 2-core machine
});
