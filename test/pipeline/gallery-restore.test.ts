/**
 * The gallery restored from its file after Redis came back empty (issue 12), against the real Redis (its own
 * random key prefix, deleted afterwards). Redis losing its data is what `drop()` leaves: the keys gone, the
 * version back to 0 (test/pipeline/redis-restart.test.ts kills a real redis-server under the services).
 *
 * The matcher's cache must keep serving the gallery it holds, at the version it holds (in matches and in the
 * gauges, at once), while re-enrolments trickle into the empty store, and take the gallery again, whole,
 * when the gallery file is imported.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exportGalleryFile, FaceSchema, importGalleryFile, MatchSchema, type ConsumedMessage, type HandlerContext } from '@faceflow/shared';
import { createMetrics } from '@faceflow/shared/ops';
import { RedisGalleryStore } from '@faceflow/shared/redis';
import { GalleryCache, MatcherStage } from '@faceflow/matcher';
import { person } from '../../services/matcher/src/embeddings.testkit.js';
import { redis, probeRedis, skipUnlessReachable, uniq, until } from '../shared/infra.js';

const probe = await probeRedis();
const skip = skipUnlessReachable(probe);
const prefix = `test:restore:${uniq()}:`;
const cleanups: (() => Promise<void>)[] = [];

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const ctx: HandlerContext = { signal: new AbortController().signal, heartbeat: async () => undefined, markProcessed: () => undefined };
let offset = 0;
function faceOf(embedding: number[]): ConsumedMessage {
  const n = offset++;
  const value = FaceSchema.encode({
    frameId: `f${n}`,
    cameraId: 'cam',
    captureTs: Date.UTC(2026, 0, 1) + n * 200,
    faceIndex: 0,
    box: { x: 100, y: 50, width: 80, height: 80 },
    landmarks: [],
    score: 0.9,
    quality: 0.8,
    embedding,
    model: 'test',
  });
  return { topic: 'faces', partition: 0, offset: String(n), key: 'cam', value, headers: {}, timestamp: Date.now() };
}

describe.skipIf(skip)('gallery restore from its file (real Redis)', () => {
  it('matcher_keeps_the_held_gallery_and_version_while_redis_is_empty_and_takes_the_imported_file_whole', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faceflow-restore-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const writer = await RedisGalleryStore.open({ ...redis, keyPrefix: prefix });
    cleanups.push(async () => {
      await writer.drop();
      await writer.close();
    });
    const reader = await RedisGalleryStore.open({ ...redis, keyPrefix: prefix });
    cleanups.push(() => reader.close());
    const [alice, bob, carol] = [person(1), person(2), person(3)];
    await writer.put('alice', [alice]);
    await writer.put('bob', [bob]);
    await writer.put('carol', [carol]);
    const metrics = createMetrics();
    const cache = new GalleryCache({ store: reader, model: 'test', metrics });
    await cache.start();
    cleanups.push(() => cache.close());
    const stage = new MatcherStage({ gallery: cache, matchesTopic: 'matches', threshold: 0.6 });
    const gauge = async (name: string): Promise<number> => Number(new RegExp(`^faceflow_${name} (\\S+)$`, 'm').exec(await metrics.metricsText())?.[1]);
    const match = async (embedding: number[]) => {
      const r = await stage.process([faceOf(embedding)], ctx);
      r.commit?.();
      return MatchSchema.decode(r.outputs[0]!.messages[0]!.value);
    };
    expect([cache.version, await gauge('gallery_version')]).toEqual([3, 3]);
    const backup = join(dir, 'gallery.json');
    await exportGalleryFile(writer, backup, { model: 'test' });

    await writer.drop(); // Redis back without its data
    await writer.put('bob', [bob]); // a re-enrolment into the empty store: version 1
    await cache.refresh();
    expect([cache.version, cache.size, cache.storeLost]).toEqual([3, 3, true]);
    expect([await gauge('gallery_version'), await gauge('gallery_identities'), await gauge('gallery_store_lost')]).toEqual([3, 3, 1]);
    const served = await match(carol);
    expect([served.galleryVersion, served.candidates[0]?.identity]).toEqual([3, 'carol']);

    // the file imported: version past the store's (1) and the file's (3), and every matcher reloads at once
    const imported = await importGalleryFile(writer, backup);
    expect(imported).toMatchObject({ version: 4, identities: 3, removed: [], model: 'test', fileVersion: 3 });
    await until(() => cache.version === 4, 10_000, 'the imported gallery in the cache');
    expect([cache.size, cache.storeLost]).toEqual([3, false]);
    expect([await gauge('gallery_version'), await gauge('gallery_identities'), await gauge('gallery_store_lost')]).toEqual([4, 3, 0]);
    expect((await match(alice)).galleryVersion).toBe(4);

    // and follows ordinary changes again
    await writer.delete('carol');
    await until(() => cache.version === 5, 10_000, 'the delete in the cache');
    expect(await gauge('gallery_identities')).toBe(2);
  });

  it('a_re_enrolment_that_brings_the_emptied_store_back_to_the_version_held_does_not_replace_the_held_gallery', async () => {
    const p = `test:restore:${uniq()}:`;
    const writer = await RedisGalleryStore.open({ ...redis, keyPrefix: p });
    cleanups.push(async () => {
      await writer.drop();
      await writer.close();
    });
    const reader = await RedisGalleryStore.open({ ...redis, keyPrefix: p });
    cleanups.push(() => reader.close());
    await writer.put('alice', [person(1)]);
    const cache = new GalleryCache({ store: reader, model: 'test' });
    await cache.start();
    cleanups.push(() => cache.close());
    await writer.drop();
    // version 1 again, before the cache looked: only the epoch tells this store from the one it loaded
    await writer.put('bob', [person(2)]);
    await until(() => cache.storeLost, 10_000, 'the cache to see the lost store');
    await cache.refresh();
    expect([cache.version, cache.size, cache.current?.names()]).toEqual([1, 1, ['alice']]);
  });
});
