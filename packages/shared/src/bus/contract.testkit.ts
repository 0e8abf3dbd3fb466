/**
 * The behaviour both buses share (types.ts: the Bus contract), as a vitest suite to run against each, as the
 * gallery stores have theirs (issue 13 step 4): InProcessBus (in-process-bus.test.ts) and KafkaBus against a
 * real Kafka (test/shared/kafka-bus.test.ts). Same stage code, two transports: what a stage may rely on is
 * what passes here on both. Test-only: excluded from the build (*.testkit.ts).
 *
 * Commits are observed as a transport-independent consequence: a later subscriber of the same group gets
 * what was not committed again, and nothing that was.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FaceflowError } from '../errors.js';
import { dlqTopic } from '../topics.js';
import { DLQ_HEADERS } from './dead-letter.js';
import type { Bus, ConsumedMessage } from './types.js';

export interface BusHarness {
  /** A bus (the harness closes it at the end of the test). */
  bus(): Promise<Bus>;
  /** A new topic of `partitions` partitions, and its dead-letter topic, uniquely named (deleted at the end). */
  topic(partitions?: number): Promise<string>;
  /** A new consumer group name (deleted at the end). */
  group(name: string): string;
  /** Closes the buses, deletes topics and groups. */
  cleanup(): Promise<void>;
  /** How long to wait for a delivery: a Kafka group needs seconds to join. */
  deliveryMs: number;
}

const fastRetry = { backoff: { initialMs: 20, maxMs: 100, factor: 2, jitter: 0 } };

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const text = (m: ConsumedMessage): string => m.value.toString('utf8');

export function busContract(name: string, harness: BusHarness): void {
  describe(`${name}: Bus contract`, () => {
    afterEach(() => harness.cleanup());

    it('delivers_each_key_in_publish_order_on_one_partition_and_every_group_sees_every_message', async () => {
      const bus = await harness.bus();
      const topic = await harness.topic(3);
      const seen = { a: [] as ConsumedMessage[], b: [] as ConsumedMessage[] };
      await bus.subscribe(topic, harness.group('a'), async (batch) => void seen.a.push(...batch.messages), { maxBatchSize: 7 });
      await bus.subscribe(topic, harness.group('b'), async (batch) => void seen.b.push(...batch.messages));
      const cameras = ['cam-a', 'cam-b', 'cam-c', 'cam-d'];
      for (let i = 0; i < 20; i += 5) {
        const batch = [];
        for (let j = i; j < i + 5; j++) for (const c of cameras) batch.push({ key: c, value: Buffer.from(`${c}:${j}`) });
        await bus.publish(topic, batch);
      }
      await until(() => seen.a.length === 80 && seen.b.length === 80, harness.deliveryMs, 'every message in both groups');
      for (const got of [seen.a, seen.b]) {
        for (const c of cameras) {
          const mine = got.filter((m) => m.key === c);
          expect(mine.map(text)).toEqual(Array.from({ length: 20 }, (_, j) => `${c}:${j}`));
          expect(new Set(mine.map((m) => m.partition)).size).toBe(1);
          expect(mine.map((m) => m.topic)).toEqual(mine.map(() => topic));
        }
      }
    });

    it('keeps_a_batch_within_max_batch_size_and_keeps_headers_and_binary_values', async () => {
      const bus = await harness.bus();
      const topic = await harness.topic();
      const sizes: number[] = [];
      const got: ConsumedMessage[] = [];
      await bus.subscribe(topic, harness.group('batch'), async (b) => void (sizes.push(b.messages.length), got.push(...b.messages)), { maxBatchSize: 3 });
      const binary = Buffer.from([0xff, 0xd8, 0x00, 0x01, 0xff, 0xd9]);
      await bus.publish(topic, Array.from({ length: 10 }, (_, i) => ({ key: 'k', value: i === 0 ? binary : Buffer.from(`m${i}`), headers: { 'x-seq': String(i) } })));
      await until(() => got.length === 10, harness.deliveryMs, 'ten messages');
      expect(Math.max(...sizes)).toBeLessThanOrEqual(3);
      expect(got.map((m) => m.headers['x-seq'])).toEqual(Array.from({ length: 10 }, (_, i) => String(i)));
      expect(Buffer.from(got[0]!.value)).toEqual(binary);
    });

    it('dead_letters_a_non_retriable_failure_with_its_origin_and_goes_on_past_it', async () => {
      const bus = await harness.bus();
      const topic = await harness.topic();
      const g = harness.group('dlq');
      const ok: string[] = [];
      await bus.subscribe(
        topic,
        g,
        async (b) => {
          for (const m of b.messages) {
            if (text(m) === 'poison') throw new FaceflowError('INVALID_MESSAGE', 'not a frame');
            ok.push(text(m));
          }
        },
        { deadLetter: fastRetry },
      );
      await bus.publish(topic, ['one', 'poison', 'three'].map((v) => ({ key: 'cam-1', value: Buffer.from(v), headers: { 'x-source': 'test' } })));
      await until(() => ok.includes('three'), harness.deliveryMs, 'the message after the poison one');
      expect(ok.filter((v) => v !== 'one')).toEqual(['three']);
      const dead: ConsumedMessage[] = [];
      await bus.subscribe(dlqTopic(topic), harness.group('dlq-reader'), async (b) => void dead.push(...b.messages));
      await until(() => dead.length === 1, harness.deliveryMs, 'the dead letter');
      expect(dead[0]!.key).toBe('cam-1');
      expect(text(dead[0]!)).toBe('poison');
      expect(dead[0]!.headers).toMatchObject({
        'x-source': 'test',
        [DLQ_HEADERS.originTopic]: topic,
        [DLQ_HEADERS.errorCode]: 'INVALID_MESSAGE',
        [DLQ_HEADERS.errorRetriable]: 'false',
        [DLQ_HEADERS.groupId]: g,
      });
    });

    it('retries_a_retriable_failure_in_order_and_dead_letters_nothing', async () => {
      const bus = await harness.bus();
      const topic = await harness.topic();
      const seen: string[] = [];
      let failuresLeft = 3;
      await bus.subscribe(
        topic,
        harness.group('retry'),
        async (b) => {
          for (const m of b.messages) {
            if (text(m) === 'second' && failuresLeft > 0) {
              failuresLeft--;
              throw new FaceflowError('BACKEND_UNAVAILABLE', 'backend restarting');
            }
            if (!seen.includes(text(m))) seen.push(text(m));
          }
        },
        { deadLetter: fastRetry },
      );
      const dead: ConsumedMessage[] = [];
      await bus.subscribe(dlqTopic(topic), harness.group('retry-dlq'), async (b) => void dead.push(...b.messages));
      await bus.publish(topic, ['first', 'second', 'third'].map((v) => ({ key: 'cam-9', value: Buffer.from(v) })));
      await until(() => seen.length === 3, harness.deliveryMs, 'all three');
      expect(seen).toEqual(['first', 'second', 'third']);
      expect(failuresLeft).toBe(0);
      expect(dead).toEqual([]);
    });

    it('a_handler_that_finishes_within_the_grace_period_is_committed_and_not_delivered_again', async () => {
      const bus = await harness.bus();
      const topic = await harness.topic();
      const g = harness.group('drain');
      let started = false;
      let finished = false;
      const sub = await bus.subscribe(topic, g, async () => {
        started = true;
        await new Promise((r) => setTimeout(r, 300));
        finished = true;
      });
      await bus.publish(topic, [{ key: 'k', value: Buffer.from('slow') }]);
      await until(() => started, harness.deliveryMs, 'the handler to start');
      await sub.close({ graceMs: 10_000 });
      expect(finished).toBe(true);
      // the same group again: only what comes after
      const again: string[] = [];
      await bus.subscribe(topic, g, async (b) => void again.push(...b.messages.map(text)));
      await bus.publish(topic, [{ key: 'k', value: Buffer.from('next') }]);
      await until(() => again.length > 0, harness.deliveryMs, 'the next message');
      expect(again).toEqual(['next']);
    });

    it('a_handler_that_outlives_the_grace_period_is_aborted_and_its_message_delivered_again', async () => {
      const bus = await harness.bus();
      const topic = await harness.topic();
      const g = harness.group('force');
      let started = false;
      const sub = await bus.subscribe(topic, g, async (_b, ctx) => {
        started = true;
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
        throw new FaceflowError('TIMEOUT', 'interrupted by shutdown');
      });
      await bus.publish(topic, [{ key: 'k', value: Buffer.from('stuck') }]);
      await until(() => started, harness.deliveryMs, 'the handler to start');
      await sub.close({ graceMs: 200 });
      const again: string[] = [];
      await bus.subscribe(topic, g, async (b) => void again.push(...b.messages.map(text)));
      await until(() => again.length > 0, harness.deliveryMs, 'the redelivery');
      expect(again).toEqual(['stuck']);
    });

    // issue 11: on Kafka one consumer fetched again only when every partition of its last fetch was handled,
    // so one camera's slow frame held up every other camera's next frames
    it('a_slow_partition_does_not_hold_up_the_later_messages_of_another_partition', async () => {
      const bus = await harness.bus();
      const topic = await harness.topic(2);
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let blockedOn: number | undefined;
      const whileBlocked: ConsumedMessage[] = [];
      try {
        await bus.subscribe(
          topic,
          harness.group('lanes'),
          async (batch) => {
            for (const m of batch.messages) {
              if (blockedOn !== undefined && m.partition !== blockedOn) whileBlocked.push(m);
              if (text(m) === 'slow') {
                blockedOn = m.partition;
                await gate;
              }
            }
          },
          { concurrency: 2, maxBatchSize: 1, deadLetter: false },
        );
        await bus.publish(topic, [{ key: 'slow-camera', value: Buffer.from('slow') }]);
        await until(() => blockedOn !== undefined, harness.deliveryMs, 'the slow message in its handler');
        // published once the slow handler runs: keys on both partitions (a fetch of their own)
        await bus.publish(topic, Array.from({ length: 20 }, (_, i) => ({ key: `camera-${i}`, value: Buffer.from(`after:${i}`) })));
        await until(() => whileBlocked.length > 0, harness.deliveryMs, 'a message of the other partition while the slow one is in its handler');
        expect(whileBlocked.every((m) => m.partition !== blockedOn && text(m).startsWith('after:'))).toBe(true);
      } finally {
        release();
      }
    });

    it('refuses_to_publish_or_subscribe_once_closed', async () => {
      const bus = await harness.bus();
      const topic = await harness.topic();
      await bus.close({ graceMs: 1000 });
      await expect(bus.publish(topic, [{ value: Buffer.from('late') }])).rejects.toMatchObject({ code: 'TRANSPORT' });
      await expect(bus.subscribe(topic, harness.group('late'), async () => undefined)).rejects.toMatchObject({ code: 'TRANSPORT' });
    });
  });
}
