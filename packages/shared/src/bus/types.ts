/**
 * The message bus: the one seam between a stage and its transport. Two implementations: KafkaBus
 * (kafkajs; services) and InProcessBus (`faceflow run`, one process). Same stage code, two transports.
 *
 * Semantics (both implementations):
 * - publish(topic, messages) resolves once the messages are durably accepted (Kafka: acked by all
 *   in-sync replicas). Messages with the same key go to the same partition, in publish order.
 * - subscribe(topic, groupId, handler) delivers batches of one partition, in offset order. Each consumer
 *   group gets every message; within a group a partition goes to one subscriber.
 * - at-least-once: a batch's offsets are committed only after its handler resolved. A handler that throws
 *   is NOT committed: by default the bus wraps handlers in the dead-letter policy (dead-letter.ts), which
 *   retries retriable FaceflowErrors with backoff and moves non-retriable ones to `<topic>.dlq`, so a
 *   handler only "throws through" when the subscription is closing. Handlers must tolerate redelivery.
 * - close() in phases: (1) stop intake: no new batches start, publish() refuses; (2) drain: in-flight
 *   handlers may finish and commit, within `graceMs`; (3) force: the handlers' AbortSignal fires,
 *   uncommitted messages stay for redelivery, connections close.
 */
import type { DeadLetterOptions } from './dead-letter.js';

export type Headers = Record<string, string>;

export interface OutgoingMessage {
  /** Partitioning key (cameraId for frames/faces/matches). null/undefined: any partition. */
  key?: string | null;
  value: Buffer;
  headers?: Headers;
}

export interface ConsumedMessage {
  topic: string;
  partition: number;
  /** Kafka offsets are int64; kept as decimal strings. */
  offset: string;
  key: string | null;
  value: Buffer;
  headers: Headers;
  /** Broker/append time, ms since the epoch. */
  timestamp: number;
}

export interface Batch {
  topic: string;
  partition: number;
  /** In offset order; never empty. */
  messages: ConsumedMessage[];
}

export interface HandlerContext {
  /** Fires when the subscription is being force-closed; long handlers should stop and throw. */
  signal: AbortSignal;
  /** Keeps group membership alive during long handlers (no-op in process). */
  heartbeat(): Promise<void>;
  /** Marks a message as processed; if the batch then fails, the dead-letter policy skips it on the retry. */
  markProcessed(message: ConsumedMessage): void;
}

export type BatchHandler = (batch: Batch, ctx: HandlerContext) => Promise<void>;

export interface SubscribeOptions {
  /** A new group starts at the earliest retained message (default true) or at the end. */
  fromBeginning?: boolean;
  /** Upper bound on the messages of one handler call (default 100). */
  maxBatchSize?: number;
  /**
   * Partitions processed concurrently by this subscriber (default 1). On Kafka each is a lane of its own (a
   * consumer in the group with its own fetch loop), so a slow partition never holds up another's next fetch.
   */
  concurrency?: number;
  /** The dead-letter/retry policy (default: on, with defaults); false hands raw errors to the transport. */
  deadLetter?: false | Partial<DeadLetterOptions>;
}

export interface Subscription {
  readonly topic: string;
  readonly groupId: string;
  /** Closes this subscription only (same phases as Bus.close). */
  close(options?: CloseOptions): Promise<void>;
}

export interface CloseOptions {
  /** How long in-flight handlers may take to finish before being aborted (default 10 000 ms). */
  graceMs?: number;
}

export interface Bus {
  publish(topic: string, messages: OutgoingMessage[]): Promise<void>;
  subscribe(topic: string, groupId: string, handler: BatchHandler, options?: SubscribeOptions): Promise<Subscription>;
  close(options?: CloseOptions): Promise<void>;
}

export const DEFAULT_GRACE_MS = 10_000;
export const DEFAULT_MAX_BATCH = 100;
