import { describe, expect, it } from 'vitest';
import { baseConfigFields, defineConfig, field, optional, parsers, redactionConfigFields, redactionExempt } from './config.js';
import { FaceflowError } from './errors.js';

const spec = defineConfig(
  {
    port: field({ env: 'T_PORT', default: 8080, parse: parsers.int({ min: 1, max: 65535 }), doc: 'HTTP port' }),
    name: field({ env: 'T_NAME', parse: parsers.string(), doc: 'required name' }),
    debug: field({ env: 'T_DEBUG', default: false, parse: parsers.boolean(), doc: 'debug mode' }),
    minBatch: field({ env: 'T_MIN_BATCH', default: 1, parse: parsers.int({ min: 1 }), doc: 'min batch' }),
    maxBatch: field({ env: 'T_MAX_BATCH', default: 16, parse: parsers.int({ min: 1 }), doc: 'max batch' }),
    timeout: field({ env: 'T_TIMEOUT', default: 5000, parse: parsers.durationMs(), doc: 'timeout' }),
    token: optional({ env: 'T_TOKEN', parse: parsers.string(), doc: 'api token', secret: true }),
  },
  [{ envs: ['T_MIN_BATCH', 'T_MAX_BATCH'], check: (c) => (c.minBatch <= c.maxBatch ? undefined : 'T_MIN_BATCH must not exceed T_MAX_BATCH') }],
);

function loadError(env: Record<string, string>): FaceflowError {
  try {
    spec.load(env);
  } catch (e) {
    expect(e).toBeInstanceOf(FaceflowError);
    return e as FaceflowError;
  }
  throw new Error('expected load() to throw');
}

describe('config', () => {
  it('applies defaults and parses values, typed', () => {
    const c = spec.load({ T_NAME: 'x', T_PORT: '9000', T_DEBUG: 'yes', T_TIMEOUT: '2s' });
    expect(c).toEqual({ port: 9000, name: 'x', debug: true, minBatch: 1, maxBatch: 16, timeout: 2000, token: undefined });
    expect(Object.isFrozen(c)).toBe(true);
    const port: number = c.port; // compile-time typing
    expect(port).toBe(9000);
  });

  it('treats an empty variable as unset', () => {
    expect(spec.load({ T_NAME: 'x', T_PORT: '' }).port).toBe(8080);
  });

  it('names the env var of a bad value, with code INVALID_CONFIG, not retriable', () => {
    const e = loadError({ T_NAME: 'x', T_PORT: 'eighty' });
    expect(e.code).toBe('INVALID_CONFIG');
    expect(e.retriable).toBe(false);
    expect(e.message).toContain('T_PORT');
    expect(e.message).toContain('must be an integer');
    expect(e.details.env).toBe('T_PORT');
  });

  it('reports every problem at once, including a missing required field', () => {
    const e = loadError({ T_PORT: '0', T_DEBUG: 'maybe' });
    expect(e.message).toMatch(/T_NAME: is required/);
    expect(e.message).toMatch(/T_PORT: must be >= 1/);
    expect(e.message).toMatch(/T_DEBUG: must be a boolean/);
    expect((e.details.problems as unknown[]).length).toBe(3);
  });

  it('checks cross-field rules and names the variables involved', () => {
    const e = loadError({ T_NAME: 'x', T_MIN_BATCH: '32', T_MAX_BATCH: '8' });
    expect(e.code).toBe('INVALID_CONFIG');
    expect(e.message).toContain('T_MIN_BATCH, T_MAX_BATCH');
  });

  it('never echoes a secret value', () => {
    const s = defineConfig({ key: field({ env: 'T_KEY', parse: parsers.int(), doc: 'k', secret: true }) });
    let msg = '';
    try {
      s.load({ T_KEY: 'hunter2' });
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toContain('T_KEY');
    expect(msg).not.toContain('hunter2');
    expect(s.describe()).toBe('T_KEY [required, secret]: k');
  });

  it('describes the variables', () => {
    const d = spec.describe();
    expect(d).toContain('T_PORT [default 8080]: HTTP port');
    expect(d).toContain('T_NAME [required]');
    expect(d).toContain('T_TOKEN [optional, secret]: api token');
  });

  it('rejects a variable declared twice', () => {
    expect(() =>
      defineConfig({
        a: field({ env: 'T_X', default: 1, parse: Number, doc: '' }),
        b: field({ env: 'T_X', default: 2, parse: Number, doc: '' }),
      }),
    ).toThrow(/declared twice/);
  });

  it('parsers', () => {
    expect(parsers.list(parsers.hostPort())('a:1, b:2,')).toEqual(['a:1', 'b:2']);
    expect(() => parsers.list(parsers.hostPort())('a:1,b')).toThrow(/item 2 must be host:port/);
    expect(parsers.durationMs()('1.5m')).toBe(90_000);
    expect(parsers.durationMs()('250')).toBe(250);
    expect(() => parsers.durationMs()('soon')).toThrow();
    expect(parsers.number({ max: 1 })('0.25')).toBe(0.25);
    expect(() => parsers.number()('abc')).toThrow();
    expect(parsers.oneOf(['a', 'b'] as const)('b')).toBe('b');
    expect(() => parsers.url(['redis:'])('http://x')).toThrow(/redis:/);
    expect(() => parsers.int()('1.5')).toThrow();
  });

  it('base fields: defaults match scripts/infra.sh', () => {
    const c = defineConfig(baseConfigFields).load({});
    expect(c.kafkaBrokers).toEqual(['127.0.0.1:19092']);
    expect(c.redisUrl).toBe('redis://127.0.0.1:16379');
    expect(c.topicPrefix).toBe('');
    expect(c.logLevel).toBe('info');
    const e = (() => {
      try {
        defineConfig(baseConfigFields).load({ FACEFLOW_KAFKA_BROKERS: 'nohost', FACEFLOW_TOPIC_PREFIX: 'bad prefix!' });
      } catch (err) {
        return err as FaceflowError;
      }
      return undefined;
    })();
    expect(e?.message).toContain('FACEFLOW_KAFKA_BROKERS');
    expect(e?.message).toContain('FACEFLOW_TOPIC_PREFIX');
  });

  it('redaction is on for every camera unless FACEFLOW_REDACT_EXEMPT_CAMERAS lists it (or says *)', () => {
    const spec = defineConfig(redactionConfigFields);
    const none = spec.load({}).redactExemptCameras;
    expect(none).toEqual([]);
    expect(redactionExempt(none, 'door')).toBe(false);
    const some = spec.load({ FACEFLOW_REDACT_EXEMPT_CAMERAS: 'staff-room, lab/2' }).redactExemptCameras;
    expect([redactionExempt(some, 'lab/2'), redactionExempt(some, 'staff-room'), redactionExempt(some, 'door')]).toEqual([true, true, false]);
    expect(redactionExempt(spec.load({ FACEFLOW_REDACT_EXEMPT_CAMERAS: '*' }).redactExemptCameras, 'door')).toBe(true);
    expect(() => spec.load({ FACEFLOW_REDACT_EXEMPT_CAMERAS: 'door,bad camera' })).toThrow(/FACEFLOW_REDACT_EXEMPT_CAMERAS: item 2/);
  });
});
