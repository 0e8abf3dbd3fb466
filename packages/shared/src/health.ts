/**
 * Readiness of what a service depends on (issue 12: every /readyz stayed ready while Kafka was down). A
 * HealthMonitor checks each dependency (the broker, Redis) on a timer, each check bounded by `timeoutMs`, and
 * keeps the last answer, so that /readyz answers at once from it and a request path can refuse work without
 * waiting (ingest's push API). A change is logged once (warn when it goes down, info when it is back) and the
 * state is exported as faceflow_dependency_up{dependency}.
 *
 * Readiness only: liveness (/livez) never looks at dependencies, so that an outage restarts nothing.
 */
import { toFaceflowError } from './errors.js';
import { silentLogger, type Logger } from './logger.js';
import type { Gauge, Metrics } from './metrics.js';

export interface Dependency {
  name: string;
  /** Resolves when the dependency answers; throws (or outlives the timeout) when it does not. */
  check: () => Promise<unknown>;
}

export interface DependencyState {
  up: boolean;
  /** ms since the epoch of the last change. */
  since: number;
  error?: string;
}

export interface HealthMonitorOptions {
  dependencies: Dependency[];
  /** Between checks (default 2000 ms). */
  intervalMs?: number;
  /** One check's bound (default 2000 ms). */
  timeoutMs?: number;
  logger?: Logger;
  metrics?: Metrics;
}

export class HealthMonitor {
  private readonly states = new Map<string, DependencyState>();
  private readonly checked = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private readonly logger: Logger;
  private readonly gauge: Gauge<'dependency'> | undefined;

  constructor(private readonly o: HealthMonitorOptions) {
    this.logger = o.logger ?? silentLogger;
    this.gauge = o.metrics?.gauge({ name: 'dependency_up', help: 'Whether a dependency (broker, Redis) answered its last check (1) or not (0)', labelNames: ['dependency'] as const });
    // unknown until the first check: not up
    for (const d of o.dependencies) this.states.set(d.name, { up: false, since: Date.now(), error: 'not checked yet' });
  }

  /** Runs a first check (awaited), then checks on a timer. */
  async start(): Promise<void> {
    await this.checkNow();
    this.timer ??= setInterval(() => void this.checkNow(), this.o.intervalMs ?? 2000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Checks every dependency once (concurrent calls share one round). */
  checkNow(): Promise<void> {
    this.checking ??= Promise.all(this.o.dependencies.map((d) => this.checkOne(d))).then(
      () => undefined,
      () => undefined,
    ).finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async checkOne(d: Dependency): Promise<void> {
    const ms = this.o.timeoutMs ?? 2000;
    let timer: NodeJS.Timeout | undefined;
    let error: string | undefined;
    try {
      await Promise.race([d.check(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)))]);
    } catch (e) {
      error = toFaceflowError(e).message;
    } finally {
      clearTimeout(timer);
    }
    const before = this.states.get(d.name)!;
    const up = error === undefined;
    const first = !this.checked.has(d.name);
    if (up !== before.up) this.states.set(d.name, { up, since: Date.now(), ...(error !== undefined ? { error } : {}) });
    else if (!up) before.error = error;
    // a change is logged once; the first answer of a dependency that is up is no news
    if (!up && (first || before.up)) this.logger.warn('dependency is down: not ready', { dependency: d.name, error });
    else if (up && !before.up && !first) this.logger.info('dependency is back', { dependency: d.name, downMs: Date.now() - before.since });
    this.checked.add(d.name);
    this.gauge?.set({ dependency: d.name }, up ? 1 : 0);
  }

  /** Whether every dependency answered its last check. */
  get ok(): boolean {
    for (const s of this.states.values()) if (!s.up) return false;
    return true;
  }

  isUp(name: string): boolean {
    return this.states.get(name)?.up ?? false;
  }

  /** Per-dependency state, for the /readyz body. */
  report(): Record<string, DependencyState> {
    return Object.fromEntries([...this.states].map(([k, v]) => [k, { ...v }]));
  }
}
