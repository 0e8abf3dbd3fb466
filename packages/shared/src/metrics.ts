/**
 * Metrics: a thin adapter over prom-client (the only file that imports it). One Registry per process
 * (`processMetrics()`), or a private one (`createMetrics()`, for tests and embedding). Every metric name
 * gets the `faceflow_` prefix; asking twice for the same name returns the same metric (so that several
 * bus subscriptions can share a counter), asking for it with a different type or labels is an error.
 */
import client from 'prom-client';
import { FaceflowError } from './errors.js';
import type { Counter, Gauge, Histogram, Labels, Metrics, MetricSpec } from './observability.js';

export type { Counter, Gauge, Histogram, Labels, Metrics, MetricSpec } from './observability.js';

export const METRIC_PREFIX = 'faceflow_';
/** Latency buckets in seconds, 1 ms .. 30 s. */
export const DEFAULT_SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

export interface CreateMetricsOptions {
  /** Labels added to every metric (e.g. {service: 'embedder'}). */
  defaultLabels?: Record<string, string>;
  /** Also collect Node's process metrics (CPU, memory, event loop lag), prefixed faceflow_. */
  collectDefault?: boolean;
}

export function createMetrics(options: CreateMetricsOptions = {}): Metrics {
  const registry = new client.Registry();
  if (options.defaultLabels) registry.setDefaultLabels(options.defaultLabels);
  if (options.collectDefault) {
    client.collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
    // prom-client names three gauges *_total, which `promtool check metrics` rejects (only counters may end
    // in _total); the same numbers are in nodejs_active_{handles,requests,resources} (per type)
    for (const n of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(METRIC_PREFIX + n);
  }

  const fullName = (name: string): string => {
    const n = name.startsWith(METRIC_PREFIX) ? name : METRIC_PREFIX + name;
    if (!NAME.test(n)) throw new FaceflowError('INVALID_ARGUMENT', `"${n}" is not a legal metric name`, { details: { name: n } });
    return n;
  };

  function existing<T>(name: string, type: string, labelNames: readonly string[]): T | undefined {
    const m = registry.getSingleMetric(name) as (client.Metric<string> & { labelNames?: string[] }) | undefined;
    if (!m) return undefined;
    const sameType = (m as unknown as { type?: string }).type === type || m.constructor.name.toLowerCase() === type;
    const got = [...(m.labelNames ?? [])].sort().join(',');
    if (!sameType || got !== [...labelNames].sort().join(',')) {
      throw new FaceflowError('INVALID_ARGUMENT', `metric ${name} already exists with another type or other labels`, {
        details: { name, labels: got },
      });
    }
    return m as unknown as T;
  }

  return {
    counter<L extends string = never>(spec: MetricSpec<L>): Counter<L> {
      const name = fullName(spec.name);
      const labelNames = spec.labelNames ?? [];
      const c =
        existing<client.Counter<string>>(name, 'counter', labelNames) ??
        new client.Counter({ name, help: spec.help, labelNames: [...labelNames], registers: [registry] });
      return { inc: (labels, value) => (labels ? c.inc(labels as client.LabelValues<string>, value ?? 1) : c.inc(value ?? 1)) };
    },
    gauge<L extends string = never>(spec: MetricSpec<L> & { read?: () => number }): Gauge<L> {
      const name = fullName(spec.name);
      const labelNames = spec.labelNames ?? [];
      const read = spec.read;
      const g =
        existing<client.Gauge<string>>(name, 'gauge', labelNames) ??
        new client.Gauge({
          name,
          help: spec.help,
          labelNames: [...labelNames],
          registers: [registry],
          ...(read
            ? {
                collect(this: client.Gauge<string>) {
                  this.set(read());
                },
              }
            : {}),
        });
      return {
        set: (labels, value) => g.set(labels as client.LabelValues<string>, value),
        inc: (labels, value) => (labels ? g.inc(labels as client.LabelValues<string>, value ?? 1) : g.inc(value ?? 1)),
        dec: (labels, value) => (labels ? g.dec(labels as client.LabelValues<string>, value ?? 1) : g.dec(value ?? 1)),
      };
    },
    histogram<L extends string = never>(spec: MetricSpec<L> & { buckets?: number[] }): Histogram<L> {
      const name = fullName(spec.name);
      const labelNames = spec.labelNames ?? [];
      const h =
        existing<client.Histogram<string>>(name, 'histogram', labelNames) ??
        new client.Histogram({
          name,
          help: spec.help,
          labelNames: [...labelNames],
          buckets: spec.buckets ?? DEFAULT_SECONDS_BUCKETS,
          registers: [registry],
        });
      return {
        observe: (labels, value) => h.observe(labels as client.LabelValues<string>, value),
        startTimer: (labels) => {
          const end = h.startTimer(labels as client.LabelValues<string> | undefined);
          return (more) => end(more as client.LabelValues<string> | undefined);
        },
      };
    },
    metricsText: () => registry.metrics(),
    contentType: registry.contentType,
    reset: () => registry.resetMetrics(),
  };
}

let processRegistry: Metrics | undefined;

/** The process-wide metrics registry (created on first use, with Node's default process metrics). */
export function processMetrics(): Metrics {
  processRegistry ??= createMetrics({ collectDefault: true });
  return processRegistry;
}

/** The text exposition of the process-wide registry (what GET /metrics serves). */
export function metricsText(): Promise<string> {
  return processMetrics().metricsText();
}
