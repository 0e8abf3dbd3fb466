/**
 * The gallery API's audit trail (issue 15, item 4): every call, allowed or refused, is one AuditEvent in the
 * log and on the audit topic, naming the API key by its id, the action, the identity, the client address and
 * the outcome, and never holding the key or a template.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditEventSchema, AuditTrail, MemoryGalleryStore, type AuditEvent, type OutgoingMessage } from '@faceflow/shared';
import { createLogger, createMetrics, startOpsServer, type OpsServer } from '@faceflow/shared/ops';
import { galleryApi, sha256Hex } from './gallery-api.js';

const KEY = 'the-api-key-of-the-enrolment-desk';
const embedding = Array.from({ length: 8 }, (_, i) => (i === 0 ? 1 : 0) * 0.6 + (i === 1 ? 0.8 : 0));
const published: OutgoingMessage[] = [];
const lines: string[] = [];
let server: OpsServer;
let base = '';

beforeAll(async () => {
  const logger = createLogger({ level: 'info', sink: (l) => lines.push(l) });
  const trail = new AuditTrail({ logger, service: 'matcher', topic: 'faceflow.audit', bus: { publish: async (_t, m) => void published.push(...m) } });
  server = await startOpsServer({
    port: 0,
    host: '127.0.0.1',
    metrics: createMetrics(),
    logger,
    handle: galleryApi({ store: new MemoryGalleryStore(), keyDigests: [sha256Hex(KEY)], embedder: async () => ({ embedLargestFace: async () => embedding }), logger, audit: { trail, gallery: 'faceflow:gallery:' } }),
  });
  base = `http://127.0.0.1:${server.port}/v1/identities`;
});
afterAll(async () => {
  await server.close();
});

const events = (): AuditEvent[] => published.map((m) => AuditEventSchema.decode(m.value));

describe('gallery API audit trail', () => {
  it('every_gallery_api_call_is_audited_with_who_what_when_where_and_never_the_key_or_a_template', async () => {
    const auth = { authorization: `Bearer ${KEY}` };
    expect((await fetch(base, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await fetch(`${base}/alice`, { method: 'PUT', headers: auth, body: Buffer.from('a photo') })).status).toBe(200);
    expect((await fetch(base, { headers: auth })).status).toBe(200);
    expect((await fetch(`${base}/nobody`, { method: 'DELETE', headers: auth })).status).toBe(404);
    expect((await fetch(`${base}/alice`, { method: 'DELETE', headers: auth })).status).toBe(200);
    const keyId = sha256Hex(KEY).slice(0, 16);
    expect(events().map((e) => [e.action, e.outcome, e.actor, e.identity, e.code, e.version])).toEqual([
      ['gallery.list', 'denied', sha256Hex('wrong').slice(0, 16), undefined, 'UNAUTHORIZED', undefined],
      ['gallery.enroll', 'ok', keyId, 'alice', undefined, 1],
      ['gallery.list', 'ok', keyId, undefined, undefined, 1],
      ['gallery.delete', 'failed', keyId, 'nobody', 'NOT_FOUND', undefined],
      ['gallery.delete', 'ok', keyId, 'alice', undefined, 2],
    ]);
    for (const e of events()) expect(e).toMatchObject({ service: 'matcher', gallery: 'faceflow:gallery:', actorKind: 'api-key', source: '127.0.0.1', ts: expect.any(Number) as unknown });
    expect(published.every((m) => m.key === 'faceflow:gallery:')).toBe(true);
    // the service log holds the same events, and neither it nor the topic holds the key or the embedding
    const logged = lines.filter((l) => l.includes('"msg":"audit"'));
    expect(logged).toHaveLength(5);
    const everything = [...lines, ...published.map((m) => m.value.toString('utf8'))].join('\n');
    expect(everything).not.toContain(KEY);
    expect(everything).not.toContain(JSON.stringify(embedding));
    expect(everything).not.toContain('0.6,0.8');
  });
});
