import { describe, expect, it } from 'vitest';
import { FaceflowError } from './errors.js';
import { createLogger, redact } from './logger.js';

function capture(level: Parameters<typeof createLogger>[0] extends infer O ? (O extends { level?: infer L } ? L : never) : never = 'trace') {
  const lines: string[] = [];
  const logger = createLogger({ level, sink: (l) => lines.push(l), now: () => new Date('2026-01-02T03:04:05.000Z') });
  return { logger, lines, parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('logger', () => {
  it('writes one JSON object per line with ts, level, msg and fields', () => {
    const { logger, lines, parsed } = capture('info');
    logger.info('hello', { cameraId: 'cam1', n: 3 });
    expect(lines).toHaveLength(1);
    expect(parsed()[0]).toEqual({ ts: '2026-01-02T03:04:05.000Z', level: 'info', msg: 'hello', cameraId: 'cam1', n: 3 });
  });

  it('filters by level', () => {
    const { logger, parsed } = capture('warn');
    logger.debug('no');
    logger.info('no');
    logger.warn('yes');
    logger.error('yes too');
    expect(parsed().map((l) => l.level)).toEqual(['warn', 'error']);
    expect(logger.isLevelEnabled('info')).toBe(false);
    expect(logger.isLevelEnabled('error')).toBe(true);
  });

  it('silent writes nothing', () => {
    const { logger, lines } = capture('silent');
    logger.fatal('nothing');
    expect(lines).toHaveLength(0);
  });

  it('child loggers add bindings; fields override bindings', () => {
    const { logger, parsed } = capture();
    const child = logger.child({ service: 'embedder' }).child({ cameraId: 'c1' });
    child.info('x', { cameraId: 'c2' });
    expect(parsed()[0]).toMatchObject({ service: 'embedder', cameraId: 'c2' });
  });

  it('redacts fields named embedding/image/crop/descriptor by their shape', () => {
    const { logger, lines, parsed } = capture();
    const embedding = Array.from({ length: 128 }, (_, i) => i / 128);
    logger.info('face', {
      embedding,
      image: Buffer.alloc(4096, 7),
      Crop: { data: [1, 2] },
      descriptors: [new Float32Array(512), new Float32Array(512)],
      nested: { face: { embedding: [0.6, 0.8] } },
      box: [1, 2, 3, 4],
    });
    const l = parsed()[0]!;
    expect(l.embedding).toBe('[redacted number[128]]');
    expect(l.image).toBe('[redacted Buffer(4096 bytes)]');
    expect(l.Crop).toBe('[redacted object{1 keys}]');
    expect(l.descriptors).toBe('[redacted object[2]]');
    expect((l.nested as { face: { embedding: unknown } }).face.embedding).toBe('[redacted number[2]]');
    expect(l.box).toEqual([1, 2, 3, 4]); // short numeric arrays are fine
    expect(lines[0]).not.toContain('0.0078125'); // no element of the embedding leaked
  });

  it('redacts long numeric arrays, typed arrays and Buffers under any name', () => {
    const r = redact({
      vec: Array.from({ length: 17 }, () => 0.5),
      short: Array.from({ length: 16 }, () => 0.5),
      f32: new Float32Array(3),
      u8: new Uint8Array(10),
      ab: new ArrayBuffer(8),
      buf: Buffer.from('secret'),
      list: [[...Array(64).keys()]],
      big: 'x'.repeat(5000),
    }) as Record<string, unknown>;
    expect(r.vec).toBe('[redacted number[17]]');
    expect(r.short).toHaveLength(16);
    expect(r.f32).toBe('[redacted Float32Array(3)]');
    expect(r.u8).toBe('[redacted Uint8Array(10)]');
    expect(r.ab).toBe('[redacted ArrayBuffer(8 bytes)]');
    expect(r.buf).toBe('[redacted Buffer(6 bytes)]');
    expect(r.list).toEqual(['[redacted number[64]]']);
    expect(r.big).toBe('[redacted string(5000 chars)]');
  });

  it('serialises errors (FaceflowError code, retriable, details) and redacts inside them', () => {
    const { logger, parsed } = capture();
    const err = new FaceflowError('INVALID_IMAGE', 'bad jpeg', { details: { frameId: 'f1', image: Buffer.alloc(10) } });
    logger.error('failed', { err });
    const e = parsed()[0]!.err as Record<string, unknown>;
    expect(e).toMatchObject({ name: 'FaceflowError', message: 'bad jpeg', code: 'INVALID_IMAGE', retriable: false });
    expect(e.details).toEqual({ frameId: 'f1', image: '[redacted Buffer(10 bytes)]' });
    expect(typeof e.stack).toBe('string');
  });

  it('survives cycles, bigint, undefined, dates', () => {
    const a: Record<string, unknown> = { n: 1n, d: new Date(0), u: undefined };
    a.self = a;
    const { logger, parsed } = capture();
    logger.info('cyclic', { a });
    expect(parsed()[0]!.a).toEqual({ n: '1', d: '1970-01-01T00:00:00.000Z', self: '[circular]' });
  });

  it('redacts bindings too', () => {
    const { logger, parsed } = capture();
    logger.child({ image: Buffer.alloc(3) }).info('x');
    expect(parsed()[0]!.image).toBe('[redacted Buffer(3 bytes)]');
  });
});
