/**
 * Shared helpers of the integration tests that run against the real Kafka and Redis of scripts/infra.sh
 * (`bash scripts/infra.sh up`; `npm test` does it). Addresses come from FACEFLOW_KAFKA_BROKERS and
 * FACEFLOW_REDIS_URL (defaults: the infra.sh ports). When a service is unreachable the suite fails when
 * CI is set, and is skipped (with a message saying how to start it) otherwise.
 */
import { randomBytes } from 'node:crypto';
import { beforeAll } from 'vitest';
import { baseConfigFields, defineConfig } from '@faceflow/shared';
import { KafkaBus } from '@faceflow/shared/kafka';
import { RedisGalleryStore } from '@faceflow/shared/redis';

export const config = defineConfig({ kafkaBrokers: baseConfigFields.kafkaBrokers, redisUrl: baseConfigFields.redisUrl }).load();
export const IN_CI = !!process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0';

/** A short random suffix: every test names its own topics, groups and key prefixes with one. */
export const uniq = (): string => `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;

export interface Probe {
  ok: boolean;
  what: string;
  error?: string;
}

export async function probeKafka(): Promise<Probe> {
  const what = `Kafka at ${config.kafkaBrokers.join(',')}`;
  const bus = new KafkaBus({ brokers: [...config.kafkaBrokers], retries: 0, connectionTimeoutMs: 2_000 });
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
    const s = await RedisGalleryStore.open({ url: config.redisUrl, connectTimeoutMs: 2_000 });
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
