/**
 * The typed config of Kafka's and Redis's transport security (issue 15): cross-field rules, files read at
 * start-up, secrets that never print; and the one-line classification of security failures.
 */
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { baseConfigFields, defineConfig, field, kafkaConfigFields, kafkaConnectionOf, parsers, redisConfigFields, redisConnectionOf } from './config.js';
import { FaceflowError } from './errors.js';
import { securityError } from './transport-security.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-transport-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string): string => {
  const p = path.join(dir, name);
  writeFileSync(p, text, { mode: 0o600 });
  return p;
};
const PEM_CERT = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const PEM_KEY = '-----BEGIN PRIVATE KEY-----\nMIIE-secret-key\n-----END PRIVATE KEY-----\n';
const password = file('pw', 's3cr3t-pa55\n');
const ca = file('ca.crt', PEM_CERT);
const cert = file('client.crt', PEM_CERT);
const key = file('client.key', PEM_KEY);

function loadError(spec: { load(env: Record<string, string>): unknown }, env: Record<string, string>): FaceflowError {
  try {
    spec.load(env);
  } catch (e) {
    return e as FaceflowError;
  }
  throw new Error('expected an INVALID_CONFIG error');
}

describe('transport security config (issue 15)', () => {
  const base = defineConfig(baseConfigFields);

  it('plaintext by default: no security in the connections', () => {
    const c = base.load({});
    expect(kafkaConnectionOf(c)).toEqual({ brokers: ['127.0.0.1:19092'] });
    expect(redisConnectionOf(c)).toEqual({ url: 'redis://127.0.0.1:16379' });
  });

  it('sasl_ssl reads the password file once and never prints it', () => {
    const c = base.load({ FACEFLOW_KAFKA_SECURITY: 'sasl_ssl', FACEFLOW_KAFKA_SASL_USERNAME: 'svc', FACEFLOW_KAFKA_SASL_PASSWORD_FILE: password, FACEFLOW_KAFKA_CA_FILE: ca });
    const k = kafkaConnectionOf(c);
    expect(k.security?.sasl?.mechanism).toBe('scram-sha-512');
    expect(k.security?.sasl?.password.reveal()).toBe('s3cr3t-pa55');
    expect(k.security?.ca?.text).toBe(PEM_CERT);
    for (const shown of [JSON.stringify(c), JSON.stringify(k), inspect(k, { depth: 9 }), String(k.security?.sasl?.password)]) expect(shown).not.toContain('s3cr3t');
  });

  it('the rules of the Kafka and Redis groups hold in every spec that spreads them', () => {
    const services = defineConfig({ ...baseConfigFields, port: field({ env: 'PORT', default: 1, parse: parsers.int(), doc: 'x' }) });
    const cases: [Record<string, string>, RegExp][] = [
      [{ FACEFLOW_KAFKA_SECURITY: 'sasl_ssl' }, /sasl_ssl needs both FACEFLOW_KAFKA_SASL_USERNAME and FACEFLOW_KAFKA_SASL_PASSWORD_FILE/],
      [{ FACEFLOW_KAFKA_SASL_USERNAME: 'svc', FACEFLOW_KAFKA_SASL_PASSWORD_FILE: password }, /FACEFLOW_KAFKA_SECURITY is plaintext: set it to sasl_ssl/],
      [{ FACEFLOW_KAFKA_SECURITY: 'ssl', FACEFLOW_KAFKA_CERT_FILE: cert }, /needs both FACEFLOW_KAFKA_CERT_FILE and FACEFLOW_KAFKA_KEY_FILE/],
      [{ FACEFLOW_KAFKA_CA_FILE: ca }, /TLS files are set but FACEFLOW_KAFKA_SECURITY is plaintext/],
      [{ FACEFLOW_REDIS_CA_FILE: ca }, /FACEFLOW_REDIS_URL is redis:\/\/: use rediss:\/\//],
      [{ FACEFLOW_REDIS_USERNAME: 'svc' }, /FACEFLOW_REDIS_USERNAME needs FACEFLOW_REDIS_PASSWORD_FILE/],
      [{ FACEFLOW_REDIS_URL: 'redis://u:inline@h:1', FACEFLOW_REDIS_PASSWORD_FILE: password }, /the password is given twice/],
    ];
    for (const [env, why] of cases) {
      for (const spec of [base, services]) {
        const e = loadError(spec, env);
        expect(e.code).toBe('INVALID_CONFIG');
        expect(e.message).toMatch(why);
      }
    }
    expect(loadError(defineConfig(kafkaConfigFields), { FACEFLOW_KAFKA_SECURITY: 'sasl_ssl' }).message).toMatch(/needs both/);
    expect(loadError(defineConfig(redisConfigFields), { FACEFLOW_REDIS_USERNAME: 'svc' }).message).toMatch(/needs FACEFLOW_REDIS_PASSWORD_FILE/);
  });

  it('a missing, unreadable, empty or non-PEM file is one line naming the file, never its content', () => {
    const missing = loadError(base, { FACEFLOW_KAFKA_SECURITY: 'ssl', FACEFLOW_KAFKA_CA_FILE: path.join(dir, 'nope.crt') });
    expect(missing.message).toMatch(/FACEFLOW_KAFKA_CA_FILE: .*nope\.crt does not exist/);
    const notPem = loadError(base, { FACEFLOW_KAFKA_SECURITY: 'ssl', FACEFLOW_KAFKA_CA_FILE: password });
    expect(notPem.message).toMatch(/holds no PEM certificate/);
    expect(notPem.message).not.toContain('s3cr3t');
    const keyAsCert = loadError(base, { FACEFLOW_KAFKA_SECURITY: 'ssl', FACEFLOW_KAFKA_CERT_FILE: key, FACEFLOW_KAFKA_KEY_FILE: key });
    expect(keyAsCert.message).toMatch(/FACEFLOW_KAFKA_CERT_FILE: .*holds no PEM certificate/);
    expect(keyAsCert.message).not.toContain('secret-key');
    const empty = loadError(base, { FACEFLOW_REDIS_PASSWORD_FILE: file('empty', '\n') });
    expect(empty.message).toMatch(/FACEFLOW_REDIS_PASSWORD_FILE: .* is empty/);
    if (process.getuid?.() !== 0) {
      const locked = file('locked', 'x');
      chmodSync(locked, 0);
      expect(loadError(base, { FACEFLOW_REDIS_PASSWORD_FILE: locked }).message).toMatch(/not readable/);
    }
  });

  it('redis: rediss:// with an ACL user, a CA and a client certificate', () => {
    const r = redisConnectionOf(
      base.load({ FACEFLOW_REDIS_URL: 'rediss://h:6380', FACEFLOW_REDIS_USERNAME: 'svc', FACEFLOW_REDIS_PASSWORD_FILE: password, FACEFLOW_REDIS_CA_FILE: ca, FACEFLOW_REDIS_CERT_FILE: cert, FACEFLOW_REDIS_KEY_FILE: key }),
    );
    expect(r.url).toBe('rediss://h:6380');
    expect(r.security?.username).toBe('svc');
    expect(r.security?.key?.reveal()).toBe(PEM_KEY);
    expect(JSON.stringify(r)).not.toContain('secret-key');
  });
});

describe('securityError: one line per security failure (issue 15)', () => {
  const kafkaCtx = { system: 'kafka' as const, where: 'Kafka at h:1', what: 'connect' };
  it('a refused SASL login, an untrusted certificate, a wrong protocol; other errors are not security ones', () => {
    const sasl = Object.assign(new Error('SASL SCRAM SHA512 authentication failed: invalid credentials'), { name: 'KafkaJSSASLAuthenticationError' });
    expect(securityError(sasl, kafkaCtx)?.details.problem).toBe('credentials');
    const wrapped = Object.assign(new Error('retries exceeded'), { originalError: Object.assign(new Error('Connection error: self-signed certificate in certificate chain'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }) });
    const cert = securityError(wrapped, kafkaCtx)!;
    expect([cert.code, cert.retriable, cert.details.problem]).toEqual(['TRANSPORT_SECURITY', false, 'certificate']);
    expect(cert.message).toMatch(/FACEFLOW_KAFKA_CA_FILE/);
    expect(securityError(new Error('WRONGPASS invalid username-password pair or user is disabled.'), { ...kafkaCtx, system: 'redis', where: 'Redis at x' })?.message).toMatch(/FACEFLOW_REDIS_PASSWORD_FILE/);
    expect(securityError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), kafkaCtx)).toBeUndefined();
    expect(securityError(new Error('Connection timeout'), kafkaCtx)).toBeUndefined();
  });
});
