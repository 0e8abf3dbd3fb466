/**
 * A Kafka broker and a Redis of a test's own (scripts/infra.sh with its own FACEFLOW_INFRA_DIR and ports), for
 * the tests that stop them: the shared ones on 19092/16379 are never stopped (other suites use them). The
 * broker's jars are taken from the checkout's cache (.infra/kafka/libs, filled by `bash scripts/infra.sh up`;
 * FACEFLOW_KAFKA_LIBS points elsewhere) so that starting one resolves nothing from the network.
 *
 * Unavailable (no java, no jars and no mvn): skipped with a message, or a failure when CI is set.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll } from 'vitest';
import { IN_CI } from './infra.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface DedicatedInfra {
  dir: string;
  kafkaPort: number;
  redisPort: number;
  brokers: string;
  redisUrl: string;
  /** Starts both (again); resolves once they answer. */
  up(): Promise<void>;
  /** Stops the broker only (controlled shutdown), leaving its data. */
  stopKafka(): Promise<void>;
  /** Stops Redis only. */
  stopRedis(): Promise<void>;
  /** Stops both and deletes the folder. */
  destroy(): Promise<void>;
  /**
   * Secured mode (issue 15, `secure` ports given): the FACEFLOW_* variables of its SASL_SSL and TLS+ACL
   * endpoints, as `scripts/infra.sh env` prints them; the TLS files and passwords are under `${dir}/tls`.
   */
  secureEnv?: Record<string, string>;
}

export interface SecurePorts {
  /** SASL_SSL (SCRAM-SHA-512) listener */
  sasl: number;
  /** SSL listener requiring a client certificate */
  mtls: number;
  /** Redis TLS port */
  redisTls: number;
}

function has(cmd: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((d) => d && existsSync(path.join(d, cmd)));
}

/** Why a dedicated broker cannot be started here, or undefined when it can. */
export function dedicatedInfraUnavailable(): string | undefined {
  if (!has('java')) return 'java is not installed';
  const libs = process.env.FACEFLOW_KAFKA_LIBS ?? path.join(ROOT, '.infra/kafka/libs');
  if (!existsSync(libs) && !has('mvn')) return `no Kafka jars at ${libs} and no mvn to resolve them`;
  if (!has('redis-server')) return 'redis-server is not installed';
  return undefined;
}

/** Like skipUnlessReachable: true when the suite should be skipped. */
export function skipUnlessDedicatedInfra(): boolean {
  const why = dedicatedInfraUnavailable();
  if (!why) return false;
  const how = 'run `bash scripts/infra.sh up` once (it installs java and caches the Kafka jars under .infra/kafka/libs)';
  if (IN_CI) {
    beforeAll(() => {
      throw new Error(`a dedicated Kafka cannot be started: ${why}; CI is set, so this fails instead of skipping; ${how}`);
    });
    return false;
  }
  console.warn(`[faceflow] skipping the outage tests: a dedicated Kafka cannot be started (${why}); ${how}`);
  return true;
}

async function pidOf(file: string): Promise<number | undefined> {
  try {
    const n = Number((await readFile(file, 'utf8')).trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

async function killAndWait(pid: number | undefined, ms = 40_000): Promise<void> {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const end = Date.now() + ms;
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    if (Date.now() > end) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
      return;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    sock.once('connect', () => (sock.destroy(), resolve(true)));
    sock.once('error', () => resolve(false));
  });
}

export async function startDedicatedInfra(ports: { kafka: number; controller: number; redis: number; secure?: SecurePorts }): Promise<DedicatedInfra> {
  // infra.sh would take a broker already on the port as its own, and the test could not stop it
  const sec = ports.secure;
  for (const port of [ports.kafka, ports.controller, ports.redis, ...(sec ? [sec.sasl, sec.mtls, sec.redisTls] : [])]) {
    if (await portInUse(port)) {
      throw new Error(`port ${port} is in use: a dedicated broker or Redis left by an interrupted run? (stop the java kafka.Kafka / redis-server process whose files are under ${os.tmpdir()}/faceflow-outage-infra-*)`);
    }
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-outage-infra-'));
  const libs = process.env.FACEFLOW_KAFKA_LIBS ?? path.join(ROOT, '.infra/kafka/libs');
  await mkdir(path.join(dir, 'kafka'), { recursive: true });
  if (existsSync(libs)) await symlink(path.resolve(libs), path.join(dir, 'kafka/libs'));
  const env = {
    ...process.env,
    FACEFLOW_INFRA_DIR: dir,
    FACEFLOW_KAFKA_PORT: String(ports.kafka),
    FACEFLOW_KAFKA_CONTROLLER_PORT: String(ports.controller),
    FACEFLOW_REDIS_PORT: String(ports.redis),
    FACEFLOW_KAFKA_HEAP: '-Xms64m -Xmx384m',
    ...(sec
      ? { FACEFLOW_INFRA_SECURE: '1', FACEFLOW_KAFKA_SASL_PORT: String(sec.sasl), FACEFLOW_KAFKA_MTLS_PORT: String(sec.mtls), FACEFLOW_REDIS_TLS_PORT: String(sec.redisTls) }
      : { FACEFLOW_INFRA_SECURE: '0' }),
  };
  const infra = async (cmd: string): Promise<string> => {
    try {
      return (await run('bash', [path.join(ROOT, 'scripts/infra.sh'), cmd], { env, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 })).stdout;
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      throw new Error(`scripts/infra.sh ${cmd} (dedicated, ${dir}) failed: ${(err.stderr ?? err.message).trim().split('\n').slice(-8).join('\n')}`);
    }
  };
  const d: DedicatedInfra = {
    dir,
    kafkaPort: ports.kafka,
    redisPort: ports.redis,
    brokers: `127.0.0.1:${ports.kafka}`,
    redisUrl: `redis://127.0.0.1:${ports.redis}`,
    up: async () => {
      await infra('up');
    },
    stopKafka: async () => killAndWait(await pidOf(path.join(dir, 'kafka/kafka.pid'))),
    stopRedis: async () => killAndWait(await pidOf(path.join(dir, 'redis/redis.pid'))),
    destroy: async () => {
      await d.stopKafka();
      await d.stopRedis();
      await rm(dir, { recursive: true, force: true });
    },
  };
  await d.up();
  if (sec) {
    d.secureEnv = {};
    for (const m of (await infra('env')).matchAll(/^export (\w+)=(.*)$/gm)) d.secureEnv[m[1]!] = m[2]!;
  }
  return d;
}
