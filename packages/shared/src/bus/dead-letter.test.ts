import { describe, expect, it } from 'vitest';
import { FaceflowError } from '../errors.js';
import { createMetrics } from '../metrics.js';
import { DLQ_HEADERS, eachMessage, withDeadLetter } from './dead-letter.js';
import type { Batch, ConsumedMessage, HandlerContext, OutgoingMessage } from './types.js';

const fast = { initialMs: 1, maxMs: 5, factor: 2, jitter: 0 };

function msg(offset: number, value: string, key = 'cam-1'): ConsumedMessage {
  return { topic: 'faces', partition: 0, offset: String(offset), key, value: Buffer.from(value), headers: { trace: `t${offset}` }, timestamp: 1000 + offset };
}

function ctx(signal = new AbortController().signal): HandlerContext & { processed: string[] } {
  const processed: string[] = [];
  return { signal, heartbeat: async () => undefined, markProcessed: (m) => processed.push(m.offset), processed };
}

function recorder() {
  const published: { topic: string; messages: OutgoingMessage[] }[] = [];
  return { published, publish: async (topic: string, messages: OutgoingMessage[]) => void published.push({ topic, messages }) };
}

describe('withDeadLetter', () => {
  it('passes a good batch through and marks it processed', async () => {
    const { published, publish } = recorder();
    const seen: string[] = [];
    const h = withDeadLetter(async (b) => void seen.push(...b.messages.map((m) => m.value.toString())), { publish, groupId: 'g' });
    const c = ctx();
    await h({ topic: 'faces', partition: 0, messages: [msg(0, 'a'), msg(1, 'b')] }, c);
    expect(seen).toEqual(['a', 'b']);
    expect(c.processed).toEqual(['0', '1']);
    expect(published).toEqual([]);
  });

  it('dead-letters the one bad message of a batch with origin + error headers, and goes on', async () => {
    const { published, publish } = recorder();
    const metrics = createMetrics();
    const ok: string[] = [];
    const h = withDeadLetter(
      eachMessage(async (m) => {
        if (m.value.toString() === 'bad') throw new FaceflowError('INVALID_MESSAGE', 'face: field "box" is required');
        ok.push(m.value.toString());
      }),
      { publish, groupId: 'matcher', metrics, backoff: fast },
    );
    await h({ topic: 'faces', partition: 0, messages: [msg(5, 'a'), msg(6, 'bad'), msg(7, 'c')] }, ctx());
    expect(ok).toEqual(['a', 'c']); // 'a' not run twice: eachMessage marked it processed
    expect(published).toHaveLength(1);
    const dl = published[0]!;
    expect(dl.topic).toBe('faces.dlq');
    expect(dl.messages[0]!.key).toBe('cam-1');
    expect(dl.messages[0]!.value.toString()).toBe('bad');
    expect(dl.messages[0]!.headers).toMatchObject({
      trace: 't6',
      [DLQ_HEADERS.originTopic]: 'faces',
      [DLQ_HEADERS.originPartition]: '0',
      [DLQ_HEADERS.originOffset]: '6',
      [DLQ_HEADERS.errorCode]: 'INVALID_MESSAGE',
      [DLQ_HEADERS.errorMessage]: 'face: field "box" is required',
      [DLQ_HEADERS.errorRetriable]: 'false',
      [DLQ_HEADERS.groupId]: 'matcher',
    });
    expect(await metrics.metricsText()).toContain('faceflow_bus_dead_letters_total{topic="faces",group="matcher",code="INVALID_MESSAGE"} 1');
  });

  it('isolates the culprit of a failing batch handler one message at a time', async () => {
    const { published, publish } = recorder();
    const calls: string[][] = [];
    const h = withDeadLetter(
      async (b: Batch) => {
        calls.push(b.messages.map((m) => m.value.toString()));
        if (b.messages.some((m) => m.value.toString() === 'bad')) throw new FaceflowError('INVALID_IMAGE', 'not a jpeg');
      },
      { publish, groupId: 'g', backoff: fast },
    );
    await h({ topic: 'faces', partition: 0, messages: [msg(0, 'a'), msg(1, 'bad'), msg(2, 'c')] }, ctx());
    expect(calls).toEqual([['a', 'bad', 'c'], ['a'], ['bad'], ['c']]);
    expect(published.map((p) => p.topic)).toEqual(['faces.dlq']);
    expect(published[0]!.messages[0]!.value.toString()).toBe('bad');
  });

  it('treats a plain Error as INTERNAL (not retried: a poison message cannot loop)', async () => {
    const { published, publish } = recorder();
    let runs = 0;
    const h = withDeadLetter(
      async () => {
        runs++;
        throw new TypeError('undefined is not a function');
      },
      { publish, groupId: 'g', backoff: fast },
    );
    await h({ topic: 'faces', partition: 0, messages: [msg(0, 'x')] }, ctx());
    expect(runs).toBe(1);
    expect(published[0]!.messages[0]!.headers![DLQ_HEADERS.errorCode]).toBe('INTERNAL');
  });

  it('retries a retriable error with backoff until it succeeds', async () => {
    const { published, publish } = recorder();
    const metrics = createMetrics();
    let runs = 0;
    const h = withDeadLetter(
      async () => {
        runs++;
        if (runs < 4) throw new FaceflowError('BACKEND_UNAVAILABLE', 'model server down');
      },
      { publish, groupId: 'g', backoff: fast, metrics },
    );
    const c = ctx();
    await h({ topic: 'faces', partition: 0, messages: [msg(0, 'x')] }, c);
    expect(runs).toBe(4);
    expect(published).toEqual([]);
    expect(c.processed).toEqual(['0']);
    expect(await metrics.metricsText()).toContain('faceflow_bus_handler_retries_total{topic="faces",group="g",code="BACKEND_UNAVAILABLE"} 3');
  });

  it('dead-letters a retriable error after maxAttempts, when a limit is set', async () => {
    const { published, publish } = recorder();
    let runs = 0;
    const h = withDeadLetter(
      async () => {
        runs++;
        throw new FaceflowError('TIMEOUT', 'slow');
      },
      { publish, groupId: 'g', backoff: fast, maxAttempts: 3 },
    );
    await h({ topic: 'faces', partition: 0, messages: [msg(0, 'x')] }, ctx());
    expect(runs).toBe(3);
    expect(published[0]!.messages[0]!.headers).toMatchObject({ [DLQ_HEADERS.errorRetriable]: 'true', [DLQ_HEADERS.attempts]: '3' });
  });

  it('stops retrying and throws when the subscription closes (nothing committed)', async () => {
    const { publish } = recorder();
    const ac = new AbortController();
    const h = withDeadLetter(
      async () => {
        throw new FaceflowError('STORE_UNAVAILABLE', 'redis down');
      },
      { publish, groupId: 'g', backoff: { ...fast, initialMs: 1000, maxMs: 1000 } },
    );
    const c = ctx(ac.signal);
    const p = h({ topic: 'faces', partition: 0, messages: [msg(0, 'x')] }, c);
    setTimeout(() => ac.abort(), 20);
    await expect(p).rejects.toMatchObject({ retriable: true });
    expect(c.processed).toEqual([]);
  });

  it('keeps retrying the dead-letter publish itself when it fails', async () => {
    let fails = 2;
    const published: OutgoingMessage[] = [];
    const h = withDeadLetter(
      async () => {
        throw new FaceflowError('INVALID_MESSAGE', 'bad');
      },
      {
        publish: async (_t, m) => {
          if (fails-- > 0) throw new FaceflowError('TRANSPORT', 'broker away');
          published.push(...m);
        },
        groupId: 'g',
        backoff: fast,
      },
    );
    await h({ topic: 'faces', partition: 0, messages: [msg(0, 'x')] }, ctx());
    expect(published).toHaveLength(1);
  });
});
