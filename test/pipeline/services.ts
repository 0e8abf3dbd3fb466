/**
 * The pipeline tests' services, started by the one service spawner the benchmarks use too
 * (`@faceflow/bench/spawn`, bench/src/spawn.ts), on the test's Kafka, Redis and topic prefix; and reading
 * topics with kcat.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ready as readyWithin, startService as spawnService, type Service, type ServiceName } from '@faceflow/bench/spawn';
import { config, kcatBroker, kcatSecurityArgs } from '../shared/infra.js';

export type { Service, ServiceName };

const exec = promisify(execFile);
const broker = kcatBroker();

/** Starts services/<name> on the test's infra and topic prefix (two partitions); `services` collects it for the suite's afterAll. */
export function startService(services: Service[], prefix: string, name: ServiceName, env: Record<string, string>): Service {
  const s = spawnService(name, {
    FACEFLOW_KAFKA_BROKERS: config.kafkaBrokers.join(','),
    FACEFLOW_REDIS_URL: config.redisUrl,
    FACEFLOW_TOPIC_PREFIX: prefix,
    FACEFLOW_TOPIC_PARTITIONS: '2',
    ...env,
  });
  services.push(s);
  return s;
}

/** Waits for the service's ready line within the suites' hook timeout (vitest.config.ts), so a slow start fails with its own output. */
export const ready = (s: Service, ms = 180_000): Promise<void> => readyWithin(s, ms);

/** Everything on a topic, through kcat: [headers, value] per message. */
export async function kcat(topic: string): Promise<{ headers: Record<string, string>; value: string }[]> {
  const { stdout } = await exec('kcat', ['-b', broker, ...kcatSecurityArgs(), '-C', '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%h\\t%s\\n'], { timeout: 30_000, maxBuffer: 64 * 1024 * 1024 });
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [h, ...rest] = line.split('\t');
      const headers: Record<string, string> = {};
      for (const kv of (h ?? '').split(',')) {
        const i = kv.indexOf('=');
        if (i > 0) headers[kv.slice(0, i)] = kv.slice(i + 1);
      }
      return { headers, value: rest.join('\t') };
    });
}


/** How many messages a topic holds (kcat, offsets only: frames are binary). */
export async function kcatCount(topic: string): Promise<number> {
  const { stdout } = await exec('kcat', ['-b', broker, ...kcatSecurityArgs(), '-C', '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%p:%o\\n'], { timeout: 30_000 });
  return stdout.split('\n').filter(Boolean).length;
}
