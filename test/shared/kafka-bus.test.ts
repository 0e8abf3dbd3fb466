/**
 * KafkaBus against the real single-node Kafka of scripts/infra.sh. Every test creates its own topics and
 * consumer groups (random suffix) and deletes them afterwards.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  dlqTopic,
  DLQ_HEADERS,
  eachMessage,
  FaceflowError,
  FrameSchema,
  type ConsumedMessage,
  type Frame,
} from '@faceflow/shared';
import { createMetrics } from '@faceflow/shared/ops';
import { KafkaBus } from '@faceflow/shared/kafka';
import { busContract } from '../../packages/shared/src/bus/contract.testkit.js';
import { kafka, probeKafka, skipUnlessReachable, uniq, until } from './infra.js';

const probe = await probeKafka();
const skip = skipUnlessReachable(probe);

const fastRetry = { backoff: { initialMs: 50, maxMs: 200, factor: 2, jitter: 0 } };

interface Fixture {
  topic: string;
  dlq: string;
  groups: string[];
  buses: KafkaBus[];
  admin: KafkaBus;
}
const fixtures: Fixture[] = [];

async function fixture(partitions = 1): Promise<Fixture> {
  const id = uniq();
  const topic = `test.bus.${id}`;
  const admin = new KafkaBus({ ...kafka, clientId: `test-admin-${id}` });
  const f: Fixture = { topic, dlq: dlqTopic(topic), groups: [], buses: [], admin };
  fixtures.push(f);
  await admin.createTopics([{ topic, partitions }, { topic: f.dlq }]);
  return f;
}

function newBus(f: Fixture, metrics = createMetrics()): KafkaBus {
  const bus = new KafkaBus({ ...kafka, clientId: `test-${uniq()}`, metrics });
  f.buses.push(bus);
  return bus;
}

function group(f: Fixture, name: string): string {
  const g = `test-${name}-${uniq()}`;
  f.groups.push(g);
  return g;
}

afterEach(async () => {
  for (const f of fixtures.splice(0)) {
    await Promise.all(f.buses.map((b) => b.close({ graceMs: 1_000 })));
    await f.admin.deleteGroups(f.groups);
    await f.admin.deleteTopics([f.topic, f.dlq]);
    await f.admin.close();
  }
});

function frame(cameraId: string, seq: number): Frame {
  return {
    frameId: `${cameraId}-${seq}`,
    cameraId,
    captureTs: Date.UTC(2026, 0, 1) + seq * 40,
    contentType: 'image/jpeg',
    image: Buffer.from([0xff, 0xd8, seq & 0xff, 0x00, 0xff, 0xd9]),
  };
}

async function committedTotal(f: Fixture, groupId: string): Promise<number> {
  const offsets = await f.admin.committedOffsets(groupId, f.topic);
  return offsets.reduce((s, o) => s + Math.max(0, Number(o.offset)), 0);
}

async function endTotal(f: Fixture, topic = f.topic): Promise<number> {
  return (await f.admin.endOffsets(topic)).reduce((s, o) => s + Number(o.offset), 0);
}

describe.skipIf(skip)('KafkaBus (real Kafka)', () => {
  it('round-trips frames keyed by camera id, keeping per-camera order across partitions', async () => {
    const f = await fixture(3);
    const bus = newBus(f);
    const got: Frame[] = [];
    const partitionsOf = new Map<string, Set<number>>();
    await bus.subscribe(
      f.topic,
      group(f, 'order'),
      eachMessage(async (m) => {
        const fr = FrameSchema.decode(m.value);
        expect(m.key).toBe(fr.cameraId);
        got.push(fr);
        partitionsOf.set(fr.cameraId, (partitionsOf.get(fr.cameraId) ?? new Set()).add(m.partition));
      }),
      { maxBatchSize: 7 },
    );
    const cameras = ['cam-a', 'cam-b', 'cam-c', 'cam-d'];
    const perCamera = 25;
    for (let i = 0; i < perCamera; i += 5) {
      // several publishes, cameras interleaved within each
      const batch = [];
      for (let j = i; j < i + 5; j++) for (const c of cameras) batch.push(frame(c, j));
      await bus.publish(
        f.topic,
        batch.map((fr) => ({ key: fr.cameraId, value: FrameSchema.encode(fr), headers: { 'content-type': fr.contentType } })),
      );
    }
    await until(() => got.length === cameras.length * perCamera, 30_000, 'all frames');
    for (const c of cameras) {
      expect(got.filter((fr) => fr.cameraId === c).map((fr) => fr.frameId)).toEqual(Array.from({ length: perCamera }, (_, j) => `${c}-${j}`));
      expect(partitionsOf.get(c)!.size).toBe(1);
    }
    expect(Buffer.from(got[0]!.image)).toEqual(Buffer.from(frame('cam-a', 0).image)); // binary payload intact
    await until(async () => (await committedTotal(f, f.groups[0]!)) === cameras.length * perCamera, 10_000, 'offsets committed');
  });

  it('sends a message whose handler throws a non-retriable FaceflowError to <topic>.dlq with origin headers; the stream goes on', async () => {
    const f = await fixture();
    const metrics = createMetrics();
    const bus = newBus(f, metrics);
    const ok: string[] = [];
    const g = group(f, 'dlq');
    await bus.subscribe(
      f.topic,
      g,
      eachMessage(async (m) => {
        const fr = FrameSchema.decode(m.value); // garbage -> INVALID_MESSAGE (not retriable)
        ok.push(fr.frameId);
      }),
      { deadLetter: fastRetry },
    );
    await bus.publish(f.topic, [
      { key: 'cam-1', value: FrameSchema.encode(frame('cam-1', 0)) },
      { key: 'cam-1', value: Buffer.from('this is not a frame'), headers: { 'x-source': 'rtsp://cam-1' } },
      { key: 'cam-1', value: FrameSchema.encode(frame('cam-1', 2)) },
    ]);
    await until(() => ok.length === 2, 30_000, 'the good frames');
    expect(ok).toEqual(['cam-1-0', 'cam-1-2']);

    const dead: ConsumedMessage[] = [];
    await bus.subscribe(f.dlq, group(f, 'dlq-reader'), async (b) => void dead.push(...b.messages));
    await until(() => dead.length === 1, 30_000, 'the dead letter');
    const d = dead[0]!;
    expect(d.key).toBe('cam-1');
    expect(d.value.toString()).toBe('this is not a frame');
    expect(d.headers).toMatchObject({
      'x-source': 'rtsp://cam-1',
      [DLQ_HEADERS.originTopic]: f.topic,
      [DLQ_HEADERS.originPartition]: '0',
      [DLQ_HEADERS.originOffset]: '1',
      [DLQ_HEADERS.errorCode]: 'INVALID_MESSAGE',
      [DLQ_HEADERS.errorRetriable]: 'false',
      [DLQ_HEADERS.groupId]: g,
    });
    expect(d.headers[DLQ_HEADERS.errorMessage]).toContain('frame');
    await until(async () => (await committedTotal(f, g)) === 3, 10_000, 'offsets committed past the dead letter');
    expect(await metrics.metricsText()).toMatch(/faceflow_bus_dead_letters_total\{[^}]*code="INVALID_MESSAGE"[^}]*\} 1/);
  });

  it('retries a retriable error with backoff, keeps order, dead-letters nothing', async () => {
    const f = await fixture();
    const bus = newBus(f);
    const seen: string[] = [];
    let failuresLeft = 3;
    await bus.subscribe(
      f.topic,
      group(f, 'retry'),
      eachMessage(async (m) => {
        const v = m.value.toString();
        if (v === 'second' && failuresLeft > 0) {
          failuresLeft--;
          throw new FaceflowError('BACKEND_UNAVAILABLE', 'embedding backend restarting');
        }
        seen.push(v);
      }),
      { deadLetter: fastRetry },
    );
    await bus.publish(f.topic, ['first', 'second', 'third'].map((v) => ({ key: 'cam-9', value: Buffer.from(v) })));
    await until(() => seen.length === 3, 30_000, 'all three');
    expect(seen).toEqual(['first', 'second', 'third']);
    expect(failuresLeft).toBe(0);
    expect(await endTotal(f, f.dlq)).toBe(0);
  });

  it('close() lets an in-flight handler finish within the grace period and commits its batch', async () => {
    const f = await fixture();
    const bus = newBus(f);
    const g = group(f, 'drain');
    let started = false;
    let finished = false;
    await bus.subscribe(f.topic, g, async () => {
      started = true;
      await new Promise((r) => setTimeout(r, 500));
      finished = true;
    });
    await bus.publish(f.topic, [{ key: 'k', value: Buffer.from('slow') }]);
    await until(() => started, 30_000, 'the handler to start');
    await bus.close({ graceMs: 10_000 });
    expect(finished).toBe(true);
    expect(await committedTotal(f, g)).toBe(1);
    await expect(bus.publish(f.topic, [{ value: Buffer.from('late') }])).rejects.toMatchObject({ code: 'TRANSPORT' });
  });

  it('close() aborts a handler that outlives the grace period; the message is redelivered to the next consumer', async () => {
    const f = await fixture();
    const g = group(f, 'force');
    const first = newBus(f);
    let started = false;
    await first.subscribe(f.topic, g, async (_b, ctx) => {
      started = true;
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
      throw new FaceflowError('TIMEOUT', 'interrupted by shutdown');
    });
    await first.publish(f.topic, [{ key: 'k', value: Buffer.from('stuck') }]);
    await until(() => started, 30_000, 'the handler to start');
    const t0 = Date.now();
    await first.close({ graceMs: 300 });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(await committedTotal(f, g)).toBe(0);

    const second = newBus(f);
    const redelivered: string[] = [];
    await second.subscribe(f.topic, g, async (b) => void redelivered.push(...b.messages.map((m) => m.value.toString())));
    await until(() => redelivered.length === 1, 30_000, 'redelivery');
    expect(redelivered).toEqual(['stuck']);
    expect(await endTotal(f, f.dlq)).toBe(0);
  });

  it('publishing to a topic that does not exist fails with a FaceflowError', async () => {
    const f = await fixture();
    const bus = new KafkaBus({ ...kafka, retries: 1 });
    f.buses.push(bus);
    const err = await bus.publish(`${f.topic}.missing`, [{ value: Buffer.from('x') }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FaceflowError);
    expect((err as FaceflowError).code).toBe('TRANSPORT');
  });
});

// the behaviour KafkaBus shares with the in-process bus (packages/shared/src/bus/in-process-bus.test.ts runs
// the same kit): every test's own topics and groups, deleted afterwards
describe.skipIf(skip)('KafkaBus (real Kafka): the bus contract', () => {
  const buses: KafkaBus[] = [];
  const topics: string[] = [];
  const groups: string[] = [];
  let admin: KafkaBus | undefined;
  busContract('KafkaBus', {
    async bus() {
      const b = new KafkaBus({ ...kafka, clientId: `test-contract-${uniq()}` });
      buses.push(b);
      return b;
    },
    async topic(partitions = 1) {
      admin ??= new KafkaBus({ ...kafka, clientId: `test-contract-admin-${uniq()}` });
      const topic = `test.contract.${uniq()}`;
      topics.push(topic, dlqTopic(topic));
      await admin.createTopics([{ topic, partitions }, { topic: dlqTopic(topic) }]);
      return topic;
    },
    group(name) {
      const g = `test-contract-${name}-${uniq()}`;
      groups.push(g);
      return g;
    },
    async cleanup() {
      await Promise.all(buses.splice(0).map((b) => b.close({ graceMs: 1_000 })));
      if (admin) {
        await admin.deleteGroups(groups.splice(0));
        await admin.deleteTopics(topics.splice(0));
        await admin.close();
        admin = undefined;
      }
    },
    deliveryMs: 60_000,
  });
});
