/**
 * Kafka over SASL_SSL (SCRAM-SHA-512) and SSL with a client certificate (mTLS), Redis over TLS with an ACL
 * user (issue 15, item 1), on a dedicated broker and Redis of scripts/infra.sh in its secured mode
 * (FACEFLOW_INFRA_SECURE=1: a CA, certificates and passwords it generates). The shared plaintext infra is
 * not touched.
 *
 * - Each security failure is one FaceflowError('TRANSPORT_SECURITY'), not retriable, naming the variable to
 *   fix and never the secret.
 * - The KafkaBus suite (kafka-bus.test.ts), the Redis gallery store contracts (redis-gallery-store.test.ts)
 *   and the four services end to end (kafka-pipeline.test.ts) run over the secured endpoints: a child vitest with the variables `infra.sh env` prints, the same switch
 *   as `FACEFLOW_INFRA_SECURE=1 npm test` for the whole suite.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineConfig, FaceflowError, kafkaConfigFields, kafkaConnectionOf, redisConfigFields, redisConnectionOf, type KafkaConnection, type RedisConnection } from '@faceflow/shared';
import { createLogger } from '@faceflow/shared/ops';
import { KafkaBus } from '@faceflow/shared/kafka';
import { RedisGalleryStore } from '@faceflow/shared/redis';
import { skipUnlessDedicatedInfra, startDedicatedInfra, type DedicatedInfra } from './dedicated-infra.js';
import { uniq } from './infra.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const skip = skipUnlessDedicatedInfra();
const PORTS = { kafka: 19292, controller: 19293, redis: 16579, secure: { sasl: 19294, mtls: 19295, redisTls: 16580 } };

let infra: DedicatedInfra | undefined;
let scratch = '';
let env: Record<string, string> = {};
const tlsFile = (name: string): string => path.join(infra!.dir, 'tls', name);

const kafkaSpec = defineConfig(kafkaConfigFields);
const redisSpec = defineConfig(redisConfigFields);
/** A Kafka connection from the secured variables with some replaced ('' = unset). */
const kafkaWith = (over: Record<string, string> = {}): KafkaConnection => kafkaConnectionOf(kafkaSpec.load({ ...env, ...over }));
const redisWith = (over: Record<string, string> = {}): RedisConnection => redisConnectionOf(redisSpec.load({ ...env, ...over }));

/**
 * The bus's failure at its first call, with kafkajs's default retries: a security failure must come as one
 * error without retrying (kafkajs logs each retry of a connection at error or warn level, captured here).
 */
async function kafkaFailure(conn: KafkaConnection): Promise<FaceflowError> {
  const lines: string[] = [];
  const logger = createLogger({ level: 'warn', sink: (l) => void lines.push(l) });
  const bus = new KafkaBus({ ...conn, clientId: `test-sec-${uniq()}`, logger });
  try {
    const e = await bus.listTopics().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e, 'the connection should have failed').toBeInstanceOf(FaceflowError);
    expect(lines, 'no retried connection').toEqual([]);
    return e as FaceflowError;
  } finally {
    await bus.close();
  }
}

async function redisFailure(conn: RedisConnection): Promise<FaceflowError> {
  const e = await RedisGalleryStore.open({ ...conn, keyPrefix: `test:sec:${uniq()}:`, connectTimeoutMs: 3_000 }).then(
    async (s) => {
      await s.close();
      return undefined;
    },
    (err: unknown) => err,
  );
  expect(e, 'the connection should have failed').toBeInstanceOf(FaceflowError);
  return e as FaceflowError;
}

/** One line, the code, not retriable, the problem named, no secret in it. */
function expectSecurityLine(e: FaceflowError, problem: string, mentions: RegExp, secrets: string[]): void {
  expect(e.code).toBe('TRANSPORT_SECURITY');
  expect(e.retriable).toBe(false);
  expect(e.details.problem).toBe(problem);
  expect(e.message).not.toContain('\n');
  expect(e.message).toMatch(mentions);
  for (const s of secrets) expect(JSON.stringify(e.toJSON())).not.toContain(s);
}

beforeAll(async () => {
  if (skip) return;
  const t0 = Date.now();
  infra = await startDedicatedInfra(PORTS);
  // the cost of the secured mode (report): CA + certificates + broker + Redis from nothing
  console.info(`[secure-transport] secured dedicated infra up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  env = { ...infra.secureEnv! };
  scratch = await mkdtemp(path.join(os.tmpdir(), 'faceflow-sec-'));
  // another CA: a certificate it did not sign is untrusted
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=other CA', '-keyout', path.join(scratch, 'other.key'), '-out', path.join(scratch, 'other-ca.crt')]);
  await writeFile(path.join(scratch, 'wrong.password'), 'not-the-password\n', { mode: 0o600 });
}, 300_000);

afterAll(async () => {
  await infra?.destroy();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe.skipIf(skip)('Kafka over SASL_SSL and mTLS, Redis over TLS with an ACL user (issue 15)', () => {
  it('kafka_bus_publishes_and_consumes_over_sasl_ssl_with_scram', async () => {
    const conn = kafkaWith();
    expect(conn.security?.protocol).toBe('sasl_ssl');
    const bus = new KafkaBus({ ...conn, clientId: `test-sec-${uniq()}` });
    const topic = `test.sec.${uniq()}`;
    try {
      await bus.createTopics([{ topic }]);
      const got: string[] = [];
      const sub = await bus.subscribe(topic, `test-sec-${uniq()}`, async (b) => void got.push(...b.messages.map((m) => m.value.toString())), { deadLetter: false });
      await bus.publish(topic, [{ key: 'k', value: Buffer.from('over sasl_ssl') }]);
      for (let i = 0; i < 300 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      await sub.close();
      expect(got).toEqual(['over sasl_ssl']);
      await bus.ping();
    } finally {
      await bus.deleteTopics([topic]).catch(() => undefined);
      await bus.close();
    }
  });

  it('kafka_bus_connects_over_ssl_with_a_client_certificate', async () => {
    const conn = kafkaWith({
      FACEFLOW_KAFKA_BROKERS: `127.0.0.1:${PORTS.secure.mtls}`,
      FACEFLOW_KAFKA_SECURITY: 'ssl',
      FACEFLOW_KAFKA_SASL_USERNAME: '',
      FACEFLOW_KAFKA_SASL_PASSWORD_FILE: '',
      FACEFLOW_KAFKA_CERT_FILE: tlsFile('client.crt'),
      FACEFLOW_KAFKA_KEY_FILE: tlsFile('client.key'),
    });
    const bus = new KafkaBus({ ...conn, clientId: `test-sec-${uniq()}`, retries: 0 });
    try {
      expect(Array.isArray(await bus.listTopics())).toBe(true);
    } finally {
      await bus.close();
    }
  });

  it('a_wrong_kafka_password_is_one_non_retriable_line_naming_the_password_file', async () => {
    const e = await kafkaFailure(kafkaWith({ FACEFLOW_KAFKA_SASL_PASSWORD_FILE: path.join(scratch, 'wrong.password') }));
    expectSecurityLine(e, 'credentials', /FACEFLOW_KAFKA_SASL_PASSWORD_FILE/, ['not-the-password']);
  });

  it('an_untrusted_kafka_certificate_is_one_line_naming_the_ca_file', async () => {
    const real = kafkaWith().security!.sasl!.password.reveal();
    const e = await kafkaFailure(kafkaWith({ FACEFLOW_KAFKA_CA_FILE: path.join(scratch, 'other-ca.crt') }));
    expectSecurityLine(e, 'certificate', /not trusted.*FACEFLOW_KAFKA_CA_FILE/, [real]);
  });

  it('a_plaintext_kafka_client_at_the_tls_listener_is_told_to_set_the_security_protocol', async () => {
    const e = await kafkaFailure({ brokers: [`127.0.0.1:${PORTS.secure.sasl}`] });
    expectSecurityLine(e, 'protocol', /speaks TLS.*FACEFLOW_KAFKA_SECURITY=sasl_ssl/, []);
  });

  it('a_tls_kafka_client_at_a_plaintext_listener_is_one_line', async () => {
    const e = await kafkaFailure(kafkaWith({ FACEFLOW_KAFKA_BROKERS: `127.0.0.1:${PORTS.kafka}` }));
    expectSecurityLine(e, 'protocol', /does not speak TLS/, []);
  });

  it('a_kafka_client_without_a_certificate_at_the_mtls_listener_is_told_to_set_one', async () => {
    const e = await kafkaFailure(
      kafkaWith({ FACEFLOW_KAFKA_BROKERS: `127.0.0.1:${PORTS.secure.mtls}`, FACEFLOW_KAFKA_SECURITY: 'ssl', FACEFLOW_KAFKA_SASL_USERNAME: '', FACEFLOW_KAFKA_SASL_PASSWORD_FILE: '' }),
    );
    expect(e.code).toBe('TRANSPORT_SECURITY');
    expect(e.retriable).toBe(false);
    expect(e.message).toMatch(/FACEFLOW_KAFKA_CERT_FILE/);
  });

  it('redis_gallery_store_works_over_tls_with_an_acl_user', async () => {
    const conn = redisWith();
    expect(conn.url.startsWith('rediss://')).toBe(true);
    const s = await RedisGalleryStore.open({ ...conn, keyPrefix: `test:sec:${uniq()}:` });
    try {
      await s.put('alice', [[1, 0, 0, 0]]);
      expect((await s.snapshot()).identities.map((i) => i.id)).toEqual(['alice']);
    } finally {
      await s.close();
    }
  });

  it('a_wrong_redis_password_is_one_non_retriable_line_naming_the_password_file', async () => {
    const e = await redisFailure(redisWith({ FACEFLOW_REDIS_PASSWORD_FILE: path.join(scratch, 'wrong.password') }));
    expectSecurityLine(e, 'credentials', /FACEFLOW_REDIS_PASSWORD_FILE/, ['not-the-password']);
  });

  it('a_redis_client_without_a_login_is_told_to_set_the_acl_user', async () => {
    const e = await redisFailure(redisWith({ FACEFLOW_REDIS_USERNAME: '', FACEFLOW_REDIS_PASSWORD_FILE: '' }));
    expectSecurityLine(e, 'credentials', /FACEFLOW_REDIS_USERNAME/, []);
  });

  it('an_untrusted_redis_certificate_is_one_line_naming_the_ca_file', async () => {
    const real = redisWith().security!.password!.reveal();
    const e = await redisFailure(redisWith({ FACEFLOW_REDIS_CA_FILE: path.join(scratch, 'other-ca.crt') }));
    expectSecurityLine(e, 'certificate', /not trusted.*FACEFLOW_REDIS_CA_FILE/, [real]);
  });

  it('a_plaintext_redis_client_at_the_tls_port_is_told_to_use_rediss', async () => {
    const e = await redisFailure(redisWith({ FACEFLOW_REDIS_URL: `redis://127.0.0.1:${PORTS.secure.redisTls}`, FACEFLOW_REDIS_CA_FILE: '' }));
    expectSecurityLine(e, 'protocol', /speaks TLS.*rediss:\/\//, []);
  });

  it('the_kafka_bus_suite_the_redis_gallery_contracts_and_the_kafka_pipeline_pass_over_sasl_ssl_and_tls_acl', async () => {
    // the existing suites, unchanged, with the secured variables: CI=1 turns an unreachable endpoint into a
    // failure; the pipeline test runs the four services as processes over SASL_SSL and TLS+ACL
    const files = ['test/shared/kafka-bus.test.ts', 'test/shared/redis-gallery-store.test.ts', 'test/pipeline/kafka-pipeline.test.ts'];
    const { stdout } = await run('npx', ['vitest', 'run', '--reporter=json', ...files], {
      cwd: ROOT,
      env: { ...process.env, ...env, CI: '1', FACEFLOW_INFRA: '0' },
      timeout: 600_000,
      maxBuffer: 64 * 1024 * 1024,
    }).catch((e: { stdout?: string; stderr?: string; message: string }) => {
      // name the failed tests and their first failure lines (the JSON report), not its raw tail
      let failed = '';
      try {
        const r = JSON.parse((e.stdout ?? '').slice((e.stdout ?? '').indexOf('{'))) as { testResults: { assertionResults: { fullName: string; status: string; failureMessages: string[] }[]; message?: string; name: string }[] };
        failed = r.testResults
          .flatMap((f) => [...(f.message ? [`${f.name}: ${f.message}`] : []), ...f.assertionResults.filter((a) => a.status === 'failed').map((a) => `${a.fullName}: ${(a.failureMessages[0] ?? '').slice(0, 600)}`)])
          .join('\n');
      } catch {
        failed = (e.stdout ?? '').slice(-3000);
      }
      throw new Error(`the secured run failed:\n${failed}\n${(e.stderr ?? e.message).slice(-2000)}`);
    });
    const report = JSON.parse(stdout.slice(stdout.indexOf('{'))) as { numTotalTests: number; numPassedTests: number; numPendingTests: number; numFailedTests: number };
    expect(report.numFailedTests).toBe(0);
    expect(report.numPendingTests).toBe(0);
    expect(report.numPassedTests).toBe(report.numTotalTests);
    expect(report.numPassedTests).toBeGreaterThan(20);
  }, 600_000);
});
