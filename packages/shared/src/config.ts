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
import { readFileSync } from 'node:fs';
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
  ownRules: ConfigRule<ConfigOf<S>>[] = [],
): ConfigSpec<S> {
  // the rules of a shared field group (e.g. the Kafka connection's) hold in every spec that spreads the whole
  // group, so that no service can forget them
  const groupRules = FIELD_GROUP_RULES.filter((g) => Object.entries(g.fields).every(([k, f]) => fields[k] === f)).flatMap(
    (g) => g.rules as unknown as ConfigRule<ConfigOf<S>>[],
  );
  const rules = [...groupRules, ...ownRules];
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

/**
 * A secret read from a file at start-up (a password, a private key): it prints, serialises and inspects as
 * the file's name only, so that a logged config or error never shows it (issue 15). `reveal()` hands the
 * value to the one adapter that needs it.
 */
export class Secret {
  readonly #value: string;
  constructor(
    value: string,
    /** where it came from (a file path): safe to log */
    readonly source: string,
  ) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return `[secret from ${this.source}]`;
  }
  toJSON(): string {
    return this.toString();
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

/** A PEM file read at start-up (certificates are not secret). */
export interface PemFile {
  readonly file: string;
  readonly text: string;
}

/** Reads a file named by a config variable; the problem names the file and the errno, never its content. */
function readConfigFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return fail(code === 'ENOENT' ? `${file} does not exist` : code === 'EACCES' ? `${file} is not readable by this user` : code === 'EISDIR' ? `${file} is a directory` : `${file} cannot be read (${code ?? String(e)})`);
  }
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
  /**
   * A PEM file (a CA bundle or a certificate), read at load time: a missing, unreadable or non-PEM file is a
   * config problem at start-up, not a TLS failure later.
   */
  pemFile:
    (what: 'certificate' | 'private key') =>
    (raw: string): PemFile => {
      const text = readConfigFile(raw);
      const re = what === 'certificate' ? /-----BEGIN CERTIFICATE-----/ : /-----BEGIN ([A-Z]+ )?PRIVATE KEY-----/;
      if (!re.test(text)) fail(`${raw} holds no PEM ${what} ("-----BEGIN ${what === 'certificate' ? 'CERTIFICATE' : 'PRIVATE KEY'}-----")`);
      return { file: raw, text };
    },
  /** A private key in a PEM file, kept as a Secret. */
  secretPemFile:
    () =>
    (raw: string): Secret => {
      const { text } = parsers.pemFile('private key')(raw);
      return new Secret(text, raw);
    },
  /** A password in a file of one line (a trailing newline is dropped), kept as a Secret. */
  secretFile:
    () =>
    (raw: string): Secret => {
      const text = readConfigFile(raw).replace(/\r?\n$/, '');
      if (text === '') fail(`${raw} is empty`);
      if (/[\r\n]/.test(text)) fail(`${raw} must hold one line (the password only)`);
      return new Secret(text, raw);
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

export const KAFKA_SECURITY_PROTOCOLS = ['plaintext', 'sasl_ssl', 'ssl'] as const;
export const KAFKA_SASL_MECHANISMS = ['scram-sha-512', 'scram-sha-256', 'plain'] as const;
export type KafkaSecurityProtocol = (typeof KAFKA_SECURITY_PROTOCOLS)[number];
export type KafkaSaslMechanism = (typeof KAFKA_SASL_MECHANISMS)[number];

/**
 * How every process reaches Kafka (issue 15): the brokers, and SASL_SSL (SCRAM) or SSL (mTLS with a client
 * certificate) with the CA that signed the brokers' certificates. Secrets come from files, read at start-up.
 */
export const kafkaConfigFields = {
  kafkaBrokers: field({
    env: 'FACEFLOW_KAFKA_BROKERS',
    default: ['127.0.0.1:19092'],
    parse: parsers.list(parsers.hostPort()),
    doc: 'Kafka bootstrap brokers, comma-separated host:port',
  }),
  kafkaSecurity: field({
    env: 'FACEFLOW_KAFKA_SECURITY',
    default: 'plaintext' as KafkaSecurityProtocol,
    parse: parsers.oneOf(KAFKA_SECURITY_PROTOCOLS),
    doc: 'Kafka security protocol: plaintext|sasl_ssl (TLS + SASL user/password)|ssl (TLS, with FACEFLOW_KAFKA_CERT_FILE/KEY_FILE for mTLS)',
  }),
  kafkaSaslMechanism: field({
    env: 'FACEFLOW_KAFKA_SASL_MECHANISM',
    default: 'scram-sha-512' as KafkaSaslMechanism,
    parse: parsers.oneOf(KAFKA_SASL_MECHANISMS),
    doc: 'SASL mechanism with sasl_ssl: scram-sha-512|scram-sha-256|plain',
  }),
  kafkaSaslUsername: optional({
    env: 'FACEFLOW_KAFKA_SASL_USERNAME',
    parse: parsers.string({ max: 256, pattern: /^[^\s,=]+$/ }),
    doc: 'SASL user name (sasl_ssl)',
  }),
  kafkaSaslPassword: optional({
    env: 'FACEFLOW_KAFKA_SASL_PASSWORD_FILE',
    parse: parsers.secretFile(),
    doc: 'file holding the SASL password (one line; sasl_ssl)',
    secret: true,
  }),
  kafkaCa: optional({
    env: 'FACEFLOW_KAFKA_CA_FILE',
    parse: parsers.pemFile('certificate'),
    doc: 'PEM file of the CA(s) that signed the brokers\' certificates (unset: the system CAs)',
  }),
  kafkaCert: optional({
    env: 'FACEFLOW_KAFKA_CERT_FILE',
    parse: parsers.pemFile('certificate'),
    doc: 'PEM client certificate for mTLS (with FACEFLOW_KAFKA_KEY_FILE)',
  }),
  kafkaKey: optional({
    env: 'FACEFLOW_KAFKA_KEY_FILE',
    parse: parsers.secretPemFile(),
    doc: 'PEM private key of FACEFLOW_KAFKA_CERT_FILE (unencrypted)',
    secret: true,
  }),
};

/** How every process reaches Redis (issue 15): rediss:// for TLS, an ACL user and its password from a file. */
export const redisConfigFields = {
  redisUrl: field({
    env: 'FACEFLOW_REDIS_URL',
    default: 'redis://127.0.0.1:16379',
    parse: parsers.url(['redis:', 'rediss:']),
    doc: 'Redis URL (gallery cache and change notifications); rediss:// for TLS',
  }),
  redisUsername: optional({
    env: 'FACEFLOW_REDIS_USERNAME',
    parse: parsers.string({ max: 256, pattern: /^[^\s]+$/ }),
    doc: 'Redis ACL user (with FACEFLOW_REDIS_PASSWORD_FILE)',
  }),
  redisPassword: optional({
    env: 'FACEFLOW_REDIS_PASSWORD_FILE',
    parse: parsers.secretFile(),
    doc: 'file holding the Redis password (one line) of FACEFLOW_REDIS_USERNAME, or of the default user',
    secret: true,
  }),
  redisCa: optional({
    env: 'FACEFLOW_REDIS_CA_FILE',
    parse: parsers.pemFile('certificate'),
    doc: 'PEM file of the CA that signed Redis\'s certificate (rediss://; unset: the system CAs)',
  }),
  redisCert: optional({
    env: 'FACEFLOW_REDIS_CERT_FILE',
    parse: parsers.pemFile('certificate'),
    doc: 'PEM client certificate for Redis (rediss://, with FACEFLOW_REDIS_KEY_FILE)',
  }),
  redisKey: optional({
    env: 'FACEFLOW_REDIS_KEY_FILE',
    parse: parsers.secretPemFile(),
    doc: 'PEM private key of FACEFLOW_REDIS_CERT_FILE (unencrypted)',
    secret: true,
  }),
};

type KafkaConfig = ConfigOf<typeof kafkaConfigFields>;
type RedisConfig = ConfigOf<typeof redisConfigFields>;

const kafkaRules: ConfigRule<KafkaConfig>[] = [
  {
    envs: ['FACEFLOW_KAFKA_SASL_USERNAME', 'FACEFLOW_KAFKA_SASL_PASSWORD_FILE'],
    check: (c) =>
      c.kafkaSecurity === 'sasl_ssl' && (c.kafkaSaslUsername === undefined || c.kafkaSaslPassword === undefined)
        ? 'FACEFLOW_KAFKA_SECURITY=sasl_ssl needs both FACEFLOW_KAFKA_SASL_USERNAME and FACEFLOW_KAFKA_SASL_PASSWORD_FILE'
        : undefined,
  },
  {
    envs: ['FACEFLOW_KAFKA_SECURITY'],
    check: (c) =>
      c.kafkaSecurity !== 'sasl_ssl' && (c.kafkaSaslUsername !== undefined || c.kafkaSaslPassword !== undefined)
        ? `SASL credentials are set but FACEFLOW_KAFKA_SECURITY is ${c.kafkaSecurity}: set it to sasl_ssl (or unset the SASL variables)`
        : undefined,
  },
  {
    envs: ['FACEFLOW_KAFKA_CERT_FILE', 'FACEFLOW_KAFKA_KEY_FILE'],
    check: (c) => ((c.kafkaCert === undefined) !== (c.kafkaKey === undefined) ? 'a client certificate needs both FACEFLOW_KAFKA_CERT_FILE and FACEFLOW_KAFKA_KEY_FILE' : undefined),
  },
  {
    envs: ['FACEFLOW_KAFKA_SECURITY'],
    check: (c) =>
      c.kafkaSecurity === 'plaintext' && (c.kafkaCa !== undefined || c.kafkaCert !== undefined)
        ? 'TLS files are set but FACEFLOW_KAFKA_SECURITY is plaintext: set it to sasl_ssl or ssl (or unset FACEFLOW_KAFKA_CA_FILE/CERT_FILE/KEY_FILE)'
        : undefined,
  },
];

function urlPassword(url: string): boolean {
  try {
    return new URL(url).password !== '';
  } catch {
    return false;
  }
}

const redisRules: ConfigRule<RedisConfig>[] = [
  {
    envs: ['FACEFLOW_REDIS_URL', 'FACEFLOW_REDIS_CA_FILE'],
    check: (c) =>
      !c.redisUrl.startsWith('rediss:') && (c.redisCa !== undefined || c.redisCert !== undefined || c.redisKey !== undefined)
        ? 'TLS files are set but FACEFLOW_REDIS_URL is redis://: use rediss:// (or unset FACEFLOW_REDIS_CA_FILE/CERT_FILE/KEY_FILE)'
        : undefined,
  },
  {
    envs: ['FACEFLOW_REDIS_CERT_FILE', 'FACEFLOW_REDIS_KEY_FILE'],
    check: (c) => ((c.redisCert === undefined) !== (c.redisKey === undefined) ? 'a client certificate needs both FACEFLOW_REDIS_CERT_FILE and FACEFLOW_REDIS_KEY_FILE' : undefined),
  },
  {
    envs: ['FACEFLOW_REDIS_USERNAME', 'FACEFLOW_REDIS_PASSWORD_FILE'],
    check: (c) => (c.redisUsername !== undefined && c.redisPassword === undefined ? 'FACEFLOW_REDIS_USERNAME needs FACEFLOW_REDIS_PASSWORD_FILE' : undefined),
  },
  {
    envs: ['FACEFLOW_REDIS_URL', 'FACEFLOW_REDIS_PASSWORD_FILE'],
    check: (c) =>
      c.redisPassword !== undefined && urlPassword(c.redisUrl) ? 'the password is given twice: drop it from FACEFLOW_REDIS_URL and keep FACEFLOW_REDIS_PASSWORD_FILE' : undefined,
  },
];

const FIELD_GROUP_RULES: { fields: Record<string, ConfigField<unknown>>; rules: ConfigRule<never>[] }[] = [
  { fields: kafkaConfigFields, rules: kafkaRules as ConfigRule<never>[] },
  { fields: redisConfigFields, rules: redisRules as ConfigRule<never>[] },
];

/** What KafkaBus needs to reach the brokers: spread into its options (`new KafkaBus({ ...kafkaConnectionOf(config), ... })`). */
export interface KafkaConnection {
  brokers: string[];
  security?: KafkaSecurity;
}

export interface KafkaSecurity {
  protocol: 'sasl_ssl' | 'ssl';
  sasl?: { mechanism: KafkaSaslMechanism; username: string; password: Secret };
  /** PEM CA bundle; undefined: the system CAs */
  ca?: PemFile;
  cert?: PemFile;
  key?: Secret;
}

export function kafkaConnectionOf(c: KafkaConfig): KafkaConnection {
  const brokers = [...c.kafkaBrokers];
  if (c.kafkaSecurity === 'plaintext') return { brokers };
  const security: KafkaSecurity = {
    protocol: c.kafkaSecurity,
    ...(c.kafkaSecurity === 'sasl_ssl' ? { sasl: { mechanism: c.kafkaSaslMechanism, username: c.kafkaSaslUsername!, password: c.kafkaSaslPassword! } } : {}),
    ...(c.kafkaCa ? { ca: c.kafkaCa } : {}),
    ...(c.kafkaCert ? { cert: c.kafkaCert } : {}),
    ...(c.kafkaKey ? { key: c.kafkaKey } : {}),
  };
  return { brokers, security };
}

/** What RedisGalleryStore needs to reach Redis: spread into its options. */
export interface RedisConnection {
  url: string;
  security?: RedisSecurity;
}

export interface RedisSecurity {
  username?: string;
  password?: Secret;
  /** TLS files (a rediss:// URL): CA (undefined: the system CAs), client certificate and key */
  ca?: PemFile;
  cert?: PemFile;
  key?: Secret;
}

export function redisConnectionOf(c: RedisConfig): RedisConnection {
  const security: RedisSecurity = {
    ...(c.redisUsername ? { username: c.redisUsername } : {}),
    ...(c.redisPassword ? { password: c.redisPassword } : {}),
    ...(c.redisCa ? { ca: c.redisCa } : {}),
    ...(c.redisCert ? { cert: c.redisCert } : {}),
    ...(c.redisKey ? { key: c.redisKey } : {}),
  };
  return Object.keys(security).length ? { url: c.redisUrl, security } : { url: c.redisUrl };
}

/** Fields every process shares; spread them into a service's own spec. */
export const baseConfigFields = {
  ...kafkaConfigFields,
  ...redisConfigFields,
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
