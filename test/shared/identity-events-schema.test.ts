/**
 * docs/identity-events.schema.json must describe what IdentityEventSchema (the codec the alerts service
 * writes with) actually encodes: every encoded event validates against the JSON Schema, the schema names
 * exactly the properties the encoder writes, and messages the JSON Schema rejects are rejected by the codec too.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { IDENTITY_EVENT_TYPES, IdentityEventSchema, type IdentityEvent } from '@faceflow/shared';
import { ROOT } from '../pipeline/fixtures.js';

const schema = JSON.parse(readFileSync(path.join(ROOT, 'docs/identity-events.schema.json'), 'utf8')) as { properties: Record<string, unknown>; required: string[] };
const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
const check = ajv.compile(schema);

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

function randomEvent(r: () => number, cluster = r() < 0.5): IdentityEvent {
  const start = 1_700_000_000_000 + Math.floor(r() * 1e10);
  const cams = ['lobby', 'door-1', 'site1/cam_2', 'cam:3@north', 'a.b'];
  const e: IdentityEvent = {
    type: IDENTITY_EVENT_TYPES[Math.floor(r() * 3)]!,
    trackId: `${cams[Math.floor(r() * cams.length)]}:${Math.floor(r() * 1e6)}`,
    identity: r() < 0.4 ? null : ['alice', 'Bob Smith', 'ünïcode-名前', 'x'.repeat(256)][Math.floor(r() * 4)]!,
    confidence: r() < 0.1 ? (r() < 0.5 ? 0 : 1) : r(),
    cameraId: cams[Math.floor(r() * cams.length)]!,
    startTs: start,
    endTs: start + Math.floor(r() * 60_000),
    thumbnailRef: r() < 0.5 ? null : `crops/${Math.floor(r() * 1e6)}.jpg`,
  };
  // issue 14: an unknown person's events may carry their recurring-stranger cluster
  if (cluster) {
    e.identity = null;
    e.unknownCluster = { id: `u${Math.floor(r() * 1e6)}`, members: 1 + Math.floor(r() * 50), firstSeen: start - 86_400_000, lastSeen: start - Math.floor(r() * 86_400_000) };
  }
  return e;
}

/** The optional properties: written only when they apply (issue 14's unknownCluster). */
const OPTIONAL = ['unknownCluster'];

describe('docs/identity-events.schema.json', () => {
  it('accepts every encoded IdentityEvent', () => {
    const r = rng(42);
    for (let i = 0; i < 500; i++) {
      const wire = JSON.parse(IdentityEventSchema.encode(randomEvent(r)).toString('utf8')) as unknown;
      if (!check(wire)) throw new Error(`${JSON.stringify(wire)}: ${ajv.errorsText(check.errors)}`);
    }
  });

  it('names exactly the properties the encoder writes, all of them required but the optional ones', () => {
    const wire = JSON.parse(IdentityEventSchema.encode(randomEvent(rng(1), true)).toString('utf8')) as Record<string, unknown>;
    expect(Object.keys(schema.properties).sort()).toEqual(Object.keys(wire).sort());
    expect([...schema.required].sort()).toEqual(Object.keys(wire).filter((k) => !OPTIONAL.includes(k)).sort());
    const plain = JSON.parse(IdentityEventSchema.encode(randomEvent(rng(1), false)).toString('utf8')) as Record<string, unknown>;
    expect([...schema.required].sort()).toEqual(Object.keys(plain).sort());
    expect(wire.schema).toBe(IdentityEventSchema.name);
    expect(wire.v).toBe(IdentityEventSchema.version);
  });

  it('rejects what the codec rejects', () => {
    const good = JSON.parse(IdentityEventSchema.encode(randomEvent(rng(7), false)).toString('utf8')) as Record<string, unknown>;
    const cluster = { id: 'u1', members: 2, firstSeen: good.startTs, lastSeen: good.startTs };
    const bad: Record<string, unknown>[] = [
      { ...good, type: 'appear' },
      { ...good, confidence: 1.5 },
      { ...good, confidence: -0.1 },
      { ...good, cameraId: 'front door' },
      { ...good, cameraId: '' },
      { ...good, trackId: '' },
      { ...good, trackId: 't'.repeat(257) },
      { ...good, identity: '' },
      { ...good, identity: 3 },
      { ...good, startTs: 1.5e12 + 0.5 },
      { ...good, startTs: 1_000 },
      { ...good, endTs: '1700000000000' },
      { ...good, schema: 'face' },
      { ...good, v: 2 },
      (({ identity: _, ...rest }) => rest)(good),
      (({ trackId: _, ...rest }) => rest)(good),
      { ...good, identity: 'alice', unknownCluster: cluster },
      { ...good, identity: null, unknownCluster: { ...cluster, members: 0 } },
      { ...good, identity: null, unknownCluster: { ...cluster, id: '' } },
      { ...good, identity: null, unknownCluster: (({ lastSeen: _, ...rest }) => rest)(cluster) },
    ];
    for (const b of bad) {
      expect({ msg: b, jsonSchema: check(b) }).toEqual({ msg: b, jsonSchema: false });
      expect(() => IdentityEventSchema.decode(Buffer.from(JSON.stringify(b)))).toThrow();
    }
  });
});
