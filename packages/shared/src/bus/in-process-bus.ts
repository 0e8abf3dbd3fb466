/**
 * InProcessBus: the bus of the one-process mode (`faceflow run`). Same contract as KafkaBus (see
 * types.ts): per-key order through hashed partitions, consumer groups that each see every message,
 * at-least-once commits after the handler, the dead-letter policy, phased close.
 *
 * Differences, by design: offsets live in memory (a restart starts empty); a message is kept until every
 * group of its topic has committed it (or, with no group yet, the last `retainWithoutSubscribers` per
 * partition); one subscriber per (topic, group). Backpressure: publish waits while a partition holds
 * `maxLag` uncommitted messages, and fails with OVERLOADED (retriable) after `publishTimeoutMs`.
 */
import { FaceflowError } from '../errors.js';
import { silentLogger, type Logger } from '../observability.js';
import type { Metrics } from '../observability.js';
import { checkTopicName } from '../topics.js';
import { withDeadLetter } from './dead-letter.js';
import { instrumentHandler, publishCounter } from './instrument.js';
import { backoffMs, sleep } from './retry.js';
import {
  DEFAULT_GRACE_MS,
  DEFAULT_MAX_BATCH,
  type BatchHandler,
  type Bus,
  type CloseOptions,
  type ConsumedMessage,
  type OutgoingMessage,
  type SubscribeOptions,
  type Subscription,
} from './types.js';

export interface InProcessBusOptions {
  /** Partitions of a topic created implicitly (default 1). */
  partitions?: number;
  /** Uncommitted messages per partition before publish waits (default 10 000). */
  maxLag?: number;
  publishTimeoutMs?: number;
  retainWithoutSubscribers?: number;
  logger?: Logger;
  metrics?: Metrics;
}

interface PartitionLog {
  /** Offset of messages[0]. */
  base: number;
  messages: ConsumedMessage[];
}

interface TopicState {
  name: string;
  partitions: PartitionLog[];
  groups: Map<string, number[]>; // group -> next offset to consume, per partition
  subscribers: Map<string, InProcessSubscription>;
  roundRobin: number;
}

/** FNV-1a: a stable key -> partition mapping. */
function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class InProcessBus implements Bus {
  private readonly topics = new Map<string, TopicState>();
  private readonly subscriptions = new Set<InProcessSubscription>();
  private readonly changed = new Set<() => void>();
  private closed = false;
  private readonly countPublished: ((topic: string, n: number) => void) | undefined;
  readonly options: Required<Omit<InProcessBusOptions, 'metrics'>> & { metrics?: Metrics };

  constructor(options: InProcessBusOptions = {}) {
    this.options = {
      partitions: options.partitions ?? 1,
      maxLag: options.maxLag ?? 10_000,
      publishTimeoutMs: options.publishTimeoutMs ?? 5_000,
      retainWithoutSubscribers: options.retainWithoutSubscribers ?? 10_000,
      logger: options.logger ?? silentLogger,
      ...(options.metrics ? { metrics: options.metrics } : {}),
    };
    this.countPublished = publishCounter(options.metrics);
  }

  /** Creates a topic with `partitions` partitions (a no-op when it exists). */
  createTopic(name: string, partitions = this.options.partitions): void {
    this.topic(name, partitions);
  }

  /** The next offset of each partition of a topic. */
  endOffsets(topic: string): number[] {
    return this.topic(topic).partitions.map((p) => p.base + p.messages.length);
  }

  /** The messages still retained on a topic (all partitions), for tests and debugging. */
  retained(topic: string): ConsumedMessage[] {
    return this.topic(topic).partitions.flatMap((p) => p.messages);
  }

  private topic(name: string, partitions = this.options.partitions): TopicState {
    let t = this.topics.get(name);
    if (!t) {
      checkTopicName(name);
      t = {
        name,
        partitions: Array.from({ length: Math.max(1, partitions) }, () => ({ base: 0, messages: [] })),
        groups: new Map(),
        subscribers: new Map(),
        roundRobin: 0,
      };
      this.topics.set(name, t);
    }
    return t;
  }

  private notify(): void {
    const waiters = [...this.changed];
    this.changed.clear();
    for (const w of waiters) w();
  }

  /** Resolves at the next publish/commit/close, or after `ms`. */
  waitForChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.changed.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.changed.add(done);
    });
  }

  private lag(t: TopicState, p: number): number {
    const log = t.partitions[p]!;
    const end = log.base + log.messages.length;
    let min = end;
    for (const next of t.groups.values()) min = Math.min(min, next[p] ?? 0);
    return end - min;
  }

  /** Drops what every group has consumed (or, with no group, what exceeds the retention). */
  trim(t: TopicState): void {
    t.partitions.forEach((log, p) => {
      const end = log.base + log.messages.length;
      let keepFrom = Math.max(log.base, end - this.options.retainWithoutSubscribers);
      if (t.groups.size > 0) {
        keepFrom = end;
        for (const next of t.groups.values()) keepFrom = Math.min(keepFrom, next[p] ?? 0);
      }
      if (keepFrom > log.base) {
        log.messages.splice(0, keepFrom - log.base);
        log.base = keepFrom;
      }
    });
  }

  async publish(topic: string, messages: OutgoingMessage[]): Promise<void> {
    if (this.closed) throw new FaceflowError('TRANSPORT', 'publish on a closed bus', { retriable: false, details: { topic } });
    const t = this.topic(topic);
    const n = t.partitions.length;
    const placed = messages.map((m) => ({ m, p: m.key == null ? t.roundRobin++ % n : hashKey(m.key) % n }));
    const deadline = Date.now() + this.options.publishTimeoutMs;
    for (const p of new Set(placed.map((x) => x.p))) {
      while (t.groups.size > 0 && this.lag(t, p) >= this.options.maxLag) {
        const left = deadline - Date.now();
        if (left <= 0 || this.closed) {
          throw new FaceflowError('OVERLOADED', `in-process topic ${topic} partition ${p} has ${this.lag(t, p)} unconsumed messages`, {
            details: { topic, partition: p },
          });
        }
        await this.waitForChange(left);
      }
    }
    const now = Date.now();
    for (const { m, p } of placed) {
      const log = t.partitions[p]!;
      log.messages.push({
        topic,
        partition: p,
        offset: String(log.base + log.messages.length),
        key: m.key ?? null,
        value: m.value,
        headers: { ...(m.headers ?? {}) },
        timestamp: now,
      });
    }
    if (t.groups.size === 0) this.trim(t);
    this.countPublished?.(topic, messages.length);
    this.notify();
  }

  async subscribe(topic: string, groupId: string, handler: BatchHandler, options: SubscribeOptions = {}): Promise<Subscription> {
    if (this.closed) throw new FaceflowError('TRANSPORT', 'subscribe on a closed bus', { retriable: false, details: { topic } });
    const t = this.topic(topic);
    if (t.subscribers.has(groupId)) {
      throw new FaceflowError('INVALID_ARGUMENT', `in-process bus: group ${groupId} already has a subscriber on ${topic}`, {
        details: { topic, groupId },
      });
    }
    if (!t.groups.has(groupId)) {
      const start = options.fromBeginning ?? true;
      t.groups.set(groupId, t.partitions.map((log) => (start ? log.base : log.base + log.messages.length)));
    }
    const wrapped = instrumentHandler(
      options.deadLetter === false
        ? handler
        : withDeadLetter(handler, {
            publish: (tp, msgs) => this.publish(tp, msgs),
            groupId,
            logger: this.options.logger,
            ...(this.options.metrics ? { metrics: this.options.metrics } : {}),
            ...options.deadLetter,
          }),
      this.options.metrics,
      groupId,
    );
    const sub = new InProcessSubscription(this, t, groupId, wrapped, options.maxBatchSize ?? DEFAULT_MAX_BATCH, () => {
      t.subscribers.delete(groupId);
      this.subscriptions.delete(sub);
    });
    t.subscribers.set(groupId, sub);
    this.subscriptions.add(sub);
    sub.start();
    return sub;
  }

  async close(options: CloseOptions = {}): Promise<void> {
    this.closed = true;
    await Promise.all([...this.subscriptions].map((s) => s.close(options)));
    this.notify();
  }

  /** @internal */
  committed(): void {
    this.notify();
  }
}

class InProcessSubscription implements Subscription {
  private stopping = false;
  private readonly abort = new AbortController();
  private loops: Promise<void>[] = [];
  private closing: Promise<void> | undefined;

  constructor(
    private readonly bus: InProcessBus,
    private readonly t: TopicState,
    readonly groupId: string,
    private readonly handler: BatchHandler,
    private readonly maxBatch: number,
    private readonly onClosed: () => void,
  ) {}

  get topic(): string {
    return this.t.name;
  }

  start(): void {
    this.loops = this.t.partitions.map((_, p) => this.loop(p));
  }

  private async loop(p: number): Promise<void> {
    const logger = this.bus.options.logger;
    let failures = 0;
    while (!this.stopping) {
      const offsets = this.t.groups.get(this.groupId)!;
      const log = this.t.partitions[p]!;
      const next = Math.max(offsets[p] ?? 0, log.base);
      const end = log.base + log.messages.length;
      if (next >= end) {
        await this.bus.waitForChange(1_000);
        continue;
      }
      const messages = log.messages.slice(next - log.base, next - log.base + this.maxBatch);
      try {
        await this.handler(
          { topic: this.t.name, partition: p, messages },
          { signal: this.abort.signal, heartbeat: async () => undefined, markProcessed: () => undefined },
        );
        failures = 0;
        offsets[p] = next + messages.length; // commit
        this.bus.trim(this.t);
        this.bus.committed();
      } catch (e) {
        if (this.abort.signal.aborted) break;
        failures++;
        logger.error('in-process handler failed; redelivering', { topic: this.t.name, partition: p, group: this.groupId, err: e });
        try {
          await sleep(backoffMs(failures), this.abort.signal);
        } catch {
          break;
        }
      }
    }
  }

  close(options: CloseOptions = {}): Promise<void> {
    this.closing ??= (async () => {
      const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
      this.stopping = true; // phase 1: no new batches
      this.bus.committed(); // wake idle loops
      const all = Promise.all(this.loops);
      let timer: NodeJS.Timeout | undefined;
      const drained = await Promise.race([
        all.then(() => true),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(false), graceMs))),
      ]); // phase 2: drain
      clearTimeout(timer);
      if (!drained) {
        this.abort.abort(new FaceflowError('TIMEOUT', `close grace period of ${graceMs} ms over`)); // phase 3: force
        await Promise.race([all, sleep(1_000)]);
      }
      this.onClosed();
    })();
    return this.closing;
  }
}
