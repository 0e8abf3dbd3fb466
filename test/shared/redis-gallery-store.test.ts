/**
 * RedisGalleryStore against the real Redis of scripts/infra.sh. Every store uses its own random key
 * prefix, deleted afterwards.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { type GalleryChange } from '@faceflow/shared';
import { RedisGalleryStore } from '@faceflow/shared/redis';
import { galleryAdminContract, galleryContract, unitVector as vec } from '../../packages/shared/src/gallery-store/contract.testkit.js';
import { config, probeRedis, skipUnlessReachable, uniq, until } from './infra.js';

const probe = await probeRedis();
const skip = skipUnlessReachable(probe);

const prefixes = new Set<string>();
const open = async (keyPrefix: string): Promise<RedisGalleryStore> => {
  prefixes.add(keyPrefix);
  return RedisGalleryStore.open({ url: config.redisUrl, keyPrefix });
};
const freshPrefix = (): string => `test:gallery:${uniq()}:`;

afterAll(async () => {
  if (skip || !probe.ok) return;
  for (const p of prefixes) {
    const s = await RedisGalleryStore.open({ url: config.redisUrl, keyPrefix: p });
    await s.drop();
    await s.close();
  }
});

describe.skipIf(skip)('RedisGalleryStore (real Redis)', () => {
  galleryContract('RedisGalleryStore', () => open(freshPrefix()));
  galleryAdminContract('RedisGalleryStore', () => open(freshPrefix()));

  it('a change made through one instance reaches a second instance, with versions in order', async () => {
    const prefix = freshPrefix();
    const writer = await open(prefix);
    const reader = await open(prefix);
    const seen: GalleryChange[] = [];
    await reader.subscribe((c) => seen.push(c));
    await writer.put('alice', [vec(1)], { metadata: { name: 'Alice' } });
    await writer.put('bob', [vec(2)]);
    await writer.put('alice', [vec(3)], { mode: 'append' });
    await writer.delete('bob');
    await until(() => seen.length === 4, 10_000, 'four notifications');
    expect(seen.map((c) => `${c.type}:${c.identity}:${c.version}`)).toEqual(['enroll:alice:1', 'enroll:bob:2', 'enroll:alice:3', 'delete:bob:4']);
    const snap = await reader.snapshot();
    expect(snap.version).toBe(4);
    expect(snap.identities.map((i) => [i.id, i.embeddings.length, i.metadata])).toEqual([['alice', 2, { name: 'Alice' }]]);
    await writer.close();
    await reader.close();
  });

  it('the epoch stays while the store keeps its data, and changes once it lost them', async () => {
    const prefix = freshPrefix();
    const a = await open(prefix);
    const seen: GalleryChange[] = [];
    await a.subscribe((c) => seen.push(c));
    expect((await a.snapshot()).epoch).toBeUndefined();
    await a.put('x', [vec(1)]);
    const e1 = (await a.snapshot()).epoch;
    expect(e1).toMatch(/^[0-9a-f]{16}$/);
    await a.put('y', [vec(2)]);
    await a.delete('y');
    await a.replace({ identities: [{ id: 'z', embeddings: [vec(3)], metadata: {}, updatedAt: 1 }] });
    expect((await a.snapshot()).epoch).toBe(e1);
    await a.drop();
    await a.put('x', [vec(1)]);
    const e2 = (await a.snapshot()).epoch;
    expect(e2).toMatch(/^[0-9a-f]{16}$/);
    expect(e2).not.toBe(e1);
    await until(() => seen.length === 5, 10_000, 'five notifications');
    expect(seen.map((c) => c.epoch)).toEqual([e1, e1, e1, e1, e2]);
    await a.close();
  });

  it('instances with different prefixes do not see each other', async () => {
    const a = await open(freshPrefix());
    const b = await open(freshPrefix());
    const seenByB: GalleryChange[] = [];
    await b.subscribe((c) => seenByB.push(c));
    await a.put('x', [vec(1)]);
    await new Promise((r) => setTimeout(r, 200));
    expect(seenByB).toEqual([]);
    expect(await b.version()).toBe(0);
    await a.close();
    await b.close();
  });

  it('concurrent appends from two instances all land (compare-and-set)', async () => {
    const prefix = freshPrefix();
    const a = await open(prefix);
    const b = await open(prefix);
    await Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 ? a : b).put('crowd', [vec(i)], { mode: 'append' })));
    expect((await a.get('crowd'))?.embeddings).toHaveLength(16);
    expect(await b.version()).toBe(16);
    await a.close();
    await b.close();
  });

  it('an unreachable Redis is STORE_UNAVAILABLE (retriable)', async () => {
    const err = await RedisGalleryStore.open({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 1_000 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'STORE_UNAVAILABLE', retriable: true });
  });
});
