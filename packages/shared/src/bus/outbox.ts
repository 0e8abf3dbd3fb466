/**
 * An outbox: what a stage emits outside a batch handler (a timer's output, e.g. the alerts sweeper's exit
 * events) is held here until it is published. A batch handler's outputs need none: a failed publish fails
 * the batch, and the dead-letter policy re-runs it. A timer has no batch to re-run, so a publish that failed
 * on a retriable error used to be logged and dropped (issue 12: the exits of tracks that timed out during a
 * Kafka outage were lost). Here it is retried with backoff (retry.ts) until it is out:
 *
 * - entries go out one at a time, in the order they were added (per-key order is kept);
 * - a retriable error keeps the entry at the head and retries it after backoffMs(attempt); a non-retriable
 *   one (it cannot succeed: a message too large) drops that entry, counted and logged at error level;
 * - `pending` (and the gauge `pendingMetric`, when metrics are given) counts the messages not yet out;
 * - close(graceMs): stops taking entries, waits up to graceMs for the rest, then logs what is left.
 */
import { toFaceflowError } from '../errors.js';
import { silentLogger, type Logger } from '../observability.js';
import type { Counter, Gauge, Metrics } from '../observability.js';
import { backoffMs, DEFAULT_BACKOFF, type BackoffOptions } from './retry.js';
import type { StageOutput } from './stage.js';
import type { OutgoingMessage } from './types.js';

export interface OutboxOptions {
  publish: (topic: string, messages: OutgoingMessage[]) => Promise<void>;
  /** Name of the gauge of pending messages, without the faceflow_ prefix (e.g. alerts_pending_events). */
  pendingMetric?: string;
  /** What is pending, for the gauge's help text and the logs (e.g. "identity events"). */
  what?: string;
  /** Default OUTBOX_BACKOFF. */
  backoff?: BackoffOptions;
  logger?: Logger;
  metrics?: Metrics;
}

/**
 * Retries capped at a few seconds (not the 30 s of DEFAULT_BACKOFF): what is held is delayed by at most that
 * much once the broker is back.
 */
export const OUTBOX_BACKOFF: BackoffOptions = { ...DEFAULT_BACKOFF, initialMs: 200, maxMs: 5000 };

export class Outbox {
  private readonly queue: StageOutput[] = [];
  private count = 0;
  private running: Promise<void> | undefined;
  private closed = false;
  private wake: (() => void) | undefined;
  private readonly logger: Logger;
  private readonly what: string;
  private readonly gauge: Gauge<never> | undefined;
  private readonly dropped: Counter<never> | undefined;

  constructor(private readonly o: OutboxOptions) {
    this.logger = o.logger ?? silentLogger;
    this.what = o.what ?? 'messages';
    const name = o.pendingMetric ?? 'outbox_pending_messages';
    const What = this.what.charAt(0).toUpperCase() + this.what.slice(1);
    this.gauge = o.metrics?.gauge({ name, help: `${What} emitted and not yet published (held and retried while the bus is unavailable)` });
    this.dropped = o.metrics?.counter({ name: name.replace(/_pending_\w+$/, '') + '_unpublishable_total', help: `${What} dropped because publishing them failed with a non-retriable error` });
    this.gauge?.set({}, 0);
  }

  /** Messages not yet published. */
  get pending(): number {
    return this.count;
  }

  /** Queues outputs for publishing (in order). After close() they are refused with an error log. */
  add(outputs: readonly StageOutput[]): void {
    const list = outputs.filter((x) => x.messages.length > 0);
    if (list.length === 0) return;
    if (this.closed) {
      const n = list.reduce((a, x) => a + x.messages.length, 0);
      this.logger.error(`${this.what} emitted after the outbox closed: not published`, { messages: n });
      return;
    }
    for (const x of list) {
      this.queue.push(x);
      this.count += x.messages.length;
    }
    this.gauge?.set({}, this.count);
    this.running ??= this.drain().finally(() => (this.running = undefined));
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      for (let attempt = 1; ; attempt++) {
        try {
          await this.o.publish(head.topic, head.messages);
          break;
        } catch (e) {
          const err = toFaceflowError(e, 'TRANSPORT');
          if (!err.retriable) {
            this.dropped?.inc({}, head.messages.length);
            this.logger.error(`${this.what} not published: the error is not retriable`, { topic: head.topic, messages: head.messages.length, err });
            break;
          }
          const delay = backoffMs(attempt, this.o.backoff ?? OUTBOX_BACKOFF);
          this.logger.warn(`${this.what} not published yet; held and retried`, { topic: head.topic, pending: this.count, attempt, delayMs: delay, code: err.code, error: err.message });
          await new Promise<void>((r) => {
            const t = setTimeout(r, delay);
            // close() cuts a wait short (one last try); it never abandons the head entry
            this.wake = () => {
              clearTimeout(t);
              r();
            };
          });
          this.wake = undefined;
        }
      }
      this.queue.shift();
      this.count -= head.messages.length;
      this.gauge?.set({}, this.count);
    }
  }

  /** Resolves once nothing is pending (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Stops taking entries; waits up to `graceMs` for the pending ones, then logs how many were not published. */
  async close(graceMs: number): Promise<void> {
    this.closed = true;
    if (!this.running) return;
    this.wake?.();
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([this.idle().then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), graceMs)))]);
    clearTimeout(timer);
    if (!done) this.logger.error(`shutdown: ${this.what} still not published after the grace period; they are lost`, { messages: this.count, graceMs });
  }
}
