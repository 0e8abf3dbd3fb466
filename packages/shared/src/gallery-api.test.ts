/**
 * The gallery API (issue 15 item 4, issue 13): every call, allowed or refused, is one AuditEvent in the log
 * and on the audit topic, naming the API key by its id, the action, the identity, the client address and the
 * outcome, and never holding the key or a template. The matcher's API manages the gallery and enrols by
 * embedding (it runs no model); the embedder's enrols by image.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditEventSchema, AuditTrail, MemoryGalleryStore, type AuditEvent, type OutgoingMessage } from './index.js';
import { createLogger, createMetrics, startOpsServer, type OpsServer } from './ops.js';
import { galleryApi, sha256Hex } from './gallery-api.js';

const KEY = 'the-api-key-of-the-enrolment-desk';
const embedding = Array.from({ length: 8 }, (_, i) => (i === 0 ? 1 : 0) * 0.6 + (i === 1 ? 0.8 : 0));
const published: OutgoingMessage[] = [];
const lines: string[] = [];
const servers: OpsServer[] = [];
const store = new MemoryGalleryStore();
let matcher = '';
let embedder = '';

beforeAll(async () => {
  const logger = createLogger({ level: 'info', sink: (l) => lines.push(l) });
  const audit = (service: string) => ({ trail: new AuditTrail({ logger, service, topic: 'faceflow.audit', bus: { publish: async (_t, m) => void published.push(...m) } }), gallery: 'faceflow:gallery:' });
  const serve = async (handle: Parameters<typeof startOpsServer>[0]['handle']): Promise<string> => {
    const s = await startOpsServer({ port: 0, host: '127.0.0.1', metrics: createMetrics(), logger, handle });
    servers.push(s);
    return `http://127.0.0.1:${s.port}/v1/identities`;
  };
  matcher = await serve(galleryApi({ store, keyDigests: [sha256Hex(KEY)], manage: true, model: 'm1', imageEnrolmentAt: 'http://embedder:8080', logger, audit: audit('matcher') }));
  embedder = await serve(galleryApi({ store, keyDigests: [sha256Hex(KEY)], embedImage: async () => embedding, logger, audit: audit('embedder') }));
});
afterAll(async () => {
  for (const s of servers) await s.close();
});

const events = (): AuditEvent[] => published.map((m) => AuditEventSchema.decode(m.value));
const auth = { authorization: `Bearer ${KEY}` };

describe('gallery API', () => {
  it('every_gallery_api_call_is_audited_with_who_what_when_where_and_never_the_key_or_a_template', async () => {
    published.length = 0;
    expect((await fetch(matcher, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await fetch(`${embedder}/alice`, { method: 'PUT', headers: auth, body: Buffer.from('a photo') })).status).toBe(200);
    expect((await fetch(matcher, { headers: auth })).status).toBe(200);
    expect((await fetch(`${matcher}/nobody`, { method: 'DELETE', headers: auth })).status).toBe(404);
    expect((await fetch(`${matcher}/alice`, { method: 'DELETE', headers: auth })).status).toBe(200);
    const keyId = sha256Hex(KEY).slice(0, 16);
    expect(events().map((e) => [e.service, e.action, e.outcome, e.actor, e.identity, e.code, e.version])).toEqual([
      ['matcher', 'gallery.list', 'denied', sha256Hex('wrong').slice(0, 16), undefined, 'UNAUTHORIZED', undefined],
      ['embedder', 'gallery.enroll', 'ok', keyId, 'alice', undefined, 1],
      ['matcher', 'gallery.list', 'ok', keyId, undefined, undefined, 1],
      ['matcher', 'gallery.delete', 'failed', keyId, 'nobody', 'NOT_FOUND', undefined],
      ['matcher', 'gallery.delete', 'ok', keyId, 'alice', undefined, 2],
    ]);
    for (const e of events()) expect(e).toMatchObject({ gallery: 'faceflow:gallery:', actorKind: 'api-key', source: '127.0.0.1', ts: expect.any(Number) as unknown });
    // a deletion that happened is the erasure's tombstone (issue 15 item 3): downstream consumers erase the person
    expect(events().map((e) => e.tombstone)).toEqual([undefined, undefined, undefined, undefined, true]);
    expect(published.every((m) => m.key === 'faceflow:gallery:')).toBe(true);
    // the service log holds the same events, and neither it nor the topic holds the key or the embedding
    const logged = lines.filter((l) => l.includes('"msg":"audit"'));
    expect(logged).toHaveLength(5);
    const everything = [...lines, ...published.map((m) => m.value.toString('utf8'))].join('\n');
    expect(everything).not.toContain(KEY);
    expect(everything).not.toContain(JSON.stringify(embedding));
    expect(everything).not.toContain('0.6,0.8');
  });

  it('the_matcher_runs_no_model_it_enrols_embeddings_of_its_model_and_sends_photos_to_the_embedder', async () => {
    const photo = await fetch(`${matcher}/bob`, { method: 'PUT', headers: auth, body: Buffer.from('a photo') });
    expect(photo.status).toBe(400);
    expect(((await photo.json()) as { error: { message: string } }).error.message).toMatch(/runs no model: enrol a photo at the embedder service's \/v1\/identities\/<id> \(http:\/\/embedder:8080\)/);
    const json = { ...auth, 'content-type': 'application/json' };
    const ok = await fetch(`${matcher}/bob?mode=append`, { method: 'PUT', headers: json, body: JSON.stringify({ model: 'm1', embeddings: [embedding], metadata: { desk: 'a' } }) });
    expect(ok.status).toBe(200);
    expect(await store.get('bob')).toMatchObject({ embeddings: [embedding], metadata: { desk: 'a' } });
    const other = await fetch(`${matcher}/bob`, { method: 'PUT', headers: json, body: JSON.stringify({ model: 'm2', embeddings: [embedding] }) });
    expect(other.status).toBe(400);
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe('GALLERY_FORMAT');
    expect((await fetch(`${matcher}/bob`, { method: 'PUT', headers: json, body: '{"model": "m1"}' })).status).toBe(400);
    expect((await fetch(`${matcher}/bob`, { method: 'PUT', headers: json, body: 'not json' })).status).toBe(400);
  });

  it('bad_input_at_the_matcher_api_is_a_one_line_400_or_404_and_changes_nothing', async () => {
    // issue 14: a wrong-dimension embedding, a NaN (JSON has none: it arrives as null, or as a body that is not JSON), an unknown name
    const json = { ...auth, 'content-type': 'application/json' };
    await store.put('carol', [embedding]);
    const before = { version: await store.version(), ids: (await store.list()).map((i) => i.id) };
    const dim4 = [0.6, 0.8, 0, 0];
    const nulled = embedding.map((x, i) => (i === 2 ? null : x));
    const cases: Array<[string, RequestInit, number, string, RegExp]> = [
      ['carol', { method: 'PUT', headers: json, body: JSON.stringify({ model: 'm1', embeddings: [dim4] }) }, 400, 'INVALID_ARGUMENT', /identity "carol": embeddings\[0\] has dimension 4, the gallery's is 8/],
      ['dave', { method: 'PUT', headers: json, body: JSON.stringify({ model: 'm1', embeddings: [dim4] }) }, 400, 'INVALID_ARGUMENT', /identity "dave": embeddings(\[0\])? ha(s|ve) dimension 4, the gallery's is 8/],
      ['carol', { method: 'PUT', headers: json, body: JSON.stringify({ model: 'm1', embeddings: [embedding, dim4] }) }, 400, 'INVALID_ARGUMENT', /embeddings\[1\] has dimension 4/],
      ['carol', { method: 'PUT', headers: json, body: JSON.stringify({ model: 'm1', embeddings: [nulled] }) }, 400, 'INVALID_ARGUMENT', /embeddings\[0\] must hold finite numbers only/],
      ['carol', { method: 'PUT', headers: json, body: `{"model": "m1", "embeddings": [[NaN, ${embedding.slice(1).join(', ')}]]}` }, 400, 'INVALID_ARGUMENT', /the body is not JSON/],
      ['nobody', { method: 'DELETE', headers: auth }, 404, 'NOT_FOUND', /^no identity "nobody" in the gallery: nothing erased/],
    ];
    for (const [id, init, status, code, message] of cases) {
      const res = await fetch(`${matcher}/${id}`, init);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect([res.status, body.error.code]).toEqual([status, code]);
      expect(body.error.message).toMatch(message);
      expect(body.error.message).not.toContain('\n');
    }
    expect({ version: await store.version(), ids: (await store.list()).map((i) => i.id) }).toEqual(before);
    expect((await store.get('carol'))?.embeddings).toEqual([embedding]);
  });

  it('the_embedder_serves_enrolment_by_image_only', async () => {
    expect((await fetch(embedder, { headers: auth })).status).toBe(404);
    expect((await fetch(`${embedder}/bob`, { method: 'DELETE', headers: auth })).status).toBe(404);
    const json = await fetch(`${embedder}/bob`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' });
    expect(json.status).toBe(400);
  });

  it('without_api_keys_or_a_store_every_call_is_refused', async () => {
    const s = await startOpsServer({ port: 0, host: '127.0.0.1', metrics: createMetrics(), logger: createLogger({ level: 'silent' }), handle: galleryApi({ store: undefined, keyDigests: [sha256Hex(KEY)], embedImage: async () => embedding }) });
    servers.push(s);
    expect((await fetch(`http://127.0.0.1:${s.port}/v1/identities/x`, { method: 'PUT', headers: auth, body: 'x' })).status).toBe(401);
  });
});
