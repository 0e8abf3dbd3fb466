/**
 * The clusters API (issue 14 item 3): recurring-stranger clusters listed and shown without embeddings, and a
 * cluster enrolled as an identity through the gallery store (its kept member embeddings, audited as
 * gallery.enroll), after which it leaves the clusterer; the gallery API's keys, refused without one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnknownClusterer } from '@faceflow/engine/match';
import { AuditEventSchema, AuditTrail, MemoryGalleryStore, type OutgoingMessage } from '@faceflow/shared';
import { createLogger, createMetrics, sha256Hex, startOpsServer, type OpsServer } from '@faceflow/shared/ops';
import { clustersApi } from './clusters-api.js';
import { near, person } from './embeddings.testkit.js';

const KEY = 'the-key-of-the-operations-desk';
const auth = { authorization: `Bearer ${KEY}` };
const published: OutgoingMessage[] = [];
const servers: OpsServer[] = [];
const logger = createLogger({ level: 'silent' });

async function serve(handle: Parameters<typeof clustersApi>[0]): Promise<string> {
  const s = await startOpsServer({ port: 0, host: '127.0.0.1', metrics: createMetrics(), logger, handle: clustersApi(handle) });
  servers.push(s);
  return `http://127.0.0.1:${s.port}/v1/clusters`;
}

/** a clusterer holding two strangers: A seen 3 times (cameras c1, c1, c2), B once */
function strangers(): UnknownClusterer {
  const c = new UnknownClusterer({ threshold: 0.6, idPrefix: 'u' });
  const a = person(1);
  c.add({ id: 't1', embedding: Float32Array.from(near(a, 1, 0.1)), at: 1000, camera: 'c1' });
  c.add({ id: 't2', embedding: Float32Array.from(near(a, 2, 0.1)), at: 2000, camera: 'c1' });
  c.add({ id: 't3', embedding: Float32Array.from(near(a, 3, 0.1)), at: 3000, camera: 'c2' });
  c.add({ id: 't4', embedding: Float32Array.from(person(2)), at: 4000, camera: 'c2' });
  return c;
}

let store: MemoryGalleryStore;
let clusterer: UnknownClusterer;
let base = '';
let noKeys = '';
let off = '';

beforeAll(async () => {
  store = new MemoryGalleryStore();
  clusterer = strangers();
  const trail = new AuditTrail({ logger, service: 'matcher', topic: 'faceflow.audit', bus: { publish: async (_t, m) => void published.push(...m) } });
  base = await serve({ clusterer, store, keyDigests: [sha256Hex(KEY)], logger, audit: { trail, gallery: 'faceflow:gallery:' } });
  noKeys = await serve({ clusterer: strangers(), store, keyDigests: [] });
  off = await serve({ clusterer: undefined, store, keyDigests: [sha256Hex(KEY)] });
});
afterAll(async () => {
  for (const s of servers) await s.close();
});

const enrol = (id: string, body: unknown, url = base) => fetch(`${url}/${encodeURIComponent(id)}/enrol`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('clusters API', () => {
  it('clusters_are_listed_and_shown_with_counts_times_and_cameras_never_embeddings', async () => {
    const list = await fetch(base, { headers: auth });
    expect(list.status).toBe(200);
    const text = await list.text();
    const body = JSON.parse(text) as { clustering: boolean; clusters: Record<string, unknown>[] };
    expect(body.clustering).toBe(true);
    expect(body.clusters.map((c) => [c.id, c.members, c.firstSeen, c.lastSeen, c.cameras])).toEqual([
      ['u1', 3, 1000, 3000, { c1: 2, c2: 1 }],
      ['u2', 1, 4000, 4000, { c2: 1 }],
    ]);
    expect(text).not.toMatch(/embedding|centroid/);
    const one = await fetch(`${base}/u2`, { headers: auth });
    expect(await one.json()).toEqual({ id: 'u2', members: 1, firstSeen: 4000, lastSeen: 4000, cameras: { c2: 1 }, mergedFrom: [] });
  });

  it('an_unknown_cluster_is_a_404_in_one_line_and_changes_nothing', async () => {
    for (const r of [await fetch(`${base}/u99`, { headers: auth }), await enrol('u99', { name: 'alice' })]) {
      expect(r.status).toBe(404);
      const { error } = (await r.json()) as { error: { code: string; message: string } };
      expect(error.code).toBe('NOT_FOUND');
      expect(error.message).toMatch(/no cluster "u99".*faceflow clusters list/);
      expect(error.message).not.toContain('\n');
    }
    expect(await store.list()).toEqual([]);
    const off404 = await fetch(`${off}/u1`, { headers: auth });
    expect(off404.status).toBe(404);
    expect(((await off404.json()) as { error: { message: string } }).error.message).toMatch(/does not cluster.*FACEFLOW_UNKNOWN_CLUSTER_RETENTION=0/);
    expect(await (await fetch(off, { headers: auth })).json()).toEqual({ clustering: false, clusters: [] });
  });

  it('every_call_needs_a_gallery_api_key_and_none_configured_refuses_all', async () => {
    for (const [url, headers] of [[base, {}], [base, { authorization: 'Bearer wrong' }], [noKeys, auth]] as const) {
      expect((await fetch(url, { headers })).status).toBe(401);
      expect((await fetch(`${url}/u1`, { headers })).status).toBe(401);
      expect((await fetch(`${url}/u1/enrol`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: '{"name":"x"}' })).status).toBe(401);
    }
    expect(await store.list()).toEqual([]);
    expect(clusterer.size).toBe(2);
  });

  it('a_bad_name_is_a_400_naming_the_rule_and_changes_nothing', async () => {
    for (const body of [{ name: '' }, { name: 'a\u0001b' }, { name: 'x'.repeat(257) }, {}, { name: 7 }]) {
      const r = await enrol('u1', body);
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/^name: identity id must be 1\.\.256 characters without control characters/);
    }
    const notJson = await fetch(`${base}/u1/enrol`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: 'alice' });
    expect(notJson.status).toBe(400);
    expect(await store.list()).toEqual([]);
    expect(clusterer.size).toBe(2);
  });

  it('naming_a_cluster_enrols_its_kept_member_embeddings_audited_then_removes_it', async () => {
    const kept = clusterer.get('u1')!.embeddings;
    const r = await enrol('u1', { name: 'visitor-7' });
    expect(r.status).toBe(200);
    const body = (await r.json()) as { cluster: string; identity: string; embeddings: number; version: number };
    expect(body).toMatchObject({ cluster: 'u1', identity: 'visitor-7', embeddings: 3 });
    const enrolled = await store.get('visitor-7');
    expect(enrolled!.embeddings.length).toBe(3);
    enrolled!.embeddings.forEach((e, i) => e.forEach((x, j) => expect(x).toBeCloseTo(kept[i]![j]!, 6)));
    expect(body.version).toBe(await store.version());
    expect(clusterer.get('u1')).toBeUndefined();
    expect(clusterer.list().map((c) => c.id)).toEqual(['u2']);
    const events = published.map((m) => AuditEventSchema.decode(m.value)).filter((e) => e.outcome === 'ok');
    expect(events.at(-1)).toMatchObject({ action: 'gallery.enroll', outcome: 'ok', identity: 'visitor-7', version: body.version, actorKind: 'api-key' });
    expect(JSON.stringify(events)).not.toContain(KEY);
    expect((await fetch(`${base}/u1`, { headers: auth })).status).toBe(404);
  });

  it('a_cluster_named_after_an_enrolled_identity_is_refused_unless_appended', async () => {
    const before = await store.get('visitor-7');
    const r = await enrol('u2', { name: 'visitor-7' });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/already enrolled.*"mode": "append"/);
    expect(await store.get('visitor-7')).toEqual(before);
    expect(clusterer.size).toBe(1);
    const appended = await enrol('u2', { name: 'visitor-7', mode: 'append' });
    expect(appended.status).toBe(200);
    expect((await store.get('visitor-7'))!.embeddings.length).toBe(4);
    expect(clusterer.size).toBe(0);
  });
});
