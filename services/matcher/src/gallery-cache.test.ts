import { describe, expect, it } from 'vitest';
import { MemoryGalleryStore, type GalleryListener, type GalleryStore } from '@faceflow/shared';
import { createMetrics } from '@faceflow/shared/ops';
import { GalleryCache } from './gallery-cache.js';
import { person } from './embeddings.testkit.js';

/** A store whose contents can be lost at once, like a Redis restarted without persistence. */
function losableStore(): { store: GalleryStore; lose(): void; inner(): MemoryGalleryStore } {
  let inner = new MemoryGalleryStore();
  const listeners = new Set<GalleryListener>();
  const follow = (s: MemoryGalleryStore): void => void s.subscribe((c) => listeners.forEach((l) => l(c)));
  follow(inner);
  const store = new Proxy(inner, {
    get(_t, prop) {
      if (prop === 'subscribe') {
        return async (l: GalleryListener) => {
          listeners.add(l);
          return async () => void listeners.delete(l);
        };
      }
      const v = (inner as unknown as Record<string | symbol, unknown>)[prop];
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(inner) : v;
    },
  }) as GalleryStore;
  return {
    store,
    lose() {
      inner = new MemoryGalleryStore();
      follow(inner);
    },
    inner: () => inner,
  };
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 10));

describe('GalleryCache', () => {
  it('keeps_serving_the_held_gallery_at_its_version_when_the_store_comes_back_empty_until_an_import_restores_it', async () => {
    const alice = person(1);
    const bob = person(2);
    const s = losableStore();
    await s.store.put('alice', [alice]);
    await s.store.put('bob', [bob]);
    const cache = new GalleryCache({ store: s.store });
    await cache.start();
    expect([cache.version, cache.size]).toEqual([2, 2]);

    s.lose(); // Redis restarted without its data
    await cache.refresh();
    // still matching with what it held, and reporting the version in use (issue 12: it read 0)
    expect([cache.version, cache.size, cache.storeLost]).toEqual([2, 2, true]);
    expect(cache.current?.search(Float32Array.from(alice), 1)[0]?.name).toBe('alice');

    // re-enrolments into the lost store hold part of the gallery at best: none replaces the one held
    await s.inner().put('alice', [alice]);
    await tick();
    await s.inner().put('carol', [person(3)]);
    await tick();
    await cache.refresh();
    expect([cache.version, cache.size, cache.storeLost]).toEqual([2, 2, true]);
    expect(cache.current?.search(Float32Array.from(bob), 1)[0]?.name).toBe('bob');

    // the gallery file imported: a whole gallery again, taken at once
    const id = (name: string, v: number[]) => ({ id: name, embeddings: [v], metadata: {}, updatedAt: 1 });
    await s.inner().replace({ identities: [id('alice', alice), id('bob', bob), id('dave', person(4))], version: 2 });
    await tick();
    expect([cache.version, cache.size, cache.storeLost]).toEqual([3, 3, false]);
    await s.inner().put('erin', [person(5)]);
    await tick();
    expect([cache.version, cache.size]).toEqual([4, 4]);
    await cache.close();
  });

  it('a_re_enrolment_into_the_lost_store_before_the_loss_is_noticed_does_not_drop_the_held_gallery', async () => {
    const s = losableStore();
    await s.store.put('alice', [person(1)]);
    await s.store.put('bob', [person(2)]);
    await s.store.put('carol', [person(3)]);
    const cache = new GalleryCache({ store: s.store });
    await cache.start();
    s.lose();
    await s.inner().put('bob', [person(2)]); // version 1 of a new count, below the 3 held
    await tick();
    await cache.refresh();
    expect([cache.version, cache.size, cache.storeLost]).toEqual([3, 3, true]);
    await cache.close();
  });

  it('gallery_gauges_follow_every_change_without_waiting_for_the_refresh', async () => {
    const metrics = createMetrics();
    const store = new MemoryGalleryStore();
    const cache = new GalleryCache({ store, metrics });
    await cache.start();
    const gauges = async (): Promise<string[]> => (await metrics.metricsText()).split('\n').filter((l) => /^faceflow_gallery_(version|identities|store_lost) /.test(l));
    expect(await gauges()).toEqual(['faceflow_gallery_version 0', 'faceflow_gallery_identities 0', 'faceflow_gallery_store_lost 0']);
    await store.put('alice', [person(1)]);
    await store.put('bob', [person(2)]);
    await tick();
    expect(await gauges()).toEqual(['faceflow_gallery_version 2', 'faceflow_gallery_identities 2', 'faceflow_gallery_store_lost 0']);
    await store.delete('alice');
    await tick();
    expect(await gauges()).toEqual(['faceflow_gallery_version 3', 'faceflow_gallery_identities 1', 'faceflow_gallery_store_lost 0']);
    await cache.close();
  });

  it('empties when its identities are deleted (the version moves on)', async () => {
    const s = losableStore();
    await s.store.put('alice', [person(1)]);
    const cache = new GalleryCache({ store: s.store });
    await cache.start();
    await s.store.delete('alice');
    await tick();
    await cache.refresh();
    expect(cache.current).toBeUndefined();
    expect(cache.version).toBe(2);
    await cache.close();
  });

  it('a_delete_notification_hands_the_leaving_identitys_embeddings_to_onDelete_first', async () => {
    const s = losableStore();
    await s.store.put('alice', [person(1)]);
    await s.store.put('bob', [person(2)]);
    const deleted: [string, number[][]][] = [];
    const cache = new GalleryCache({ store: s.store, onDelete: (id, es) => void deleted.push([id, es.map((e) => Array.from(e))]) });
    await cache.start();
    await s.store.delete('alice');
    await tick();
    await cache.refresh();
    expect(deleted.map(([id]) => id)).toEqual(['alice']);
    expect(deleted[0]![1][0]!.map((x) => Math.round(x * 1e5))).toEqual(person(1).map((x) => Math.round(x * 1e5)));
    expect(cache.current?.has('alice')).toBe(false);
    await cache.close();
  });

  it('a fresh, empty store is simply an empty gallery', async () => {
    const cache = new GalleryCache({ store: new MemoryGalleryStore() });
    await cache.start();
    await cache.refresh();
    expect([cache.version, cache.size, cache.current]).toEqual([0, 0, undefined]);
    await cache.close();
  });

  it('an_enrolment_or_deletion_changes_the_held_hnsw_index_in_place_without_a_reload', async () => {
    const store = new MemoryGalleryStore();
    for (let i = 0; i < 300; i++) await store.put(`p${i}`, [person(100 + i)]);
    const cache = new GalleryCache({ store, search: { method: 'hnsw' } });
    await cache.start();
    const held = cache.current!;
    await held.whenSearchReady();
    expect(held.searchMethod).toBe('hnsw');
    const dave = person(9);
    await store.put('dave', [dave]);
    await tick();
    await store.delete('p7');
    await tick();
    // the same Gallery object (no snapshot reload), its graph still complete: the change went into it
    expect(cache.current).toBe(held);
    expect(held.searchMethod).toBe('hnsw');
    expect(held.search(Float32Array.from(dave), 1)[0]?.name).toBe('dave');
    expect(held.has('p7')).toBe(false);
    expect(held.search(Float32Array.from(person(107)), 1)[0]?.name).not.toBe('p7');
    await cache.close();
  });
});
