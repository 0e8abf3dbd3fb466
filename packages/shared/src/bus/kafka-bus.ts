/**
 * KafkaBus: the Bus over Apache Kafka, with kafkajs (the only file that imports it). See types.ts for the
 * contract. Specifics:
 * - producer: acks=all, one request in flight per broker (per-key order survives retries), Java-compatible
 *   murmur2 partitioner (a key lands on the same partition as with the Java client).
 * - a subscription is one kafkajs consumer in its group (the classic group protocol). kafkajs batches
 *   (one partition's fetch) are cut into handler batches of `maxBatchSize`; after each, its last offset
 *   is resolved and committed (at-least-once; a crash redelivers at most that batch).
 * - close(): pause fetching, let in-flight handlers finish for `graceMs`, then abort them, and disconnect
 *   (which commits what was resolved and leaves the group, so the partitions move at once).
 * - errors: a failed publish is FaceflowError('TRANSPORT'), retriable unless Kafka said it cannot succeed
 *   (e.g. a message too large, an unknown topic after retries is retriable).
 * - admin helpers (createTopics, deleteTopics, deleteGroups, endOffsets) for bootstrap scripts and tests.
 * - security (issue 15): SASL_SSL (SCRAM/PLAIN) or SSL (mTLS) from `security` (config.ts kafkaConnectionOf).
 *   Refused credentials, an untrusted certificate, a refused client certificate and a client whose protocol
 *   is not the listener's (plaintext against TLS, or the reverse) are FaceflowError('TRANSPORT_SECURITY'),
 *   not retriable: the same settings fail the same way, so a service stops at start-up with one line that
 *   names the variable to fix instead of retrying (transport-security.ts).
 */
import kafkajs from 'kafkajs';
import type { Admin, Consumer, EachBatchPayload, IHeaders, KafkaMessage, LogEntry, Producer } from 'kafkajs';
import type { KafkaSecurity } from '../config.js';
import { FaceflowError } from '../errors.js';
import { silentLogger, type Logger } from '../observability.js';
import type { Metrics } from '../observability.js';
import { diagnoseTransport, securityError } from '../transport-security.js';
import { withDeadLetter } from './dead-letter.js';
import { instrumentHandler, publishCounter } from './instrument.js';
import { backoffMs, sleep, type BackoffOptions } from './retry.js';
import {
  DEFAULT_GRACE_MS,
  DEFAULT_MAX_BATCH,
  type BatchHandler,
  type Bus,
  type CloseOptions,
  type ConsumedMessage,
  type Headers,
  type OutgoingMessage,
  type SubscribeOptions,
  type Subscription,
} from './types.js';

const { Kafka, Partitioners, logLevel } = kafkajs;

export interface KafkaBusOptions {
  brokers: string[];
  /** SASL_SSL or SSL (config.ts `kafkaConnectionOf`); absent: plaintext. */
  security?: KafkaSecurity;
  clientId?: string;
  logger?: Logger;
  metrics?: Metrics;
  /** Connection timeout in ms (default 3000). */
  connectionTimeoutMs?: number;
  /** Retries of kafkajs for producer/admin requests (default 5, exponential from 300 ms). */
  retries?: number;
  /** Consumer group session timeout (default 15 000 ms; the broker's minimum is 6 000). */
  sessionTimeoutMs?: number;
  /** Heartbeat interval (default 1 000 ms). */
  heartbeatIntervalMs?: number;
  /** How long a fetch waits for data (default 100 ms: low latency). */
  maxWaitTimeMs?: number;
  /** How long subscribe() waits to join its group (default 60 000 ms). */
  joinTimeoutMs?: number;
}

export interface TopicSpec {
  topic: string;
  partitions?: number;
  /** Topic-level configs, e.g. {'retention.ms': '3600000'}. */
  config?: Record<string, string>;
}

function headerValue(v: IHeaders[string]): string | undefined {
  if (v === undefined) return undefined;
  const first = Array.isArray(v) ? v[0] : v;
  return first === undefined ? undefined : Buffer.isBuffer(first) ? first.toString('utf8') : String(first);
}

function toConsumed(topic: string, partition: number, m: KafkaMessage): ConsumedMessage {
  const headers: Headers = {};
  for (const [k, v] of Object.entries(m.headers ?? {})) {
    const s = headerValue(v);
    if (s !== undefined) headers[k] = s;
  }
  return {
    topic,
    partition,
    offset: m.offset,
    key: m.key ? m.key.toString('utf8') : null,
    value: m.value ?? Buffer.alloc(0),
    headers,
    timestamp: Number(m.timestamp),
  };
}

interface KafkaLikeError {
  name?: string;
  retriable?: boolean;
  originalError?: KafkaLikeError;
  type?: string;
}

/** kafkajs's client options for a security setting: TLS (with our CA, client certificate) and SASL. */
function kafkaSecurityOptions(s: KafkaSecurity | undefined): { ssl?: kafkajs.KafkaConfig['ssl']; sasl?: kafkajs.SASLOptions } {
  if (!s) return {};
  const ssl = {
    rejectUnauthorized: true,
    ...(s.ca ? { ca: [s.ca.text] } : {}),
    ...(s.cert ? { cert: s.cert.text } : {}),
    ...(s.key ? { key: s.key.reveal() } : {}),
  };
  if (!s.sasl) return { ssl };
  // the mechanism is one of the three kafkajs knows (config.ts KAFKA_SASL_MECHANISMS)
  const sasl = { mechanism: s.sasl.mechanism, username: s.sasl.username, password: s.sasl.password.reveal() } as kafkajs.SASLOptions;
  return { ssl, sasl };
}

/**
 * kafkajs error -> FaceflowError('TRANSPORT'); non-retriable only when Kafka's protocol error says so. A
 * failure of the connection's security (credentials, certificates) is 'TRANSPORT_SECURITY' (not retriable).
 */
export function kafkaError(e: unknown, what: string, details: Record<string, unknown> = {}, security?: KafkaSecurity, brokers?: string[]): FaceflowError {
  if (e instanceof FaceflowError) return e;
  const sec = securityError(e, { system: 'kafka', where: `Kafka at ${(brokers ?? []).join(',') || '?'}`, security, what });
  if (sec) return sec;
  const k = (e ?? {}) as KafkaLikeError;
  const protocol = k.name === 'KafkaJSProtocolError' ? k : k.originalError?.name === 'KafkaJSProtocolError' ? k.originalError : undefined;
  const retriable = protocol ? protocol.retriable !== false : true;
  const message = e instanceof Error ? e.message : String(e);
  return new FaceflowError('TRANSPORT', `${what}: ${message}`, {
    cause: e,
    retriable,
    details: { ...details, ...(protocol?.type ? { kafkaError: protocol.type } : {}) },
  });
}

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(onTimeout()), ms);
    }),
  ]);
}

/** Attempts at a retriable admin or subscribe step that the broker is expected to heal within seconds. */
const START_ATTEMPTS = 8;
/** Between start-up attempts (subscribe, createTopics): 200 ms doubling to 2 s, jittered so that services
 * starting together do not retry in lockstep. */
const START_BACKOFF: BackoffOptions = { initialMs: 200, maxMs: 2_000, factor: 2, jitter: 0.2 };

export class KafkaBus implements Bus {
  private readonly kafka: InstanceType<typeof Kafka>;
  private readonly logger: Logger;
  private readonly metrics: Metrics | undefined;
  private readonly countPublished: ((topic: string, n: number) => void) | undefined;
  private producer: Promise<Producer> | undefined;
  private admin: Promise<Admin> | undefined;
  private probe: Admin | undefined;
  private probeConnected = false;
  private preflight: Promise<void> | undefined;
  private readonly subscriptions = new Set<KafkaSubscription>();
  private closed = false;

  constructor(private readonly options: KafkaBusOptions) {
    if (!options.brokers.length) throw new FaceflowError('INVALID_CONFIG', 'KafkaBus: no brokers given', { details: { env: 'FACEFLOW_KAFKA_BROKERS' } });
    this.logger = options.logger ?? silentLogger;
    this.metrics = options.metrics;
    this.countPublished = publishCounter(options.metrics);
    const log = this.logger.child({ component: 'kafkajs' });
    this.kafka = new Kafka({
      clientId: options.clientId ?? 'faceflow',
      brokers: options.brokers,
      ...kafkaSecurityOptions(options.security),
      connectionTimeout: options.connectionTimeoutMs ?? 3_000,
      retry: { retries: options.retries ?? 5, initialRetryTime: 300 },
      logLevel: log.isLevelEnabled('debug') ? logLevel.DEBUG : log.isLevelEnabled('info') ? logLevel.INFO : logLevel.WARN,
      logCreator:
        () =>
        ({ namespace, level, log: entry }: LogEntry) => {
          const { message, timestamp: _ts, logger: _l, ...rest } = entry as LogEntry['log'] & { logger?: unknown };
          const text = `kafkajs ${namespace}: ${message}`;
          // kafkajs logs every failed request at ERROR, also those it retries (e.g. "coordinator not
          // available" while a group starts); what really fails reaches the caller as an error
          // kafkajs logs each consumer crash ("Crash: ...", "Restarting the consumer in ...") at ERROR before
          // it knows whether it restarts; the CRASH event handler (KafkaSubscription.start) says which it was,
          // so a crash that heals itself, e.g. a just-created topic's metadata lagging on a healthy start, is
          // no error line (issue 12)
          const crash = namespace === 'Consumer' && /^(Crash: |Restarting the consumer)/.test(message);
          // a refused SASL login reaches the caller as one TRANSPORT_SECURITY error (issue 15): kafkajs's own
          // lines about it would say the same thing three times
          if (/^SaslAuthenticator|^BrokerPool$|^Connection$/.test(namespace) && /SASL|SaslAuthenticate/.test(message)) {
            log.debug(text, rest);
            return;
          }
          if (level === logLevel.ERROR && namespace !== 'Connection' && !crash) log.error(text, rest);
          else if (level === logLevel.ERROR) log.warn(text, rest);
          else if (level === logLevel.WARN) log.warn(text, rest);
          else if (level === logLevel.INFO) log.info(text, rest);
          else log.debug(text, rest);
        },
    });
  }

  /**
   * Before the first connection: one request on the probe client (no retries), so that a security failure
   * (refused login, untrusted certificate, plaintext against TLS) is one TRANSPORT_SECURITY error at once,
   * not kafkajs's retries of a connection that cannot succeed (issue 15). Any other failure (a broker still
   * starting) is left to the usual connect and its retries.
   */
  private checkSecurity(): Promise<void> {
    this.preflight ??= (async () => {
      try {
        await this.ping();
      } catch (e) {
        const cause = e instanceof FaceflowError && e.code !== 'TRANSPORT_SECURITY' ? e.cause : e;
        const err = await this.connectError(cause, 'connect');
        if (err.code === 'TRANSPORT_SECURITY') throw err;
      }
    })();
    return this.preflight;
  }

  private getProducer(): Promise<Producer> {
    this.producer ??= (async () => {
      await this.checkSecurity().catch((e: unknown) => {
        this.producer = undefined;
        throw e;
      });
      const p = this.kafka.producer({
        createPartitioner: Partitioners.DefaultPartitioner,
        allowAutoTopicCreation: false,
        maxInFlightRequests: 1,
        idempotent: false,
      });
      try {
        await p.connect();
      } catch (e) {
        this.producer = undefined;
        throw await this.connectError(e, 'producer connect');
      }
      return p;
    })();
    return this.producer;
  }

  private getAdmin(): Promise<Admin> {
    this.admin ??= (async () => {
      await this.checkSecurity().catch((e: unknown) => {
        this.admin = undefined;
        throw e;
      });
      const a = this.kafka.admin();
      try {
        await a.connect();
      } catch (e) {
        this.admin = undefined;
        throw await this.connectError(e, 'admin connect');
      }
      return a;
    })();
    return this.admin;
  }

  /**
   * A failed connect, as a FaceflowError: a security failure when kafkajs's error shows one, else, for a
   * connection that broke without saying why, the TLS check of transport-security.ts (a plaintext client at
   * a TLS listener sees only a closed connection).
   */
  private async connectError(e: unknown, what: string, details: Record<string, unknown> = { brokers: this.options.brokers }): Promise<FaceflowError> {
    const err = kafkaError(e, what, details, this.options.security, this.options.brokers);
    if (err.code !== 'TRANSPORT') return err;
    return (await diagnoseTransport(e, { system: 'kafka', where: `Kafka at ${this.options.brokers.join(',')}`, addresses: this.options.brokers, tls: this.options.security !== undefined, what })) ?? err;
  }

  async publish(topic: string, messages: OutgoingMessage[]): Promise<void> {
    if (this.closed) throw new FaceflowError('TRANSPORT', 'publish on a closed bus', { retriable: false, details: { topic } });
    if (messages.length === 0) return;
    const producer = await this.getProducer();
    try {
      await producer.send({
        topic,
        acks: -1,
        messages: messages.map((m) => ({ key: m.key ?? null, value: m.value, ...(m.headers ? { headers: m.headers } : {}) })),
      });
    } catch (e) {
      throw kafkaError(e, `publish to ${topic}`, { topic, messages: messages.length });
    }
    this.countPublished?.(topic, messages.length);
  }

  async subscribe(topic: string, groupId: string, handler: BatchHandler, options: SubscribeOptions = {}): Promise<Subscription> {
    if (this.closed) throw new FaceflowError('TRANSPORT', 'subscribe on a closed bus', { retriable: false, details: { topic } });
    const wrapped = instrumentHandler(
      options.deadLetter === false
        ? handler
        : withDeadLetter(handler, {
            publish: (t, msgs) => this.publish(t, msgs),
            groupId,
            logger: this.logger,
            ...(this.metrics ? { metrics: this.metrics } : {}),
            ...options.deadLetter,
          }),
      this.metrics,
      groupId,
    );
    await this.checkSecurity();
    // kafkajs runs one fetch loop per consumer and fetches again only when every partition batch of the
    // last fetch was handled (consumer/fetcher.js: "waits for workerQueue to drain and repeats"), so with
    // partitionsConsumedConcurrently one slow partition (a camera's full detection) held up every other
    // camera's next frames: the embedder's latency tail (issue 11, BENCHMARKS.md). Concurrency is therefore
    // lanes: that many consumers in the group, each with its own fetch loop over the partitions assigned to it.
    const lanes = options.concurrency ?? 1;
    if (!(Number.isInteger(lanes) && lanes >= 1 && lanes <= MAX_LANES)) {
      throw new FaceflowError('INVALID_CONFIG', `subscribe concurrency must be an integer in [1, ${MAX_LANES}], got ${lanes}`, { retriable: false });
    }
    if (lanes === 1) return this.subscribeLane(topic, groupId, wrapped, options);
    const settled = await Promise.allSettled(Array.from({ length: lanes }, () => this.subscribeLane(topic, groupId, wrapped, options)));
    const started = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await Promise.allSettled(started.map((s) => s.close({ graceMs: 0 })));
      throw failed.reason;
    }
    return new LanedSubscription(topic, groupId, started);
  }

  private async subscribeLane(topic: string, groupId: string, wrapped: BatchHandler, options: SubscribeOptions): Promise<KafkaSubscription> {
    // a topic another service created a moment ago may not be in the broker's metadata yet ("This server
    // does not host this topic-partition", retriable): on a healthy start of several services at once that
    // failed the subscribe, and the service with it; a retriable failure is tried again with backoff (issue 12)
    for (let attempt = 1; ; attempt++) {
      const consumer = this.kafka.consumer({
        groupId,
        sessionTimeout: this.options.sessionTimeoutMs ?? 15_000,
        rebalanceTimeout: 30_000,
        heartbeatInterval: this.options.heartbeatIntervalMs ?? 1_000,
        maxWaitTimeInMs: this.options.maxWaitTimeMs ?? 100,
        allowAutoTopicCreation: false,
      });
      const sub = new KafkaSubscription(topic, groupId, consumer, wrapped, options.maxBatchSize ?? DEFAULT_MAX_BATCH, this.logger, () =>
        this.subscriptions.delete(sub),
      );
      this.subscriptions.add(sub);
      try {
        await sub.start({ ...options, concurrency: 1 }, this.options.joinTimeoutMs ?? 60_000);
        return sub;
      } catch (e) {
        this.subscriptions.delete(sub);
        await consumer.disconnect().catch(() => undefined);
        const err = await this.connectError(e, `subscribe to ${topic} as ${groupId}`, { topic, groupId });
        if (!err.retriable || err.code === 'TIMEOUT' || this.closed || attempt >= START_ATTEMPTS) throw err;
        this.logger.warn('kafka subscribe failed; retrying', { topic, group: groupId, attempt, err: err.message });
        await sleep(backoffMs(attempt, START_BACKOFF));
      }
    }
  }

  /**
   * Whether the cluster answers now (readiness, health.ts): one metadata request on a client of its own with
   * no retries, so that an outage is seen in one connection timeout, not after the producer's retries.
   */
  async ping(): Promise<void> {
    if (this.closed) throw new FaceflowError('TRANSPORT', 'ping on a closed bus', { retriable: false });
    this.probe ??= new Kafka({
      clientId: `${this.options.clientId ?? 'faceflow'}-probe`,
      brokers: this.options.brokers,
      ...kafkaSecurityOptions(this.options.security),
      connectionTimeout: Math.min(this.options.connectionTimeoutMs ?? 3_000, 2_000),
      requestTimeout: 2_000,
      retry: { retries: 0 },
      logLevel: logLevel.NOTHING,
    }).admin();
    try {
      if (!this.probeConnected) {
        await this.probe.connect();
        this.probeConnected = true;
      }
      await this.probe.describeCluster();
    } catch (e) {
      // a fresh connection next time: kafkajs's admin does not always recover a broken one by itself
      this.probeConnected = false;
      const p = this.probe;
      this.probe = undefined;
      await p.disconnect().catch(() => undefined);
      throw kafkaError(e, 'broker check', { brokers: this.options.brokers }, this.options.security, this.options.brokers);
    }
  }

  async close(options: CloseOptions = {}): Promise<void> {
    this.closed = true;
    await this.probe?.disconnect().catch(() => undefined);
    this.probe = undefined;
    await Promise.all([...this.subscriptions].map((s) => s.close(options)));
    const producer = this.producer;
    const admin = this.admin;
    this.producer = undefined;
    this.admin = undefined;
    await Promise.all([
      producer?.then((p) => p.disconnect()).catch(() => undefined),
      admin?.then((a) => a.disconnect()).catch(() => undefined),
    ]);
  }

  // ------------------------------------------------------------------------------------------ admin
  /**
   * Creates the topics that do not exist yet (replication factor: the broker's default), and waits for
   * their leaders. Right after a broker starts, the metadata that waitForLeaders reads can lag the creation
   * ("This server does not host this topic-partition", a retriable error; seen in CI on a fresh broker):
   * retriable errors are retried with backoff, as the error type says, and creating again is harmless.
   */
  async createTopics(topics: TopicSpec[]): Promise<void> {
    const admin = await this.getAdmin();
    const attempts = START_ATTEMPTS;
    for (let attempt = 1; ; attempt++) {
      try {
        // kafkajs skips waitForLeaders when any topic of the request already exists (it answers false),
        // also for the topics it did create: their leaders are waited for here, whoever created them
        await admin.createTopics({
          waitForLeaders: true,
          topics: topics.map((t) => ({
            topic: t.topic,
            numPartitions: t.partitions ?? 1,
            ...(t.config ? { configEntries: Object.entries(t.config).map(([name, value]) => ({ name, value })) } : {}),
          })),
        });
        const { topics: meta } = await admin.fetchTopicMetadata({ topics: topics.map((t) => t.topic) });
        const leaderless = meta.filter((m) => m.partitions.length === 0 || m.partitions.some((p) => p.leader < 0)).map((m) => m.name);
        if (leaderless.length) throw new FaceflowError('TRANSPORT', `create topics: no leader yet for ${leaderless.join(', ')}`, { retriable: true });
        return;
      } catch (e) {
        const err = kafkaError(e, 'create topics', { topics: topics.map((t) => t.topic) });
        if (!err.retriable || attempt >= attempts) throw err;
        await sleep(backoffMs(attempt, START_BACKOFF));
      }
    }
  }

  async deleteTopics(topics: string[]): Promise<void> {
    if (!topics.length) return;
    const admin = await this.getAdmin();
    const existing = new Set(await admin.listTopics());
    const names = topics.filter((t) => existing.has(t));
    if (!names.length) return;
    try {
      await admin.deleteTopics({ topics: names });
    } catch (e) {
      throw kafkaError(e, 'delete topics', { topics: names });
    }
  }

  async listTopics(): Promise<string[]> {
    const admin = await this.getAdmin();
    return admin.listTopics().catch((e: unknown) => Promise.reject(kafkaError(e, 'list topics')));
  }

  async deleteGroups(groupIds: string[]): Promise<void> {
    if (!groupIds.length) return;
    const admin = await this.getAdmin();
    try {
      await admin.deleteGroups(groupIds);
    } catch (e) {
      // a group that never committed may not exist; that is fine
      const err = e as { groups?: { errorCode?: number; error?: { type?: string } }[] };
      const real = (err.groups ?? []).filter((g) => g.error && g.error.type !== 'GROUP_ID_NOT_FOUND');
      if (!err.groups || real.length) throw kafkaError(e, 'delete groups', { groupIds });
    }
  }

  /** The committed offset of a group per partition of a topic ("-1": none). */
  async committedOffsets(groupId: string, topic: string): Promise<{ partition: number; offset: string }[]> {
    const admin = await this.getAdmin();
    try {
      const res = await admin.fetchOffsets({ groupId, topics: [topic] });
      return (res[0]?.partitions ?? []).map((p) => ({ partition: p.partition, offset: p.offset }));
    } catch (e) {
      throw kafkaError(e, 'fetch offsets', { groupId, topic });
    }
  }

  /** The next offset (high watermark) per partition of a topic. */
  async endOffsets(topic: string): Promise<{ partition: number; offset: string }[]> {
    const admin = await this.getAdmin();
    try {
      return (await admin.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, offset: p.high }));
    } catch (e) {
      throw kafkaError(e, 'fetch topic offsets', { topic });
    }
  }
}

/** Consecutive crashes (no group join in between) from which a restarting consumer's crash is an error. */
const CRASHES_BEFORE_ERROR = 3;

/** Consumers one subscription may run in its group (a lane each). */
const MAX_LANES = 64;

/** One subscription of several lanes (consumers in one group): closed together, every lane even if one throws. */
class LanedSubscription implements Subscription {
  constructor(
    readonly topic: string,
    readonly groupId: string,
    private readonly lanes: KafkaSubscription[],
  ) {}

  async close(options: CloseOptions = {}): Promise<void> {
    const results = await Promise.allSettled(this.lanes.map((l) => l.close(options)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}

class KafkaSubscription implements Subscription {
  private stopping = false;
  private inFlight = 0;
  private readonly idle = new Set<() => void>();
  private readonly abort = new AbortController();
  private closing: Promise<void> | undefined;

  constructor(
    readonly topic: string,
    readonly groupId: string,
    private readonly consumer: Consumer,
    private readonly handler: BatchHandler,
    private readonly maxBatch: number,
    private readonly logger: Logger,
    private readonly onClosed: () => void,
  ) {}

  async start(options: SubscribeOptions, joinTimeoutMs: number): Promise<void> {
    let joined!: () => void;
    const joinedP = new Promise<void>((r) => (joined = r));
    const offJoin = this.consumer.on(this.consumer.events.GROUP_JOIN, () => joined());
    // crashes since the consumer last joined its group: kafkajs restarts a consumer after a retriable crash,
    // which is a warning while it heals; one that does not restart, or keeps crashing, is an error
    let crashes = 0;
    this.consumer.on(this.consumer.events.GROUP_JOIN, () => (crashes = 0));
    this.consumer.on(this.consumer.events.CRASH, (ev) => {
      crashes++;
      const fields = { topic: this.topic, group: this.groupId, restart: ev.payload.restart, crashes, err: ev.payload.error };
      if (ev.payload.restart && crashes < CRASHES_BEFORE_ERROR) this.logger.warn('kafka consumer crashed; restarting', fields);
      else this.logger.error('kafka consumer crashed', fields);
    });
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [this.topic], fromBeginning: options.fromBeginning ?? true });
    await this.consumer.run({
      autoCommit: true,
      autoCommitThreshold: 1,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: options.concurrency ?? 1,
      eachBatch: (payload) => this.onBatch(payload),
    });
    try {
      await withTimeout(joinedP, joinTimeoutMs, () => new FaceflowError('TIMEOUT', `no group join within ${joinTimeoutMs} ms`));
    } finally {
      offJoin();
    }
  }

  private async onBatch(payload: EachBatchPayload): Promise<void> {
    if (this.stopping) return;
    this.inFlight++;
    const { batch } = payload;
    try {
      const all = batch.messages.map((m) => toConsumed(batch.topic, batch.partition, m));
      for (let i = 0; i < all.length; i += this.maxBatch) {
        if (this.stopping || !payload.isRunning() || payload.isStale()) break;
        const messages = all.slice(i, i + this.maxBatch);
        try {
          await this.handler(
            { topic: batch.topic, partition: batch.partition, messages },
            { signal: this.abort.signal, heartbeat: () => payload.heartbeat(), markProcessed: () => undefined },
          );
        } catch (e) {
          if (this.abort.signal.aborted) return; // closing: leave it uncommitted, to be redelivered
          throw e;
        }
        payload.resolveOffset(messages[messages.length - 1]!.offset);
        await payload.commitOffsetsIfNecessary();
        await payload.heartbeat();
      }
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) for (const f of [...this.idle]) f();
    }
  }

  private drained(ms: number): Promise<boolean> {
    if (this.inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.idle.delete(onIdle);
        resolve(ok);
      };
      const onIdle = (): void => done(true);
      const timer = setTimeout(() => done(false), ms);
      this.idle.add(onIdle);
    });
  }

  close(options: CloseOptions = {}): Promise<void> {
    this.closing ??= (async () => {
      const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
      this.stopping = true; // phase 1: stop intake
      try {
        this.consumer.pause([{ topic: this.topic }]);
      } catch {
        // not running (yet): nothing to pause
      }
      const ok = await this.drained(graceMs); // phase 2: drain
      if (!ok) {
        this.logger.warn('close: handlers still running after the grace period; aborting them', {
          topic: this.topic,
          group: this.groupId,
          graceMs,
        });
        this.abort.abort(new FaceflowError('TIMEOUT', `close grace period of ${graceMs} ms over`)); // phase 3: force
      }
      try {
        await withTimeout(this.consumer.disconnect(), 10_000, () => new FaceflowError('TIMEOUT', 'consumer disconnect timed out'));
      } catch (e) {
        this.logger.warn('kafka consumer did not disconnect cleanly', { topic: this.topic, group: this.groupId, err: e });
      }
      this.onClosed();
    })();
    return this.closing;
  }
}
