import { describe, expect, it } from 'vitest';
import { FaceflowError } from '../errors.js';
import { AuditEventSchema, type AuditEvent } from './audit-event.js';
import { defineJsonSchema } from './codec.js';
import { FaceSchema, type Face } from './face.js';
import { FrameSchema, type Frame } from './frame.js';
import { GalleryChangeSchema } from './gallery-change.js';
import { IdentityEventSchema, type IdentityEvent } from './identity-event.js';
import { MatchSchema, type Match } from './match.js';
import { l2normalize } from './validate.js';

const TS = Date.UTC(2026, 0, 2, 3, 4, 5);

function thrown(fn: () => unknown): FaceflowError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FaceflowError);
    return e as FaceflowError;
  }
  throw new Error('expected a throw');
}

function json(buf: Buffer): Record<string, unknown> {
  return JSON.parse(buf.toString('utf8')) as Record<string, unknown>;
}

const embedding = l2normalize(Array.from({ length: 128 }, (_, i) => Math.sin(i + 1)));

const face: Face = {
  frameId: 'f-1',
  cameraId: 'cam-1',
  captureTs: TS,
  faceIndex: 0,
  box: { x: 10, y: 20, width: 100, height: 120 },
  landmarks: [
    [30, 40],
    [70, 40],
  ],
  score: 0.98,
  quality: 0.7,
  embedding,
  model: 'facenet-128@1',
};

describe('Frame (binary)', () => {
  const frame: Frame = { frameId: 'f-1', cameraId: 'cam-1', captureTs: TS, contentType: 'image/jpeg', image: Buffer.from([0xff, 0xd8, 0xff, 0x00, 0x01]) };

  it('round-trips with raw image bytes, no base64', () => {
    const buf = FrameSchema.encode({ ...frame, width: 640, height: 480 });
    expect(buf.subarray(0, 4).toString('ascii')).toBe('FFRM');
    expect(buf[4]).toBe(1);
    expect(buf.subarray(buf.length - 5)).toEqual(frame.image);
    const back = FrameSchema.decode(buf);
    expect(back).toEqual({ ...frame, width: 640, height: 480, image: Buffer.from(frame.image) });
    expect(Buffer.from(back.image)).toEqual(Buffer.from(frame.image));
  });

  it('carries recorded only when true, and refuses a recorded that is not a boolean', () => {
    expect(FrameSchema.decode(FrameSchema.encode({ ...frame, recorded: true })).recorded).toBe(true);
    expect('recorded' in FrameSchema.decode(FrameSchema.encode(frame))).toBe(false);
    expect(thrown(() => FrameSchema.encode({ ...frame, recorded: 'yes' } as unknown as Frame)).details.field).toBe('recorded');
  });

  it('is binary-safe for every byte value', () => {
    const image = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    expect(Buffer.from(FrameSchema.decode(FrameSchema.encode({ ...frame, image })).image)).toEqual(image);
  });

  it('decodes from a Uint8Array view with an offset', () => {
    const buf = FrameSchema.encode(frame);
    const big = new Uint8Array(buf.length + 10);
    big.set(buf, 10);
    expect(FrameSchema.decode(big.subarray(10)).frameId).toBe('f-1');
  });

  it('checks raw pixel sizes', () => {
    const raw = { ...frame, contentType: 'image/x-raw-rgb' as const, width: 2, height: 2 };
    expect(FrameSchema.decode(FrameSchema.encode({ ...raw, image: Buffer.alloc(12) })).width).toBe(2);
    expect(thrown(() => FrameSchema.encode({ ...raw, image: Buffer.alloc(11) })).details.field).toBe('image');
    expect(thrown(() => FrameSchema.encode({ ...raw, height: undefined, image: Buffer.alloc(12) } as Frame)).details.field).toBe('height');
  });

  it('names the bad field', () => {
    const e = thrown(() => FrameSchema.encode({ ...frame, cameraId: '' }));
    expect(e.code).toBe('INVALID_MESSAGE');
    expect(e.message).toContain('"cameraId"');
    expect(thrown(() => FrameSchema.encode({ ...frame, captureTs: 12 })).details.field).toBe('captureTs');
    expect(thrown(() => FrameSchema.encode({ ...frame, contentType: 'text/plain' } as unknown as Frame)).details.field).toBe('contentType');
    expect(thrown(() => FrameSchema.encode({ ...frame, image: Buffer.alloc(0) })).details.field).toBe('image');
  });

  it('rejects garbage, a truncated header and an unknown version', () => {
    expect(thrown(() => FrameSchema.decode(Buffer.from('hello world'))).code).toBe('INVALID_MESSAGE');
    const buf = FrameSchema.encode(frame);
    expect(thrown(() => FrameSchema.decode(buf.subarray(0, 12))).details.field).toBe('(header)');
    const v2 = Buffer.from(buf);
    v2[4] = 2;
    const e = thrown(() => FrameSchema.decode(v2));
    expect(e.code).toBe('SCHEMA_VERSION');
    expect(e.details.field).toBe('v');
    const badHeader = Buffer.from(buf);
    badHeader[9] = 0x78; // the header's '{' becomes 'x': not JSON any more
    const h = thrown(() => FrameSchema.decode(badHeader));
    expect(h.code).toBe('INVALID_MESSAGE');
    expect(h.details.field).toBe('(header)');
  });
});

describe('Face', () => {
  it('round-trips through the JSON envelope', () => {
    const buf = FaceSchema.encode({ ...face, cropRef: 's3://crops/f-1/0.jpg' });
    expect(json(buf)).toMatchObject({ schema: 'face', v: 1, frameId: 'f-1' });
    expect(FaceSchema.decode(buf)).toEqual({ ...face, cropRef: 's3://crops/f-1/0.jpg' });
  });

  it('drops unknown fields', () => {
    const buf = Buffer.from(JSON.stringify({ schema: 'face', v: 1, ...face, extra: 'x' }));
    expect(FaceSchema.decode(buf)).not.toHaveProperty('extra');
  });

  it('requires an L2-normalised embedding', () => {
    const e = thrown(() => FaceSchema.encode({ ...face, embedding: embedding.map((x) => x * 2) }));
    expect(e.code).toBe('INVALID_MESSAGE');
    expect(e.details.field).toBe('embedding');
    expect(e.message).toMatch(/L2-normalised \(norm is 2\.0000\)/);
    expect(thrown(() => FaceSchema.encode({ ...face, embedding: [] })).details.field).toBe('embedding');
    expect(thrown(() => FaceSchema.encode({ ...face, embedding: [NaN] })).details.field).toBe('embedding[0]');
  });

  it('names nested bad fields', () => {
    expect(thrown(() => FaceSchema.encode({ ...face, box: { ...face.box, width: 0 } })).details.field).toBe('box.width');
    expect(thrown(() => FaceSchema.encode({ ...face, landmarks: [[1, 2], [3]] as [number, number][] })).details.field).toBe('landmarks[1]');
    expect(thrown(() => FaceSchema.encode({ ...face, score: 1.5 })).details.field).toBe('score');
    expect(thrown(() => FaceSchema.encode({ ...face, faceIndex: 0.5 })).details.field).toBe('faceIndex');
    const { model: _m, ...noModel } = face;
    const e = thrown(() => FaceSchema.encode(noModel as Face));
    expect(e.message).toBe('face: field "model" is required');
  });

  it('carries an optional mask polygon in frame pixels, in v1 (a reader of v1 without it still reads the rest)', () => {
    const mask = { method: 'landmarks' as const, polygon: [[10, 20], [110, 20], [60, 140]] as [number, number][] };
    const buf = FaceSchema.encode({ ...face, mask });
    expect(json(buf)).toMatchObject({ v: 1, mask });
    expect(FaceSchema.decode(buf).mask).toEqual(mask);
    expect(FaceSchema.decode(FaceSchema.encode(face))).not.toHaveProperty('mask');
  });

  it('bounds the mask polygon: 3..512 pairs of finite numbers, a known method', () => {
    const poly = (n: number): [number, number][] => Array.from({ length: n }, (_, i) => [i, i % 7]);
    expect(thrown(() => FaceSchema.encode({ ...face, mask: { method: 'landmarks', polygon: poly(2) } })).details.field).toBe('mask.polygon');
    expect(thrown(() => FaceSchema.encode({ ...face, mask: { method: 'mesh', polygon: poly(513) } })).message).toMatch(/"mask.polygon" must have at most 512 items/);
    expect(FaceSchema.encode({ ...face, mask: { method: 'mesh', polygon: poly(512) } }).length).toBeGreaterThan(0);
    const nan = [...poly(3), [1, NaN]] as [number, number][];
    expect(thrown(() => FaceSchema.encode({ ...face, mask: { method: 'landmarks', polygon: nan } })).details.field).toBe('mask.polygon[3]');
    const bad = { ...json(FaceSchema.encode(face)), mask: { method: 'box', polygon: poly(3) } };
    expect(thrown(() => FaceSchema.decode(Buffer.from(JSON.stringify(bad)))).details.field).toBe('mask.method');
  });

  it('checks the envelope: JSON, schema name, version', () => {
    expect(thrown(() => FaceSchema.decode(Buffer.from('{nope'))).details.field).toBe('(json)');
    expect(thrown(() => FaceSchema.decode(Buffer.from('[1]'))).details.field).toBe('(root)');
    const asMatch = Buffer.from(JSON.stringify({ ...json(FaceSchema.encode(face)), schema: 'match' }));
    expect(thrown(() => FaceSchema.decode(asMatch)).details.field).toBe('schema');
    const v9 = Buffer.from(JSON.stringify({ ...json(FaceSchema.encode(face)), v: 9 }));
    const e = thrown(() => FaceSchema.decode(v9));
    expect(e.code).toBe('SCHEMA_VERSION');
    expect(e.message).toContain('field "v" is 9');
    const noV = Buffer.from(JSON.stringify({ ...json(FaceSchema.encode(face)), v: undefined }));
    expect(thrown(() => FaceSchema.decode(noV)).code).toBe('INVALID_MESSAGE');
  });
});

describe('Match', () => {
  const match: Match = {
    frameId: 'f-1',
    cameraId: 'cam-1',
    captureTs: TS,
    faceIndex: 0,
    trackId: 'cam-1/t-7',
    box: { x: 1, y: 2, width: 3, height: 4 },
    identity: 'alice',
    score: 0.81,
    candidates: [
      { identity: 'alice', score: 0.81 },
      { identity: 'bob', score: 0.42 },
    ],
    quality: 0.9,
    galleryVersion: 12,
  };

  it('round-trips, including an unknown face', () => {
    expect(MatchSchema.decode(MatchSchema.encode(match))).toEqual(match);
    const unknown = { ...match, identity: null, score: null, candidates: [] };
    expect(MatchSchema.decode(MatchSchema.encode(unknown))).toEqual(unknown);
  });

  it('requires candidates best first and identity present (null for unknown)', () => {
    expect(thrown(() => MatchSchema.encode({ ...match, candidates: [...match.candidates].reverse() })).details.field).toBe('candidates[1].score');
    const { identity: _i, ...noIdentity } = match;
    expect(thrown(() => MatchSchema.encode(noIdentity as Match)).message).toContain('use null for none');
  });

  it('an_unknown_tracks_recurring_stranger_cluster_is_optional_in_v1_and_checked_when_present', () => {
    const track = { identity: null, confidence: 0.7, startTs: TS - 1000, faces: 3, reason: 'above-threshold' };
    const withCluster: Match = { ...match, identity: null, track: { ...track, unknownCluster: { id: 'u3', members: 2, firstSeen: TS - 90_000, lastSeen: TS - 60_000 } } };
    expect(MatchSchema.decode(MatchSchema.encode(withCluster))).toEqual(withCluster);
    expect(MatchSchema.decode(MatchSchema.encode({ ...match, track }))).toEqual({ ...match, track });
    const backwards = { ...withCluster, track: { ...track, unknownCluster: { id: 'u3', members: 2, firstSeen: TS, lastSeen: TS - 1 } } };
    expect(thrown(() => MatchSchema.encode(backwards)).details.field).toBe('track.unknownCluster.lastSeen');
    const empty = { ...withCluster, track: { ...track, unknownCluster: { id: 'u3', members: 0, firstSeen: TS, lastSeen: TS } } };
    expect(thrown(() => MatchSchema.encode(empty)).details.field).toBe('track.unknownCluster.members');
  });
});

describe('IdentityEvent', () => {
  const ev: IdentityEvent = {
    type: 'enter',
    trackId: 't-1',
    identity: null,
    confidence: 0.4,
    cameraId: 'cam-1',
    startTs: TS,
    endTs: TS + 1500,
    thumbnailRef: null,
  };

  it('round-trips', () => {
    expect(IdentityEventSchema.decode(IdentityEventSchema.encode(ev))).toEqual(ev);
    const known = { ...ev, type: 'update' as const, identity: 'alice', thumbnailRef: 'thumbs/t-1.jpg' };
    expect(IdentityEventSchema.decode(IdentityEventSchema.encode(known))).toEqual(known);
  });

  it('checks type and time order', () => {
    expect(thrown(() => IdentityEventSchema.encode({ ...ev, type: 'leave' as 'exit' })).message).toContain('enter|update|exit');
    expect(thrown(() => IdentityEventSchema.encode({ ...ev, endTs: TS - 1 })).details.field).toBe('endTs');
  });
});

describe('GalleryChange', () => {
  it('round-trips and checks', () => {
    const c = { type: 'delete' as const, identity: 'bob', version: 3, ts: TS };
    expect(GalleryChangeSchema.decode(GalleryChangeSchema.encode(c))).toEqual(c);
    expect(thrown(() => GalleryChangeSchema.encode({ ...c, version: 0 })).details.field).toBe('version');
  });
});

describe('AuditEvent', () => {
  const ev: AuditEvent = { id: 'e1', ts: TS, action: 'gallery.enroll', outcome: 'ok', actorKind: 'api-key', actor: '0123456789abcdef', source: '10.0.0.7', service: 'matcher', gallery: 'faceflow:gallery:', identity: 'alice', version: 3 };
  it('round-trips, checks, and drops any field it does not define (an audit event never carries a template)', () => {
    expect(AuditEventSchema.decode(AuditEventSchema.encode(ev))).toEqual(ev);
    const withTemplate = { ...ev, embeddings: [[0.6, 0.8]] } as AuditEvent;
    expect(AuditEventSchema.encode(withTemplate).toString('utf8')).not.toContain('0.6');
    expect(thrown(() => AuditEventSchema.encode({ ...ev, action: 'gallery.peek' as AuditEvent['action'] })).details).toMatchObject({ field: 'action' });
    expect(thrown(() => AuditEventSchema.encode({ ...ev, outcome: 'failed', code: 'NOPE' as AuditEvent['code'] })).details).toMatchObject({ field: 'code' });
  });
});

describe('defineJsonSchema versioning', () => {
  it('upgrades older versions in place, and says when it cannot', () => {
    const v2 = defineJsonSchema('thing', 2, (r) => ({ fullName: r.string('fullName') }), {
      upgrade: { 1: (f) => ({ fullName: `${f.first as string} ${f.last as string}` }) },
    });
    const old = Buffer.from(JSON.stringify({ schema: 'thing', v: 1, first: 'Ada', last: 'Lovelace' }));
    expect(v2.decode(old)).toEqual({ fullName: 'Ada Lovelace' });
    const v3 = defineJsonSchema('thing', 3, (r) => ({ fullName: r.string('fullName') }));
    const e = thrown(() => v3.decode(old));
    expect(e.code).toBe('SCHEMA_VERSION');
    expect(e.message).toContain('no upgrade from v1');
  });
});
