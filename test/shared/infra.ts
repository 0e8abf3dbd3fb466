/**
 * Shared helpers of the integration tests that run against the real Kafka and Redis of scripts/infra.sh
 * (`bash scripts/infra.sh up`; `npm test` does it). Addresses come from FACEFLOW_KAFKA_BROKERS and
 * FACEFLOW_REDIS_URL (defaults: the infra.sh ports), and their security from the other FACEFLOW_KAFKA_* /
 * FACEFLOW_REDIS_* variables (issue 15: `FACEFLOW_INFRA_SECURE=1 npm test` runs the suite over SASL_SSL
 * and TLS+ACL): tests connect with `...kafka` and `...redis`. When a service is unreachable the suite fails
 * when CI is set, and is skipped (with a message saying how to start it) otherwise.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll } from 'vitest';
import { defineConfig, kafkaConfigFields, kafkaConnectionOf, redisConfigFields, redisConnectionOf } from '@faceflow/shared';
import { KafkaBus } from '@faceflow/shared/kafka';
import { RedisGalleryStore } from '@faceflow/shared/redis';

export const config = defineConfig({ ...kafkaConfigFields, ...redisConfigFields }).load();
/** How tests reach Kafka: `new KafkaBus({ ...kafka, clientId })`. */
export const kafka = kafkaConnectionOf(config);
/** How tests reach Redis: `RedisGalleryStore.open({ ...redis, keyPrefix })`. */
export const redis = redisConnectionOf(config);
/** ioredis options of a raw client (tests that read values at rest), with the same login and TLS. */
export function rawRedisOptions(): { username?: string; password?: string; tls?: { ca?: string[]; cert?: string; key?: string } } {
  const s = redis.security;
  return {
    ...(s?.username ? { username: s.username } : {}),
    ...(s?.password ? { password: s.password.reveal() } : {}),
    ...(redis.url.startsWith('rediss:') ? { tls: { ...(s?.ca ? { ca: [s.ca.text] } : {}), ...(s?.cert ? { cert: s.cert.text } : {}), ...(s?.key ? { key: s.key.reveal() } : {}) } } : {}),
  };
}
export const IN_CI = !!process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0';

/** A short random suffix: every test names its own topics, groups and key prefixes with one. */
export const uniq = (): string => `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;

export interface Probe {
  ok: boolean;
  what: string;
  error?: string;
}

/**
 * The variables of the connections' security, all unset (an empty variable counts as unset): for a child
 * service pointed at a dedicated plaintext broker or Redis while the suite runs secured.
 */
export const PLAINTEXT_ENV: Record<string, string> = Object.fromEntries(
  [...Object.values(kafkaConfigFields), ...Object.values(redisConfigFields)].map((f) => f.env).filter((e) => e !== 'FACEFLOW_KAFKA_BROKERS' && e !== 'FACEFLOW_REDIS_URL').map((e) => [e, '']),
);

/** The Redis ones only (a dedicated plaintext Redis, the shared Kafka). */
export const REDIS_PLAINTEXT_ENV: Record<string, string> = Object.fromEntries(Object.entries(PLAINTEXT_ENV).filter(([k]) => k.startsWith('FACEFLOW_REDIS_')));

let kcatConfig: string[] | undefined;
/**
 * kcat's security arguments for the same broker as `kafka` (a librdkafka config file of mode 0600: no password
 * on a command line). scripts/infra.sh's secured mode names a config of its own (FACEFLOW_KCAT_CONFIG, the
 * mTLS listener: kcat's librdkafka fails the SCRAM login there), used with the brokers of kcatBroker().
 */
export function kcatSecurityArgs(): string[] {
  if (process.env.FACEFLOW_KCAT_CONFIG) return ['-F', process.env.FACEFLOW_KCAT_CONFIG];
  const s = kafka.security;
  if (!s) return [];
  if (!kcatConfig) {
    const lines = [`security.protocol=${s.protocol}`];
    if (s.sasl) lines.push(`sasl.mechanisms=${s.sasl.mechanism.toUpperCase()}`, `sasl.username=${s.sasl.username}`, `sasl.password=${s.sasl.password.reveal()}`);
    if (s.ca) lines.push(`ssl.ca.location=${s.ca.file}`);
    if (s.cert) lines.push(`ssl.certificate.location=${s.cert.file}`);
    if (s.key) lines.push(`ssl.key.location=${s.key.source}`);
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'faceflow-kcat-')), 'kcat.conf');
    writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o600 });
    kcatConfig = ['-F', file];
  }
  return kcatConfig;
}

/** The broker kcat reads from: FACEFLOW_KCAT_BROKERS when set (scripts/infra.sh's secured mode), else the suite's. */
export const kcatBroker = (): string => process.env.FACEFLOW_KCAT_BROKERS || config.kafkaBrokers[0]!;

export async function probeKafka(): Promise<Probe> {
  const what = `Kafka at ${config.kafkaBrokers.join(',')}`;
  const bus = new KafkaBus({ ...kafka, retries: 0, connectionTimeoutMs: 2_000 });
  try {
    await bus.listTopics();
    return { ok: true, what };
  } catch (e) {
    return { ok: false, what, error: (e as Error).message };
  } finally {
    await bus.close().catch(() => undefined);
  }
}

export async function probeRedis(): Promise<Probe> {
  const what = `Redis at ${config.redisUrl}`;
  try {
    const s = await RedisGalleryStore.open({ ...redis, connectTimeoutMs: 2_000 });
    await s.version();
    await s.close();
    return { ok: true, what };
  } catch (e) {
    return { ok: false, what, error: (e as Error).message };
  }
}

/**
 * Decides the fate of a suite: returns true when it should be skipped (unreachable, not in CI). In CI an
 * unreachable service makes the suite's beforeAll throw, so every test in it fails with the reason.
 */
export function skipUnlessReachable(p: Probe): boolean {
  if (p.ok) return false;
  const how = 'start it with `bash scripts/infra.sh up` (or run `npm test`, which does)';
  if (IN_CI) {
    beforeAll(() => {
      throw new Error(`${p.what} is not reachable (${p.error}); CI is set, so this fails instead of skipping; ${how}`);
    });
    return false;
  }
  console.warn(`[faceflow] skipping integration tests: ${p.what} is not reachable (${p.error}); ${how}`);
  return true;
}

/** Polls `cond` every 20 ms until it holds, or fails after `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, ms = 30_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
