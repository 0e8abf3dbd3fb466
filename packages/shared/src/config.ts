/**
 * Typed configuration from environment variables. A service declares its fields once (env var, default,
 * parser, doc string), plus cross-field rules, and calls `load()` at start-up: every field is parsed and
 * checked at once, and all problems are reported together in one FaceflowError('INVALID_CONFIG') whose
 * message names each bad env var. The result is a frozen, typed object; nothing reads process.env later.
 *
 * An empty variable counts as unset (compose files often write `FOO=`). A field without a default is
 * required unless declared with `optional()`. Values of `secret` fields never appear in errors or docs.
 *
 *     const spec = defineConfig({
 *       port: field({ env: 'PORT', default: 8080, parse: parsers.int({ min: 1, max: 65535 }), doc: 'HTTP port' }),
 *       ...baseConfigFields,
 *     }, [{ envs: ['A', 'B'], check: (c) => (c.a < c.b ? undefined : 'A must be below B') }]);
 *     const config = spec.load();
 */
import { FaceflowError } from './errors.js';
import { checkTopicName } from './topics.js';

export interface ConfigField<T> {
  /** The environment variable. */
  env: string;
  /** One line for `describe()`; say the unit. */
  doc: string;
  /** Turns the raw string into a value; throws (any Error; its message is used) when it is not valid. */
  parse: (raw: string) => T;
  /** The value when the variable is unset; absent means required (unless `optional`). */
  default?: T;
  optional?: boolean;
  secret?: boolean;
}

export function field<T>(f: ConfigField<T>): ConfigField<T> {
  return f;
}

/** A field that may stay unset: its value is then undefined. */
export function optional<T>(f: Omit<ConfigField<T>, 'default' | 'optional'>): ConfigField<T | undefined> {
  return { ...f, optional: true };
}

export type ConfigOf<S> = { readonly [K in keyof S]: S[K] extends ConfigField<infer T> ? T : never };

export interface ConfigRule<C> {
  /** The variables the rule is about (named in the error). */
  envs: string[];
  /** Returns a problem description, or undefined when the rule holds. */
  check: (config: C) => string | undefined;
}

export interface ConfigProblem {
  env: string;
  problem: string;
}

export interface ConfigSpec<S extends Record<string, ConfigField<unknown>>> {
  readonly fields: S;
  load(env?: Record<string, string | undefined>): ConfigOf<S>;
  /** A human-readable table of the variables, defaults and docs. */
  describe(): string;
}

export function defineConfig<S extends Record<string, ConfigField<unknown>>>(
  fields: S,
  rules: ConfigRule<ConfigOf<S>>[] = [],
): ConfigSpec<S> {
  const seen = new Set<string>();
  for (const f of Object.values(fields)) {
    if (seen.has(f.env)) throw new FaceflowError('INVALID_ARGUMENT', `config: ${f.env} is declared twice`, { details: { env: f.env } });
    seen.add(f.env);
  }
  return {
    fields,
    load(env: Record<string, string | undefined> = process.env): ConfigOf<S> {
      const out: Record<string, unknown> = {};
      const problems: ConfigProblem[] = [];
      for (const [key, f] of Object.entries(fields)) {
        const raw = env[f.env];
        if (raw === undefined || raw === '') {
          if (f.default !== undefined) out[key] = f.default;
          else if (f.optional) out[key] = undefined;
          else problems.push({ env: f.env, problem: 'is required' });
          continue;
        }
        try {
          out[key] = f.parse(raw);
        } catch (e) {
          const shown = f.secret ? '' : ` (got ${JSON.stringify(raw.length > 80 ? `${raw.slice(0, 80)}...` : raw)})`;
          problems.push({ env: f.env, problem: `${e instanceof Error ? e.message : String(e)}${shown}` });
        }
      }
      if (problems.length === 0) {
        for (const rule of rules) {
          const problem = rule.check(out as ConfigOf<S>);
          if (problem !== undefined) problems.push({ env: rule.envs.join(', '), problem });
        }
      }
      if (problems.length > 0) {
        throw new FaceflowError('INVALID_CONFIG', `invalid configuration: ${problems.map((p) => `${p.env}: ${p.problem}`).join('; ')}`, {
          details: { env: problems[0]!.env, problems },
        });
      }
      return Object.freeze(out) as ConfigOf<S>;
    },
    describe(): string {
      return Object.values(fields)
        .map((f) => {
          const def =
            f.default !== undefined ? (f.secret ? 'has a default' : `default ${JSON.stringify(f.default)}`) : f.optional ? 'optional' : 'required';
          return `${f.env} [${def}${f.secret ? ', secret' : ''}]: ${f.doc}`;
        })
        .join('\n');
    },
  };
}

// ------------------------------------------------------------------------------------------- parsers
function fail(message: string): never {
  throw new Error(message);
}

export const parsers = {
  string:
    (opts: { pattern?: RegExp; max?: number } = {}) =>
    (raw: string): string => {
      if (opts.max !== undefined && raw.length > opts.max) fail(`must have at most ${opts.max} characters`);
      if (opts.pattern && !opts.pattern.test(raw)) fail(`must match ${opts.pattern}`);
      return raw;
    },
  int:
    (opts: { min?: number; max?: number } = {}) =>
    (raw: string): number => {
      if (!/^[+-]?\d+$/.test(raw.trim())) fail('must be an integer');
      const n = Number(raw);
      if (!Number.isSafeInteger(n)) fail('must be a safe integer');
      if (opts.min !== undefined && n < opts.min) fail(`must be >= ${opts.min}`);
      if (opts.max !== undefined && n > opts.max) fail(`must be <= ${opts.max}`);
      return n;
    },
  number:
    (opts: { min?: number; max?: number } = {}) =>
    (raw: string): number => {
      const n = raw.trim() === '' ? NaN : Number(raw);
      if (!Number.isFinite(n)) fail('must be a number');
      if (opts.min !== undefined && n < opts.min) fail(`must be >= ${opts.min}`);
      if (opts.max !== undefined && n > opts.max) fail(`must be <= ${opts.max}`);
      return n;
    },
  boolean:
    () =>
    (raw: string): boolean => {
      const v = raw.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(v)) return true;
      if (['0', 'false', 'no', 'off'].includes(v)) return false;
      return fail('must be a boolean (true/false, 1/0, yes/no, on/off)');
    },
  oneOf:
    <T extends string>(values: readonly T[]) =>
    (raw: string): T =>
      (values as readonly string[]).includes(raw) ? (raw as T) : fail(`must be one of ${values.join('|')}`),
  /** Comma-separated; empty items are dropped; each item goes through `item`. */
  list:
    <T = string>(item: (raw: string) => T = (s) => s as unknown as T, opts: { min?: number } = {}) =>
    (raw: string): T[] => {
      const parts = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
      if (parts.length < (opts.min ?? 1)) fail(`must list at least ${opts.min ?? 1} item(s)`);
      return parts.map((p, i) => {
        try {
          return item(p);
        } catch (e) {
          return fail(`item ${i + 1} ${e instanceof Error ? e.message : String(e)}`);
        }
      });
    },
  /** host:port, port 1..65535. */
  hostPort:
    () =>
    (raw: string): string => {
      const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(raw.trim());
      if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) fail('must be host:port');
      return raw.trim();
    },
  url:
    (protocols: string[] = []) =>
    (raw: string): string => {
      let u: URL;
      try {
        u = new URL(raw);
      } catch {
        return fail('must be a URL');
      }
      if (protocols.length && !protocols.includes(u.protocol)) fail(`must be a ${protocols.join(' or ')} URL`);
      return raw;
    },
  /** A duration in ms: "250", "250ms", "5s", "2m", "1h". */
  durationMs:
    (opts: { min?: number; max?: number } = {}) =>
    (raw: string): number => {
      const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(raw.trim());
      if (!m) fail('must be a duration like 500ms, 5s, 2m, 1h');
      const n = Number(m![1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m![2] ?? 'ms') as 'ms' | 's' | 'm' | 'h'];
      if (opts.min !== undefined && n < opts.min) fail(`must be >= ${opts.min}ms`);
      if (opts.max !== undefined && n > opts.max) fail(`must be <= ${opts.max}ms`);
      return Math.round(n);
    },
};

export const LOG_LEVEL_NAMES = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** Fields every process shares; spread them into a service's own spec. */
export const baseConfigFields = {
  kafkaBrokers: field({
    env: 'FACEFLOW_KAFKA_BROKERS',
    default: ['127.0.0.1:19092'],
    parse: parsers.list(parsers.hostPort()),
    doc: 'Kafka bootstrap brokers, comma-separated host:port',
  }),
  redisUrl: field({
    env: 'FACEFLOW_REDIS_URL',
    default: 'redis://127.0.0.1:16379',
    parse: parsers.url(['redis:', 'rediss:']),
    doc: 'Redis URL (gallery cache and change notifications)',
  }),
  topicPrefix: field({
    env: 'FACEFLOW_TOPIC_PREFIX',
    default: '',
    parse: (raw: string) => {
      checkTopicName(raw.replace(/\.$/, ''));
      return raw;
    },
    doc: 'prefix of every topic name ("site1" -> "site1.frames")',
  }),
  logLevel: field({
    env: 'FACEFLOW_LOG_LEVEL',
    default: 'info' as (typeof LOG_LEVEL_NAMES)[number],
    parse: parsers.oneOf(LOG_LEVEL_NAMES),
    doc: 'log level: trace|debug|info|warn|error|fatal|silent',
  }),
};

/**
 * When a track has left, read by the matcher (the track ends) and alerts (its exit event): one field, so that
 * the two cannot disagree on it, in the services or in `faceflow run`.
 */
export const trackConfigFields = {
  trackTimeoutMs: field({ env: 'FACEFLOW_TRACK_TIMEOUT', default: 2000, parse: parsers.durationMs({ min: 100, max: 600_000 }), doc: 'a track unseen for this long (capture time) has left' }),
};

/**
 * Privacy redaction of the pictures the pipeline keeps or points at (face crops, event thumbnails) is on for
 * every camera unless the camera is listed here: an operator must opt a camera out (a staff-only door with
 * consent, say), never in. Read by the embedder (crops) and alerts (thumbnails); see docs/identity-events.md.
 */
export const redactionConfigFields = {
  redactExemptCameras: field({
    env: 'FACEFLOW_REDACT_EXEMPT_CAMERAS',
    default: [] as string[],
    parse: parsers.list(parsers.string({ max: 256, pattern: /^(\*|[\w.:@/-]+)$/ }), { min: 0 }),
    doc: 'cameras whose pictures are not redacted, comma-separated, * for all (default none: unknown faces are hidden on every camera)',
  }),
};

/** Whether `cameraId` is exempt from redaction under a FACEFLOW_REDACT_EXEMPT_CAMERAS list. */
export function redactionExempt(exemptCameras: readonly string[], cameraId: string): boolean {
  return exemptCameras.includes('*') || exemptCameras.includes(cameraId);
}
