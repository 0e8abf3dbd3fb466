import { describe, expect, it } from 'vitest';
import { MemoryGalleryStore, type GalleryListener, type GalleryStore } from '@faceflow/shared';
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
  it('keeps the gallery it holds when the store comes back empty, and follows the store once rebuilt', async () => {
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
    expect(cache.size).toBe(2); // still matching with what it held
    expect(cache.current?.search(Float32Array.from(alice), 1)[0]?.name).toBe('alice');
    await cache.refresh(); // and stays so
    expect(cache.size).toBe(2);

    // rebuilt from the source of truth, without bob (deleted meanwhile): the first change reloads in full
    await s.inner().put('alice', [alice]);
    await tick();
    expect([cache.version, cache.size]).toEqual([1, 1]);
    expect(cache.current?.search(Float32Array.from(bob), 1)[0]?.name).toBe('alice');
    await s.inner().put('carol', [person(3)]);
    await tick();
    expect([cache.version, cache.size]).toEqual([2, 2]);
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

  it('a fresh, empty store is simply an empty gallery', async () => {
    const cache = new GalleryCache({ store: new MemoryGalleryStore() });
    await cache.start();
    await cache.refresh();
    expect([cache.version, cache.size, cache.current]).toEqual([0, 0, undefined]);
    await cache.close();
  });
});
