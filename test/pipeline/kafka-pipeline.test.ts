/**
 * The distributed pipeline against the real Kafka and Redis of scripts/infra.sh: the four services run as
 * their own processes (node services/<name>/dist/main.js), configured by environment only, on topics with
 * a random prefix, their own consumer groups and a random Redis key prefix (all deleted afterwards).
 *
 * - frames in (the ingest service pulling the clip through ffmpeg), identity events out, read from the
 *   identity-events topic by a real external client (kcat): the enrolled person is named, nobody is misnamed;
 * - a corrupt frame and a malformed message land on frames.dlq with headers naming origin and error, and
 *   the stream goes on;
 * - every service's /metrics passes `promtool check metrics`.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FrameSchema, IdentityEventSchema, topicNames, type IdentityEvent } from '@faceflow/shared';
import { KafkaBus } from '@faceflow/shared/kafka';
import { RedisGalleryStore } from '@faceflow/shared/redis';
import { kafka, redis, probeKafka, probeRedis, skipUnlessReachable, uniq, until } from '../shared/infra.js';
import { fixture, type Fixture } from './fixtures.js';
import { kcat, ready, startService, type Service, type ServiceName } from './services.js';

const kafkaProbe = await probeKafka();
const redisProbe = await probeRedis();
const skip = skipUnlessReachable(kafkaProbe) || skipUnlessReachable(redisProbe);

const id = uniq();
const prefix = `test-pipeline-${id}`;
const topics = topicNames(prefix);
const galleryPrefix = `test:pipeline:${id}:`;
const groups = { embedder: `embedder-${id}`, matcher: `matcher-${id}`, alerts: `alerts-${id}` };

const services: Service[] = [];
let bus: KafkaBus;
let f: Fixture;
const start = (name: ServiceName, env: Record<string, string>): Service => startService(services, prefix, name, env);

beforeAll(async () => {
  if (skip) return;
  f = await fixture();
  bus = new KafkaBus({ ...kafka });
  await bus.createTopics(Object.values(topics).concat([`${topics.faces}.dlq`, `${topics.matches}.dlq`]).map((topic) => ({ topic, partitions: 2 })));
  const store = await RedisGalleryStore.open({ ...redis, keyPrefix: galleryPrefix });
  await store.put('alice', [f.aliceEmbedding], { metadata: { model: 'faceapi-recognition' } });
  await store.close();
});

afterAll(async () => {
  for (const s of services) if (s.child.exitCode === null) s.child.kill('SIGKILL');
  if (skip) return;
  await bus?.deleteGroups(Object.values(groups)).catch(() => undefined);
  await bus?.deleteTopics(Object.values(topics).concat([`${topics.faces}.dlq`, `${topics.matches}.dlq`])).catch(() => undefined);
  await bus?.close();
  const store = await RedisGalleryStore.open({ ...redis, keyPrefix: galleryPrefix });
  await store.drop();
  await store.close();
});

describe.skipIf(skip)('the pipeline over real Kafka and Redis', () => {
  it('frames in, identity events out (read by kcat); bad frames on the DLQ; the stream goes on; /metrics passes promtool', async () => {
    const embedder = start('embedder', { FACEFLOW_EMBEDDER_GROUP: groups.embedder, FACEFLOW_EMBEDDER_WORKERS: '1' });
    const matcher = start('matcher', { FACEFLOW_MATCHER_GROUP: groups.matcher, FACEFLOW_GALLERY_PREFIX: galleryPrefix });
    const alerts = start('alerts', { FACEFLOW_ALERTS_GROUP: groups.alerts, FACEFLOW_ALERT_IDLE: '3s' });
    await Promise.all([ready(embedder), ready(matcher), ready(alerts)]);

    // a corrupt frame (a valid envelope around broken JPEG bytes) and a malformed message, first in line
    const corrupt = FrameSchema.encode({
      frameId: 'corrupt-1',
      cameraId: 'lobby',
      captureTs: Date.now(),
      contentType: 'image/jpeg',
      image: Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(64, 9)]),
    });
    await bus.publish(topics.frames, [
      { key: 'lobby', value: corrupt },
      { key: 'lobby', value: Buffer.from('{"not":"a frame"}') },
    ]);

    // then the clip, through the ingest service
    const ingest = start('ingest', { FACEFLOW_INGEST_SOURCES: `lobby=${f.clip}`, FACEFLOW_INGEST_FPS: '4' });
    await ready(ingest);

    let events: IdentityEvent[] = [];
    await until(
      async () => {
        events = (await kcat(topics.identityEvents)).map((m) => IdentityEventSchema.decode(Buffer.from(m.value)));
        const enters = events.filter((e) => e.type === 'enter');
        return enters.length >= 3 && events.filter((e) => e.type === 'exit').length >= enters.length;
      },
      240_000,
      'enter and exit events on the identity-events topic',
    );
    expect(events.filter((e) => e.type === 'enter' && e.identity === 'alice')).toHaveLength(1);
    expect(events.every((e) => e.identity === 'alice' || e.identity === null)).toBe(true);
    expect(events.every((e) => e.cameraId === 'lobby')).toBe(true);

    const dlq = await kcat(topics.framesDlq);
    expect(dlq).toHaveLength(2);
    expect(dlq.map((m) => m.headers['faceflow-error-code']).sort()).toEqual(['INVALID_IMAGE', 'INVALID_MESSAGE']);
    for (const m of dlq) {
      expect(m.headers['faceflow-origin-topic']).toBe(topics.frames);
      expect(m.headers['faceflow-consumer-group']).toBe(groups.embedder);
      expect(m.headers['faceflow-origin-offset']).toMatch(/^\d+$/);
    }

    for (const s of [ingest, embedder, matcher, alerts]) {
      const text = await (await fetch(`http://127.0.0.1:${s.port}/metrics`)).text();
      expect(text).toMatch(/faceflow_/);
      const check = spawn('promtool', ['check', 'metrics']);
      check.stdin.end(text);
      let out = '';
      check.stdout.on('data', (d: Buffer) => (out += d.toString()));
      check.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((r) => check.on('close', r));
      expect({ service: s.name, code, out: out.trim() }).toEqual({ service: s.name, code: 0, out: '' });
      expect((await fetch(`http://127.0.0.1:${s.port}/readyz`)).status).toBe(200);
    }
    const embedderMetrics = await (await fetch(`http://127.0.0.1:${embedder.port}/metrics`)).text();
    expect(embedderMetrics).toMatch(/faceflow_bus_dead_letters_total\{[^}]*code="INVALID_IMAGE"[^}]*\} 1/);
    expect(embedderMetrics).toMatch(/faceflow_embedder_batch_size_bucket/);
    const alertsMetrics = await (await fetch(`http://127.0.0.1:${alerts.port}/metrics`)).text();
    expect(alertsMetrics).toMatch(/faceflow_capture_to_event_seconds_count\{service="alerts"\} [1-9]/);
   }, 480_000); // several engine processes on a shared 2-core machine

});
