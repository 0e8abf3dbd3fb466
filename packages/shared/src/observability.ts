/**
 * The interfaces of logging and metrics that the root of @faceflow/shared (bus, outbox, gallery stores, ...)
 * takes, and nothing more: the root imports no third-party code (issue 13 step 5, DESIGN.md "Its root has no
 * third-party imports"). The implementations are behind `@faceflow/shared/ops`: `createLogger` (logger.ts),
 * `createMetrics` over prom-client (metrics.ts), the HTTP ops server and the health monitor.
 */

export const LOG_LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity } as const;
export type LogLevel = keyof typeof LOG_LEVELS;
export type LogFields = Record<string, unknown>;

export interface Logger {
  readonly level: LogLevel;
  isLevelEnabled(level: LogLevel): boolean;
  trace(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  fatal(msg: string, fields?: LogFields): void;
  child(bindings: LogFields): Logger;
}

const nothing = (): void => undefined;

/** A logger that writes nothing (the default of the adapters when none is given). */
export const silentLogger: Logger = {
  level: 'silent',
  isLevelEnabled: () => false,
  trace: nothing,
  debug: nothing,
  info: nothing,
  warn: nothing,
  error: nothing,
  fatal: nothing,
  child: () => silentLogger,
};

export type Labels<L extends string> = Partial<Record<L, string | number>>;

export interface Counter<L extends string = string> {
  inc(labels?: Labels<L>, value?: number): void;
}

export interface Gauge<L extends string = string> {
  set(labels: Labels<L>, value: number): void;
  inc(labels?: Labels<L>, value?: number): void;
  dec(labels?: Labels<L>, value?: number): void;
}

export interface Histogram<L extends string = string> {
  observe(labels: Labels<L>, value: number): void;
  /** Starts a timer; calling the returned function observes the elapsed seconds (and returns them). */
  startTimer(labels?: Labels<L>): (moreLabels?: Labels<L>) => number;
}

export interface MetricSpec<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
}

export interface Metrics {
  counter<L extends string = never>(spec: MetricSpec<L>): Counter<L>;
  /**
   * `read`: the gauge's value is read from it at every scrape (a label-less gauge that mirrors some state, so
   * that it cannot lag the state, as the gallery gauges did behind a refresh timer: issue 12).
   */
  gauge<L extends string = never>(spec: MetricSpec<L> & { read?: () => number }): Gauge<L>;
  histogram<L extends string = never>(spec: MetricSpec<L> & { buckets?: number[] }): Histogram<L>;
  /** The Prometheus text exposition of every metric of this registry. */
  metricsText(): Promise<string>;
  /** The Content-Type header to serve `metricsText()` with. */
  readonly contentType: string;
  /** Resets every value to zero (tests). */
  reset(): void;
}
