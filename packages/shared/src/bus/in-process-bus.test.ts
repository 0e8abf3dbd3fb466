import { afterEach, describe, expect, it } from 'vitest';
import { FaceflowError } from '../errors.js';
import { DLQ_HEADERS, eachMessage } from './dead-letter.js';
import { InProcessBus } from './in-process-bus.js';
import type { ConsumedMessage } from './types.js';
import { busContract } from './contract.testkit.js';

const fast = { backoff: { initialMs: 1, maxMs: 5, factor: 2, jitter: 0 } };
let bus: InProcessBus | undefined;
afterEach(async () => {
  await bus?.close({ graceMs: 100 });
  bus = undefined;
});

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const v = (s: string): Buffer => Buffer.from(s);

describe('InProcessBus', () => {
  it('delivers in per-key order across partitions; each group sees everything', async () => {
    bus = new InProcessBus({ partitions: 4 });
    const a: ConsumedMessage[] = [];
    const b: ConsumedMessage[] = [];
    await bus.subscribe('frames', 'embedder', async (batch) => void a.push(...batch.messages));
    await bus.subscribe('frames', 'recorder', async (batch) => void b.push(...batch.messages));
    const msgs = [];
    for (let i = 0; i < 50; i++) for (const cam of ['c1', 'c2', 'c3']) msgs.push({ key: cam, value: v(`${cam}:${i}`) });
    await bus.publish('frames', msgs);
    await until(() => a.length === 150 && b.length === 150);
    for (const cam of ['c1', 'c2', 'c3']) {
      const seq = a.filter((m) => m.key === cam).map((m) => Number(m.value.toString().split(':')[1]));
      expect(seq).toEqual([...Array(50).keys()]);
      expect(new Set(a.filter((m) => m.key === cam).map((m) => m.partition)).size).toBe(1);
    }
  });

  it('respects maxBatchSize and keeps headers', async () => {
    bus = new InProcessBus();
    const sizes: number[] = [];
    let header = '';
    await bus.subscribe(
      't',
      'g',
      async (batch) => {
        sizes.push(batch.messages.length);
        header = batch.messages[0]!.headers.h ?? '';
      },
      { maxBatchSize: 4 },
    );
    await bus.publish('t', Array.from({ length: 10 }, (_, i) => ({ key: 'k', value: v(String(i)), headers: { h: 'x' } })));
    await until(() => sizes.reduce((s, n) => s + n, 0) === 10);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(4);
    expect(header).toBe('x');
  });

  it('dead-letters a non-retriable failure to <topic>.dlq and goes on', async () => {
    bus = new InProcessBus();
    const ok: string[] = [];
    const dlq: ConsumedMessage[] = [];
    await bus.subscribe(
      'faces',
      'matcher',
      eachMessage(async (m) => {
        if (m.value.toString() === 'bad') throw new FaceflowError('INVALID_MESSAGE', 'nope');
        ok.push(m.value.toString());
      }),
      { deadLetter: fast },
    );
    await bus.subscribe('faces.dlq', 'ops', async (batch) => void dlq.push(...batch.messages));
    await bus.publish('faces', [{ key: 'c', value: v('1') }, { key: 'c', value: v('bad') }, { key: 'c', value: v('2') }]);
    await until(() => ok.length === 2 && dlq.length === 1);
    expect(ok).toEqual(['1', '2']);
    expect(dlq[0]!.headers).toMatchObject({ [DLQ_HEADERS.originTopic]: 'faces', [DLQ_HEADERS.originOffset]: '1', [DLQ_HEADERS.errorCode]: 'INVALID_MESSAGE' });
  });

  it('retries a retriable failure without losing order', async () => {
    bus = new InProcessBus();
    const ok: string[] = [];
    let failures = 3;
    await bus.subscribe(
      't',
      'g',
      eachMessage(async (m) => {
        if (m.value.toString() === '2' && failures-- > 0) throw new FaceflowError('OVERLOADED', 'busy');
        ok.push(m.value.toString());
      }),
      { deadLetter: fast },
    );
    await bus.publish('t', ['1', '2', '3'].map((s) => ({ key: 'k', value: v(s) })));
    await until(() => ok.length === 3);
    expect(ok).toEqual(['1', '2', '3']);
  });

  it('a new group starts from the beginning by default, or from the end', async () => {
    bus = new InProcessBus();
    await bus.publish('t', [{ value: v('old') }]);
    const early: string[] = [];
    const late: string[] = [];
    await bus.subscribe('t', 'a', async (b) => void early.push(...b.messages.map((m) => m.value.toString())));
    await bus.subscribe('t', 'b', async (b) => void late.push(...b.messages.map((m) => m.value.toString())), { fromBeginning: false });
    await bus.publish('t', [{ value: v('new') }]);
    await until(() => early.length === 2 && late.length === 1);
    expect(late).toEqual(['new']);
  });

  it('one subscriber per group and topic', async () => {
    bus = new InProcessBus();
    await bus.subscribe('t', 'g', async () => undefined);
    await expect(bus.subscribe('t', 'g', async () => undefined)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('applies backpressure: publish fails with OVERLOADED when a group lags too far', async () => {
    bus = new InProcessBus({ maxLag: 3, publishTimeoutMs: 50 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await bus.subscribe('t', 'slow', async () => gate, { maxBatchSize: 1 });
    await bus.publish('t', [1, 2, 3].map((i) => ({ value: v(String(i)) })));
    await expect(bus.publish('t', [{ value: v('4') }])).rejects.toMatchObject({ code: 'OVERLOADED', retriable: true });
    release();
    await until(() => bus!.retained('t').length === 0);
    await expect(bus.publish('t', [{ value: v('5') }])).resolves.toBeUndefined();
  });

  it('close() drains in-flight handlers within the grace period, and commits them', async () => {
    bus = new InProcessBus();
    let finished = 0;
    await bus.subscribe('t', 'g', async () => {
      await new Promise((r) => setTimeout(r, 100));
      finished++;
    });
    await bus.publish('t', [{ value: v('1') }]);
    await until(() => bus!.retained('t').length === 1);
    await new Promise((r) => setTimeout(r, 10)); // the handler is now running
    await bus.close({ graceMs: 2000 });
    expect(finished).toBe(1);
    expect(bus.retained('t')).toHaveLength(0); // committed, then trimmed
    await expect(bus.publish('t', [{ value: v('2') }])).rejects.toMatchObject({ code: 'TRANSPORT' });
  });

  it('close() aborts a handler that outlives the grace period; its message is not committed', async () => {
    bus = new InProcessBus();
    let aborted = false;
    await bus.subscribe('t', 'g', async (_b, ctx) => {
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
      aborted = true;
      throw new FaceflowError('TIMEOUT', 'stopped');
    });
    await bus.publish('t', [{ value: v('1') }]);
    await new Promise((r) => setTimeout(r, 20));
    const t0 = Date.now();
    await bus.close({ graceMs: 50 });
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(aborted).toBe(true);
    expect(bus.retained('t')).toHaveLength(1);
  });
});

// the behaviour the in-process bus shares with KafkaBus (test/shared/kafka-bus.test.ts runs the same kit)
const contractBuses: InProcessBus[] = [];
let contractTopics = 0;
busContract('InProcessBus', {
  async bus() {
    const b = new InProcessBus();
    contractBuses.push(b);
    return b;
  },
  // the bus is the topics' namespace: a topic of the partitions asked for is made on every bus of the test
  async topic(partitions = 1) {
    const name = `contract.${++contractTopics}`;
    for (const b of contractBuses) b.createTopic(name, partitions);
    return name;
  },
  group: (name) => `g-${name}`,
  async cleanup() {
    await Promise.all(contractBuses.splice(0).map((b) => b.close({ graceMs: 100 })));
  },
  deliveryMs: 5000,
});
