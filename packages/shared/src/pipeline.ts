/**
 * `@faceflow/shared/pipeline`: stages run in one process over the in-process bus (`faceflow run`), with the
 * shutdown of the house (issue 13 step 4): explicit states, two phases, every closer run.
 *
 *   running   the intake (a source) feeds the first stage; the stages consume and publish
 *   stopping  stop() was called (Ctrl-C): the intake is stopped, no new message enters
 *   draining  the intake has ended (or was stopped): what was taken goes through every stage, within
 *             `graceMs` after a stop (at the end of a source, however long it takes); then each stage's
 *             flush() (alerts: the exits of the open tracks), published and drained in turn
 *   stopped   close(): every closer ran, each even if another threw (closeAll)
 *
 * A second stop() forces: the drain gives up at once. The composition (which stages, which source) is the
 * caller's; a stage comes as a service's `createStage` returns it (StageBinding), so the stage code and its
 * subscription settings are the ones the service runs over Kafka.
 */
import { attachBinding, type StageBinding } from './bus/stage.js';
import { Outbox } from './bus/outbox.js';
import type { BatchHandler, Bus } from './bus/types.js';
import { closeAll, type Closer } from './close-all.js';
import { silentLogger, type Logger, type Metrics } from './observability.js';

export type PipelineState = 'running' | 'stopping' | 'draining' | 'stopped';

/** A bus whose backlog can be watched (InProcessBus): the drain waits for it to empty. */
export interface DrainableBus extends Bus {
  retained(topic: string): readonly unknown[];
  waitForChange(ms: number): Promise<void>;
}

/** What feeds the pipeline: `run` resolves at the end of the source; `stop` ends it early (stop intake). */
export interface Intake<R> {
  run(): Promise<R>;
  stop(): void;
}

export interface PipelineOptions<R> {
  bus: DrainableBus;
  /** In the order of the flow: each is subscribed to its input, and flushed in this order. */
  stages: readonly StageBinding[];
  /** Consumers of the pipeline's output (`faceflow run`: the printer of identity events), drained last. */
  sinks?: readonly { topic: string; groupId: string; handler: BatchHandler }[];
  intake: Intake<R>;
  /** After stop(): how long the messages already taken get to drain before the pipeline gives up on them. */
  graceMs: number;
  /** SIGINT/SIGTERM call stop() (the first stops intake, the second forces) until close(). */
  signals?: boolean;
  /** Called on every change of state (the CLI says "stopping intake, draining" on stopping). */
  onState?: (state: PipelineState) => void;
  logger?: Logger;
  metrics?: Metrics;
}

export interface PipelineResult<R> {
  /** What the intake's run() resolved to; undefined when the pipeline was forced before it ended. */
  intake: R | undefined;
  /** Whether everything taken went through every stage (false: the grace period ran out, or forced). */
  drained: boolean;
  /** Whether stop() ended the intake (rather than the end of the source). */
  stopped: boolean;
}

export class Pipeline<R> {
  private current: PipelineState = 'running';
  private stoppedAt: number | undefined;
  private forced = false;
  private force!: () => void;
  private readonly forcing = new Promise<void>((r) => (this.force = r));
  private readonly sweepers: NodeJS.Timeout[] = [];
  private readonly outboxes = new Map<StageBinding, Outbox>();
  private onSignal: (() => void) | undefined;

  private constructor(private readonly o: PipelineOptions<R>) {}

  /** Subscribes every stage and sink, starts the stages' sweeps; the intake starts with run(). */
  static async start<R>(options: PipelineOptions<R>): Promise<Pipeline<R>> {
    const p = new Pipeline(options);
    try {
      await p.attach();
    } catch (e) {
      await p.close({ graceMs: 0 }).catch(() => undefined);
      throw e;
    }
    return p;
  }

  get state(): PipelineState {
    return this.current;
  }

  private set(state: PipelineState): void {
    if (this.current === state) return;
    this.current = state;
    this.o.onState?.(state);
  }

  private async attach(): Promise<void> {
    const { bus } = this.o;
    const logger = this.o.logger ?? silentLogger;
    for (const b of this.o.stages) {
      await attachBinding(bus, b);
      if (b.sweep) {
        const sweep = b.sweep;
        const outbox = new Outbox({ publish: (t, m) => bus.publish(t, m), pendingMetric: sweep.pendingMetric, what: sweep.what, logger, ...(this.o.metrics ? { metrics: this.o.metrics } : {}) });
        this.outboxes.set(b, outbox);
        this.sweepers.push(setInterval(() => outbox.add(sweep.run()), sweep.everyMs));
      }
    }
    for (const s of this.o.sinks ?? []) await bus.subscribe(s.topic, s.groupId, s.handler);
    if (this.o.signals) {
      this.onSignal = () => this.stop();
      process.on('SIGINT', this.onSignal);
      process.on('SIGTERM', this.onSignal);
    }
  }

  /** Phase one: stop intake (the frames taken still drain). Called again: force, the drain gives up at once. */
  stop(): void {
    if (this.current === 'stopped') return;
    if (this.stoppedAt === undefined) {
      this.stoppedAt = Date.now();
      if (this.current === 'running') this.set('stopping');
      this.o.intake.stop();
      return;
    }
    this.forced = true;
    this.force();
  }

  /** Runs the intake to its end (or stop()), then drains and flushes every stage; close() follows. */
  async run(): Promise<PipelineResult<R>> {
    const intake = await Promise.race([this.o.intake.run(), this.forcing.then(() => undefined)]);
    this.set('draining');
    const inputs = this.o.stages.map((b) => b.input);
    let drained = await this.drain(inputs);
    for (const t of this.sweepers) clearInterval(t);
    // the stages' state ends in flow order (alerts: every open track's exit), published through the outboxes
    for (const b of this.o.stages) {
      if (!b.flush) continue;
      const out = b.flush();
      const outbox = this.outboxes.get(b);
      if (outbox) outbox.add(out);
      else for (const o of out) await this.o.bus.publish(o.topic, o.messages);
    }
    const grace = this.forced ? 0 : this.o.graceMs;
    for (const ob of this.outboxes.values()) await ob.close(grace);
    drained = (await this.drain([...inputs, ...(this.o.sinks ?? []).map((s) => s.topic)])) && drained;
    for (const b of this.o.stages) await b.settled?.();
    return { intake, drained, stopped: this.stoppedAt !== undefined };
  }

  /**
   * Waits until no message is left on `topics`: however long it takes at the end of a source; within the grace
   * period after stop(); not at all once forced.
   */
  private async drain(topics: readonly string[]): Promise<boolean> {
    const { bus } = this.o;
    while (topics.some((t) => bus.retained(t).length > 0)) {
      if (this.forced || (this.stoppedAt !== undefined && Date.now() > this.stoppedAt + this.o.graceMs)) return false;
      await Promise.race([bus.waitForChange(200), this.forcing]);
    }
    return true;
  }

  /**
   * Phase two: closes the sweeps, the outboxes, the signal handlers, the intake and the bus (its subscriptions
   * get `graceMs` to finish the batch in hand), each even if another throws; then `more`, the caller's
   * resources (engine pool, gallery, ...). The first failure is thrown, the others go to `onError`.
   */
  async close(options: { graceMs?: number; more?: readonly Closer[]; onError?: (name: string, e: unknown) => void } = {}): Promise<void> {
    const handler = this.onSignal;
    this.onSignal = undefined;
    try {
      await closeAll(
        [
          ['timers', () => this.sweepers.forEach((t) => clearInterval(t))],
          ...[...this.outboxes.values()].map((ob): Closer => ['outbox', () => ob.close(0)]),
          handler && ['signal handlers', () => (process.off('SIGINT', handler), process.off('SIGTERM', handler))],
          ['intake', () => this.o.intake.stop()],
          ['bus', () => this.o.bus.close({ graceMs: options.graceMs ?? 2000 })],
          ...(options.more ?? []),
        ],
        options.onError,
      );
    } finally {
      this.force();
      this.set('stopped');
    }
  }
}
