/**
 * Redis restarted under load: the matcher keeps matching from the gallery it holds in memory while Redis is
 * down, reconnects when it is back (its pub/sub subscription too), and the identity events are the same as
 * without the restart (the enrolled person named, nobody misnamed, one exit per enter).
 *
 * The test owns its Redis (a `redis-server` child on a random port, append-only file in a temporary
 * folder, fsync on every write), so that killing it disturbs no other test. Redis is killed with SIGKILL
 * (a crash, not a clean shutdown) once the first matches are out, and started again on the same port two
 * seconds later:
 * - with its data (the append-only file), as in a deployment that runs Redis with persistence (deploy/ does);
 *   a change enrolled after the restart must reach the matcher (gallery version 2 in its /metrics);
 * - empty (no persistence, like scripts/infra.sh's Redis): the matcher must keep the gallery it holds rather
 *   than swap it for the empty one (a second camera's stream, pushed after the restart, still names the
 *   enrolled person), not swap it for a re-enrolment made into the empty store either, and follow the
 *   gallery again once Redis is restored from the gallery file (`faceflow gallery import`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { IdentityEventSchema, importGalleryFile, MatchSchema, topicNames, type IdentityEvent } from '@faceflow/shared';
import { KafkaBus } from '@faceflow/shared/kafka';
import { RedisGalleryStore } from '@faceflow/shared/redis';
import { kafka, probeKafka, REDIS_PLAINTEXT_ENV, skipUnlessReachable, uniq, until } from '../shared/infra.js';
import { fixture, type Fixture } from './fixtures.js';
import { kcat, kcatCount, ready, startService, type Service, type ServiceName } from './services.js';

const skip = skipUnlessReachable(await probeKafka());
const services: Service[] = [];
const cleanups: (() => Promise<void>)[] = [];
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

/** SIGKILL: a crash. `wipe` also deletes its data, so that it comes back empty. */
async function killRedis(wipe = false): Promise<void> {
  const r = redis;
  redis = undefined;
  if (r && r.exitCode === null) {
    const gone = new Promise((resolve) => r.once('exit', resolve));
    r.kill('SIGKILL');
    await gone;
  }
  if (wipe) {
    await rm(redisDir, { recursive: true, force: true });
    await mkdir(redisDir, { recursive: true });
  }
}

async function metric(port: number, name: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Topics, groups and a gallery prefix of one scenario (deleted in afterAll); the gallery holds alice. */
async function scenario(tag: string) {
  const id = `${tag}-${uniq()}`;
  const prefix = `test-redis-${id}`;
  const topics = topicNames(prefix);
  const all = [...Object.values(topics), `${topics.faces}.dlq`, `${topics.matches}.dlq`];
  const groups = { embedder: `embedder-${id}`, matcher: `matcher-${id}`, alerts: `alerts-${id}` };
  const galleryPrefix = `test:redis:${id}:`;
  await bus.createTopics(all.map((topic) => ({ topic, partitions: 2 })));
  cleanups.push(async () => {
    await bus.deleteGroups(Object.values(groups)).catch(() => undefined);
    await bus.deleteTopics(all).catch(() => undefined);
  });
  const store = await RedisGalleryStore.open({ url: redisUrl(), keyPrefix: galleryPrefix });
  await store.put('alice', [f.aliceEmbedding], { metadata: { model: 'faceapi-recognition' } });
  await store.close();
  const start = (name: ServiceName, env: Record<string, string>): Service => startService(services, prefix, name, { ...REDIS_PLAINTEXT_ENV, FACEFLOW_REDIS_URL: redisUrl(), ...env });
  // every frame fully detected and every face published: the test compares the matches of every frame
  const embedder = start('embedder', {
    FACEFLOW_EMBEDDER_GROUP: groups.embedder,
    FACEFLOW_EMBEDDER_WORKERS: '1',
    FACEFLOW_EMBEDDER_MAX_BATCH: '2',
    FACEFLOW_FULL_DETECTION_EVERY: '0',
    FACEFLOW_REEMBED_EVERY: '0',
  });
  const matcher = start('matcher', { FACEFLOW_MATCHER_GROUP: groups.matcher, FACEFLOW_GALLERY_PREFIX: galleryPrefix, FACEFLOW_GALLERY_REFRESH: '500ms' });
  const alerts = start('alerts', { FACEFLOW_ALERTS_GROUP: groups.alerts, FACEFLOW_ALERT_IDLE: '3s' });
  await Promise.all([ready(embedder), ready(matcher), ready(alerts)]);
  expect(await metric(matcher.port!, 'faceflow_gallery_version')).toBe(1);
  return { topics, galleryPrefix, matcher, start, services: [embedder, matcher, alerts] };
}

/** Waits until every enter has its exit (at least `enters` of them), and returns the events. */
async function settledEvents(topic: string, enters: number): Promise<IdentityEvent[]> {
  let events: IdentityEvent[] = [];
  await until(
    async () => {
      events = (await kcat(topic)).map((m) => IdentityEventSchema.decode(Buffer.from(m.value)));
      const n = events.filter((e) => e.type === 'enter').length;
      return n >= enters && events.filter((e) => e.type === 'exit').length === n;
    },
    180_000,
    'enter and exit events',
  ).catch((e: Error) => {
    throw new Error(`${e.message}; events: ${JSON.stringify(events.map((x) => [x.type, x.identity, x.cameraId, x.trackId]))}`);
  });
  return events;
}

/** A restart as a crash, under load: once the first matches are out, most frames still to come. */
async function restartUnderLoad(s: Awaited<ReturnType<typeof scenario>>, wipe: boolean): Promise<void> {
  await until(async () => (await kcat(s.topics.matches)).length >= 1, 240_000, 'first matches');
  const logsAtKill = s.matcher.logs.length;
  await killRedis(wipe);
  await new Promise((r) => setTimeout(r, 2_000));
  await startRedis();
  // the matcher saw the outage (a connection error logged while Redis was down), and is ready again once
  // Redis answers (its readiness follows Redis, issue 12; it kept matching from the gallery it holds)
  expect(s.matcher.logs.slice(logsAtKill).some((l) => l.includes('redis') && l.includes('error'))).toBe(true);
  await until(async () => (await fetch(`http://127.0.0.1:${s.matcher.port}/readyz`)).status === 200, 30_000, 'matcher ready again');
}

const stopAll = (list: Service[]): void => {
  for (const s of list) if (s.child.exitCode === null) s.child.kill('SIGKILL');
};

beforeAll(async () => {
  if (skip) return;
  f = await fixture();
  redisDir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-redis-'));
  redisPort = await freePort();
  await startRedis();
  bus = new KafkaBus({ ...kafka });
});

afterAll(async () => {
  stopAll(services);
  await killRedis();
  if (redisDir) await rm(redisDir, { recursive: true, force: true });
  if (skip) return;
  for (const c of cleanups) await c();
  await bus?.close();
});

describe.skipIf(skip)('Redis restarted under load', () => {
  it('with its data: the matcher recovers, follows a later change, and the matches stay the same', async () => {
    const s = await scenario('keep');
    const ingest = s.start('ingest', { FACEFLOW_INGEST_SOURCES: `lobby=${f.clip}`, FACEFLOW_INGEST_FPS: '4' });
    await ready(ingest);
    await restartUnderLoad(s, false);

    // a change after the restart reaches the matcher (re-subscribed, or the version backstop)
    const store = await RedisGalleryStore.open({ url: redisUrl(), keyPrefix: s.galleryPrefix });
    expect(await store.version()).toBe(1); // the gallery came back from the append-only file
    const bob = Array.from({ length: f.aliceEmbedding.length }, (_, i) => (i === 0 ? 1 : 0));
    await store.put('bob', [bob], { metadata: { model: 'faceapi-recognition' } });
    await store.close();
    await until(async () => (await metric(s.matcher.port!, 'faceflow_gallery_version')) === 2, 30_000, 'gallery version 2 in the matcher');
    expect(await metric(s.matcher.port!, 'faceflow_gallery_identities')).toBe(2);

    // every frame was matched, and the identity events are those of an undisturbed run
    const frames = await kcatCount(s.topics.frames);
    expect(frames).toBe(10);
    await until(async () => new Set((await kcat(s.topics.matches)).map((m) => MatchSchema.decode(Buffer.from(m.value)).frameId)).size === frames, 240_000, 'matches of every frame');
    const events = await settledEvents(s.topics.identityEvents, 3);
    expect(events.filter((e) => e.type === 'enter' && e.identity === 'alice')).toHaveLength(1);
    expect(events.every((e) => e.identity === 'alice' || e.identity === null)).toBe(true);
    const matches = (await kcat(s.topics.matches)).map((m) => MatchSchema.decode(Buffer.from(m.value)));
    expect(matches.every((m) => m.identity === 'alice' || m.identity === null)).toBe(true);
    expect(matches.some((m) => m.identity === 'alice')).toBe(true);
    expect(s.matcher.child.exitCode).toBeNull();
    stopAll([...s.services, ingest]);
  }, 480_000); // several engine processes on a shared 2-core machine

  it('empty (no persistence): the matcher keeps the gallery it holds, then follows the rebuilt one', async () => {
    const s = await scenario('empty');
    const lobby = s.start('ingest', { FACEFLOW_INGEST_SOURCES: `lobby=${f.clip}`, FACEFLOW_INGEST_FPS: '4' });
    await ready(lobby);
    await restartUnderLoad(s, true);
    // the matcher has looked at the empty store (its version check runs every 500 ms)
    const store = await RedisGalleryStore.open({ url: redisUrl(), keyPrefix: s.galleryPrefix });
    expect(await store.version()).toBe(0);
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await metric(s.matcher.port!, 'faceflow_gallery_identities')).toBe(1);

    // a second camera streams the same clip after the restart: alice is still named there
    const hall = s.start('ingest', { FACEFLOW_INGEST_SOURCES: `hall=${f.clip}`, FACEFLOW_INGEST_FPS: '4' });
    await ready(hall);
    const events = await settledEvents(s.topics.identityEvents, 6);
    for (const cam of ['lobby', 'hall']) {
      expect({ cam, alice: events.filter((e) => e.cameraId === cam && e.type === 'enter' && e.identity === 'alice').length }).toEqual({ cam, alice: 1 });
    }
    expect(events.every((e) => e.identity === 'alice' || e.identity === null)).toBe(true);

    // a re-enrolment into the empty store (version 1 of a new count) does not replace the gallery held
    const bob = Array.from({ length: f.aliceEmbedding.length }, (_, i) => (i === 0 ? 1 : 0));
    await store.put('bob', [bob], { metadata: { model: 'faceapi-recognition' } });
    await new Promise((r) => setTimeout(r, 2_000));
    expect([await metric(s.matcher.port!, 'faceflow_gallery_version'), await metric(s.matcher.port!, 'faceflow_gallery_store_lost')]).toEqual([1, 1]);

    // Redis restored from the source of truth (the gallery file): the matcher takes it, whole
    const file = path.join(redisDir, '..', `gallery-${uniq()}.json`);
    cleanups.push(() => rm(file, { force: true }));
    const id = (name: string, e: number[]) => ({ id: name, embeddings: [e], metadata: {}, updatedAt: 1 });
    await writeFile(file, JSON.stringify({ format: 'faceflow-gallery', version: 1, model: 'faceapi-recognition', galleryVersion: 2, updatedAt: 1, identities: [id('alice', f.aliceEmbedding), id('bob', bob)] }));
    expect(await importGalleryFile(store, file)).toMatchObject({ version: 3, identities: 2 });
    await store.close();
    await until(
      async () => (await metric(s.matcher.port!, 'faceflow_gallery_version')) === 3 && (await metric(s.matcher.port!, 'faceflow_gallery_identities')) === 2,
      30_000,
      'the restored gallery in the matcher',
    );
    expect(await metric(s.matcher.port!, 'faceflow_gallery_store_lost')).toBe(0);
    expect(s.matcher.child.exitCode).toBeNull();
    stopAll([...s.services, lobby, hall]);
  }, 480_000);
});
