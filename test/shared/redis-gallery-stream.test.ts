/**
 * Loading a large gallery from the real Redis in batches (issue 14): RedisGalleryStore.snapshotStream reads
 * with HSCAN (bounded replies), and the matcher's GalleryCache fills its index from the batches while the
 * changes made meanwhile are applied after, so it ends at the store's state. Own key prefix, dropped after.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { type GalleryIdentity } from '@faceflow/shared';
import { RedisGalleryStore } from '@faceflow/shared/redis';
import { GalleryCache } from '../../services/matcher/src/gallery-cache.js';
import { person } from '../../services/matcher/src/embeddings.testkit.js';
import { redis, probeRedis, skipUnlessReachable, uniq, until } from './infra.js';

const probe = await probeRedis();
const skip = skipUnlessReachable(probe);
const stores: RedisGalleryStore[] = [];
const open = async (keyPrefix: string): Promise<RedisGalleryStore> => {
  const s = await RedisGalleryStore.open({ ...redis, keyPrefix });
  stores.push(s);
  return s;
};

afterAll(async () => {
  if (skip || !probe.ok) return;
  for (const s of stores) await s.drop().catch(() => undefined);
  for (const s of stores) await s.close().catch(() => undefined);
});

const identities = (n: number): GalleryIdentity[] => Array.from({ length: n }, (_, i) => ({ id: `p${i}`, embeddings: [person(1000 + i)], metadata: {}, updatedAt: 1 }));

describe.skipIf(skip)('large gallery from Redis in batches (issue 14)', () => {
  it('a_streamed_snapshot_returns_every_identity_once_in_bounded_batches_with_the_version', async () => {
    const store = await open(`test:gallery:${uniq()}:`);
    await store.replace({ identities: identities(3000) });
    const batches: number[] = [];
    const seen = new Map<string, number>();
    const head = await store.snapshotStream((b) => {
      batches.push(b.length);
      for (const i of b) seen.set(i.id, i.embeddings[0]!.length);
    }, { batchSize: 200 });
    expect(head.version).toBe(await store.version());
    expect(head.imported).toBe(head.version);
    expect(seen.size).toBe(3000);
    expect(batches.length).toBeGreaterThan(3000 / 1000); // many small replies, not one
    expect(Math.max(...batches)).toBeLessThan(3000);
  });

  it('a_listing_of_a_large_gallery_takes_bounded_replies_and_equals_the_snapshot', async () => {
    const store = await open(`test:gallery:${uniq()}:`);
    await store.replace({ identities: identities(3000) });
    // every Redis command the listing sends, by name (ioredis's sendCommand is the one path)
    const client = (store as unknown as { redis: { sendCommand(c: { name: string }): unknown } }).redis;
    const sent: string[] = [];
    const original = client.sendCommand.bind(client);
    client.sendCommand = (c: { name: string }) => (sent.push(c.name.toLowerCase()), original(c));
    let listed: GalleryIdentity[];
    try {
      listed = await store.list();
    } finally {
      client.sendCommand = original;
    }
    expect(sent).not.toContain('hgetall');
    expect(sent.filter((n) => n === 'hscan').length).toBeGreaterThan(1);
    const snapshot = (await store.snapshot()).identities;
    expect(listed.map((i) => i.id)).toEqual(snapshot.map((i) => i.id));
    expect(listed.length).toBe(3000);
    expect(listed[7]!.embeddings).toEqual(snapshot[7]!.embeddings);
  });

  /** A gallery of 3000 in Redis, read through `store`, written through `writer` (same prefix). */
  const seeded = async (): Promise<{ store: RedisGalleryStore; writer: RedisGalleryStore }> => {
    const prefix = `test:gallery:${uniq()}:`;
    const store = await open(prefix);
    const writer = await open(prefix);
    await store.replace({ identities: identities(3000) });
    return { store, writer };
  };

  it('the_matcher_loads_a_streamed_gallery_and_serves_the_changes_made_while_it_loaded', async () => {
    const { store, writer } = await seeded();
    let batches = 0;
    let writes: Promise<unknown> | undefined;
    const streaming = store.snapshotStream.bind(store);
    // a writer enrols and deletes between the first batches of the load
    store.snapshotStream = (onBatch, o) =>
      streaming((b) => {
        if (batches++ === 1) writes = (async () => {
          await writer.put('newcomer', [person(7)]);
          await writer.delete('p5');
          await writer.put('p6', [person(8)]);
        })();
        onBatch(b);
      }, o);
    const cache = new GalleryCache({ store, batchSize: 200, search: { method: 'int8' } });
    await cache.start();
    await writes;
    await until(async () => cache.version === (await store.version()), 10_000, 'the changes applied');
    const g = cache.current!;
    expect(batches).toBeGreaterThan(3);
    expect(g.size).toBe(3000);
    expect(g.has('p5')).toBe(false);
    expect(g.search(Float32Array.from(person(7)), 1)[0]!.name).toBe('newcomer');
    expect(g.search(Float32Array.from(person(8)), 1)[0]!.name).toBe('p6');
    expect(g.embeddingsOf('p6')).toHaveLength(1);
    await cache.close();
  });

  it('the_matcher_builds_its_ivf_index_once_on_the_whole_streamed_gallery', async () => {
    const store = await open(`test:gallery:${uniq()}:`);
    await store.replace({ identities: identities(3000) });
    const cache = new GalleryCache({ store, batchSize: 200, search: { method: 'ivf' } });
    await cache.start();
    await cache.current!.whenSearchReady();
    expect(cache.current!.ivfLists?.trainedRows).toBe(3000);
    await cache.close();
  });

  it('an_enrolment_and_a_delete_made_once_the_gallery_is_held_are_applied_as_row_changes_without_a_reload', async () => {
    const { store, writer } = await seeded();
    let reads = 0;
    const streaming = store.snapshotStream.bind(store);
    store.snapshotStream = (onBatch, o) => {
      reads++;
      return streaming(onBatch, o);
    };
    const cache = new GalleryCache({ store, batchSize: 500, search: { method: 'int8' } });
    await cache.start();
    const held = cache.current;
    const enrolled = await writer.put('newcomer', [person(7)]);
    await until(async () => cache.version === enrolled.version, 10_000, 'the enrolment applied');
    const deleted = (await writer.delete('p9'))!;
    await until(async () => cache.version === deleted.version, 10_000, 'the delete applied');
    expect(reads).toBe(1); // the load only: each change was one row change, not a reload
    expect(cache.current).toBe(held);
    expect([cache.size, held!.has('p9'), held!.search(Float32Array.from(person(7)), 1)[0]!.name]).toEqual([3000, false, 'newcomer']);
    await cache.close();
  });
});
