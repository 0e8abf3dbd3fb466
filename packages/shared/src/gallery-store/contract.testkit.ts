/**
 * The behaviour every GalleryStore implementation must show, as a vitest suite to run against each:
 * MemoryGalleryStore and FileGalleryStore (gallery-store.test.ts) and RedisGalleryStore against a real
 * Redis (test/shared/redis-gallery-store.test.ts). Test-only: excluded from the build (*.testkit.ts).
 */
import { describe, expect, it } from 'vitest';
import type { GalleryChange } from '../schemas/gallery-change.js';
import { l2normalize } from '../schemas/validate.js';
import type { GalleryStore } from './types.js';

/** A deterministic L2-normalised vector. */
export const unitVector = (seed: number, dim = 8): number[] => l2normalize(Array.from({ length: dim }, (_, i) => Math.sin(seed * 7 + i) + 0.01));
const vec = unitVector;

export function galleryContract(name: string, make: () => Promise<GalleryStore>): void {
  describe(`${name}: GalleryStore contract`, () => {
    it('put / get / list / delete with a growing version and change notifications', async () => {
      const store = await make();
      const changes: GalleryChange[] = [];
      const unsubscribe = await store.subscribe((c) => changes.push(c));
      expect(await store.version()).toBe(0);
      const c1 = await store.put('alice', [vec(1), vec(2)], { metadata: { name: 'Alice' } });
      expect(c1).toMatchObject({ type: 'enroll', identity: 'alice', version: 1 });
      await store.put('bob', [vec(3)]);
      expect(await store.version()).toBe(2);
      const alice = await store.get('alice');
      expect(alice?.embeddings).toHaveLength(2);
      expect(alice?.embeddings[0]![0]).toBeCloseTo(vec(1)[0]!, 12);
      expect(alice?.metadata).toEqual({ name: 'Alice' });
      expect((await store.list()).map((i) => i.id).sort()).toEqual(['alice', 'bob']);
      expect(await store.delete('bob')).toMatchObject({ type: 'delete', identity: 'bob', version: 3 });
      expect(await store.delete('bob')).toBeNull();
      expect(await store.version()).toBe(3);
      expect(await store.get('bob')).toBeUndefined();
      await new Promise((r) => setTimeout(r, 50));
      expect(changes.map((c) => [c.type, c.identity, c.version])).toEqual([
        ['enroll', 'alice', 1],
        ['enroll', 'bob', 2],
        ['delete', 'bob', 3],
      ]);
      await unsubscribe();
      await store.put('carol', [vec(4)]);
      await new Promise((r) => setTimeout(r, 50));
      expect(changes).toHaveLength(3);
      await store.close();
    });

    it('replace vs append; metadata kept unless given', async () => {
      const store = await make();
      await store.put('x', [vec(1)], { metadata: { team: 'a' } });
      await store.put('x', [vec(2)], { mode: 'append' });
      expect((await store.get('x'))?.embeddings).toHaveLength(2);
      expect((await store.get('x'))?.metadata).toEqual({ team: 'a' });
      await store.put('x', [vec(3)]);
      expect((await store.get('x'))?.embeddings).toHaveLength(1);
      await store.put('x', [vec(3)], { metadata: { team: 'b' } });
      expect((await store.get('x'))?.metadata).toEqual({ team: 'b' });
      await store.close();
    });

    it('snapshot is consistent with the version', async () => {
      const store = await make();
      await store.put('a', [vec(1)]);
      await store.put('b', [vec(2)]);
      const snap = await store.snapshot();
      expect(snap.version).toBe(2);
      expect(snap.identities.map((i) => i.id).sort()).toEqual(['a', 'b']);
      await store.close();
    });

    it('rejects bad input without changing the version', async () => {
      const store = await make();
      await store.put('a', [vec(1)]);
      await expect(store.put('b', [vec(2).map((x) => x * 3)])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field: 'embeddings[0]' } });
      await expect(store.put('b', [])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(store.put('b', [vec(2, 16)])).rejects.toThrow(/dimension 16/);
      await expect(store.put('', [vec(2)])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(store.put('a', [vec(1), vec(2, 4)], { mode: 'append' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect(await store.version()).toBe(1);
      // the only identity may change dimension (a model switch on a one-person gallery)
      await store.put('a', [vec(1, 16)]);
      expect(await store.version()).toBe(2);
      await store.close();
    });

    it('serialises concurrent appends without losing any', async () => {
      const store = await make();
      await Promise.all(Array.from({ length: 10 }, (_, i) => store.put('p', [vec(i)], { mode: 'append' })));
      expect((await store.get('p'))?.embeddings).toHaveLength(10);
      expect(await store.version()).toBe(10);
      await store.close();
    });
  });
}

