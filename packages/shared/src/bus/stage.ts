/**
 * A pipeline stage and its transport, kept apart (DESIGN.md: "each service is a stage"): a stage is a
 * function from the messages of one partition, in order, to output messages; `attachStage` wraps it with a
 * Bus (Kafka in the services, in-process in `faceflow run`). Same stage code, two transports.
 *
 * The contract a stage keeps:
 * - it validates what enters (decode with the schema) and reports a message it cannot process, for good
 *   (bad input, non-retriable FaceflowError), in `failures`: the transport dead-letters it with headers and
 *   the partition moves on;
 * - it throws for what may succeed later (a retriable FaceflowError: the backend is busy, a store is down):
 *   the transport re-runs the batch's unprocessed messages with backoff;
 * - outputs are published, in order, before the input is marked processed (at-least-once); `commit` runs
 *   after a successful publish, so a stage can make state changes that must not happen twice (e.g. a dedup
 *   set) only once their outputs are out.
 */
import { FaceflowError } from '../errors.js';
import type { BatchHandler, Bus, ConsumedMessage, HandlerContext, OutgoingMessage, SubscribeOptions, Subscription } from './types.js';

export interface StageOutput {
  topic: string;
  messages: OutgoingMessage[];
}

export interface StageFailure {
  message: ConsumedMessage;
  error: FaceflowError;
}

export interface StageResult {
  outputs: StageOutput[];
  failures?: StageFailure[];
  /** Runs once the outputs were published. */
  commit?: () => void;
}

export interface Stage {
  readonly name: string;
  process(messages: ConsumedMessage[], ctx: HandlerContext): Promise<StageResult>;
}

/** Groups outputs by topic keeping the order of first appearance, so each topic gets one publish call. */
export function mergeOutputs(outputs: StageOutput[]): StageOutput[] {
  const by = new Map<string, OutgoingMessage[]>();
  for (const o of outputs) {
    if (o.messages.length === 0) continue;
    const list = by.get(o.topic) ?? [];
    list.push(...o.messages);
    by.set(o.topic, list);
  }
  return [...by].map(([topic, messages]) => ({ topic, messages }));
}

/** The batch handler that runs a stage over a bus (see the contract above). */
export function stageHandler(stage: Stage, publish: (topic: string, messages: OutgoingMessage[]) => Promise<void>): BatchHandler {
  return async (batch, ctx) => {
    const result = await stage.process(batch.messages, ctx);
    for (const out of mergeOutputs(result.outputs)) await publish(out.topic, out.messages);
    result.commit?.();
    const failed = new Set((result.failures ?? []).map((f) => f.message.offset));
    for (const m of batch.messages) if (!failed.has(m.offset)) ctx.markProcessed(m);
    const first = result.failures?.[0];
    // the dead-letter policy re-runs the unprocessed (failed) messages one at a time and dead-letters each
    if (first) throw first.error.retriable ? new FaceflowError(first.error.code, first.error.message, { cause: first.error, retriable: false, details: first.error.details }) : first.error;
  };
}

/** Subscribes a stage to its input topic on a bus. */
export function attachStage(bus: Bus, stage: Stage, topic: string, groupId: string, options: SubscribeOptions = {}): Promise<Subscription> {
  return bus.subscribe(topic, groupId, stageHandler(stage, (t, msgs) => bus.publish(t, msgs)), options);
}

/**
 * Whether a stage sees a message it reports as failed for the first time, so that it counts the message once:
 * the dead-letter policy re-runs the failed messages of a batch one at a time to find the culprits, so the
 * same message comes through process() a second time (issue 12: 15 counted against 8 dead letters). Keyed by
 * topic, partition and offset; remembers the last `max` of them.
 */
export class FirstFailures {
  private readonly seen = new Set<string>();

  constructor(private readonly max = 10_000) {}

  first(m: Pick<ConsumedMessage, 'topic' | 'partition' | 'offset'>): boolean {
    const k = `${m.topic}\u0000${m.partition}\u0000${m.offset}`;
    if (this.seen.has(k)) return false;
    this.seen.add(k);
    if (this.seen.size > this.max) this.seen.delete(this.seen.values().next().value!);
    return true;
  }
}

/**
 * A stage as a service's `createStage(config, deps)` returns it (issue 13 step 4): the stage, the topic and
 * group it consumes, and the work it does besides its input, so that either transport runs it the same way:
 * a service's main.ts over Kafka, `faceflow run` over the in-process bus (`@faceflow/shared/pipeline`).
 */
export interface StageBinding<S extends Stage = Stage> {
  stage: S;
  input: string;
  groupId: string;
  subscribe?: SubscribeOptions;
  /**
   * Outputs made on a timer rather than by an input (alerts: the exits of tracks whose camera went silent).
   * They are applied at once and published through an outbox: held and retried until out, never dropped.
   */
  sweep?: { everyMs: number; run: () => StageOutput[]; pendingMetric: string; what: string };
  /** Once the input is drained (end of the source, shutdown): the outputs that end the stage's state (alerts: every open track's exit). */
  flush?: () => StageOutput[];
  /** Resolves when the stage's side work is done (alerts: crop deletions). */
  settled?: () => Promise<void>;
}

/** Subscribes a binding's stage to its input topic on a bus. */
export function attachBinding(bus: Bus, binding: StageBinding): Promise<Subscription> {
  return attachStage(bus, binding.stage, binding.input, binding.groupId, binding.subscribe);
}
