/**
 * RedisGalleryStore against the real Redis of scripts/infra.sh. Every store uses its own random key
 * prefix, deleted afterwards.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { GalleryKey, type GalleryChange, type GalleryIdentity } from '@faceflow/shared';
import { RedisGalleryStore } from '@faceflow/shared/redis';
import { galleryAdminContract, galleryContract, galleryEncryptionContract, unitVector as vec, type SealedStorage } from '../../packages/shared/src/gallery-store/contract.testkit.js';
import { config, probeRedis, rawRedisOptions, redis, skipUnlessReachable, uniq, until } from './infra.js';

const probe = await probeRedis();
const skip = skipUnlessReachable(probe);

const prefixes = new Set<string>();
const open = async (keyPrefix: string): Promise<RedisGalleryStore> => {
  prefixes.add(keyPrefix);
  return RedisGalleryStore.open({ ...redis, keyPrefix });
};
const freshPrefix = (): string => `test:gallery:${uniq()}:`;

// the raw client: reads values at rest as they are (issue 15), and removes every key of a prefix, sealed or not
const raw = skip ? undefined : new Redis(config.redisUrl, { ...rawRedisOptions(), lazyConnect: true, maxRetriesPerRequest: 2 });
const keysOf = async (prefix: string): Promise<string[]> => {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await raw!.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]]/g, '\\$&')}*`, 'COUNT', 100);
    cursor = next;
    out.push(...keys);
  } while (cursor !== '0');
  return out.sort();
};

afterAll(async () => {
  if (skip || !probe.ok) return;
  for (const p of prefixes) {
    const keys = await keysOf(p);
    if (keys.length > 0) await raw!.del(...keys);
  }
  raw?.disconnect();
});

describe.skipIf(skip)('RedisGalleryStore (real Redis)', () => {
  galleryContract('RedisGalleryStore', () => open(freshPrefix()));
  galleryAdminContract('RedisGalleryStore', () => open(freshPrefix()));

  // issue 15: the same contracts with encryption on, and the encryption contract over the raw values
  const key = GalleryKey.generate().key;
  const openSealed = (keyPrefix: string, k?: GalleryKey): Promise<RedisGalleryStore> => {
    prefixes.add(keyPrefix);
    return RedisGalleryStore.open({ ...redis, keyPrefix, ...(k ? { key: k } : {}) });
  };
  galleryContract('RedisGalleryStore (encrypted)', () => openSealed(freshPrefix(), key));
  galleryAdminContract('RedisGalleryStore (encrypted)', () => openSealed(freshPrefix(), key), { key });
  galleryEncryptionContract('RedisGalleryStore', async (): Promise<SealedStorage> => {
    const prefix = freshPrefix();
    prefixes.add(prefix);
    if (raw!.status === 'wait') await raw!.connect();
    return {
      open: (k) => openSealed(prefix, k),
      async raw() {
        const parts: Buffer[] = [];
        for (const k of await keysOf(prefix)) {
          parts.push(Buffer.from(k));
          const type = await raw!.type(k);
          if (type === 'hash') for (const [f, v] of Object.entries(await raw!.hgetallBuffer(k))) parts.push(Buffer.from(f), v);
          else if (type === 'string') parts.push((await raw!.getBuffer(k))!);
        }
        return Buffer.concat(parts);
      },
      record: async (id) => (await raw!.hget(`${prefix}identities`, id))!,
      setRecord: async (id, value) => {
        await raw!.hset(`${prefix}identities`, id, value);
      },
    };
  });

  it('a_writer_without_the_key_cannot_add_a_plaintext_record_to_a_gallery_encrypted_after_it_opened', async () => {
    const prefix = freshPrefix();
    const plain = await openSealed(prefix);
    await plain.put('alice', [vec(1)]);
    const sealed = await openSealed(prefix, key);
    await sealed.put('bob', [vec(2)]); // seals the whole gallery first
    // a put that reads the record first, and one that does not (the script's keyring guard refuses it)
    for (const p of [plain.put('carol', [vec(3)]), plain.put('dave', [vec(4)], { metadata: {} })]) {
      expect(await p.catch((x: unknown) => x)).toMatchObject({ code: 'GALLERY_KEY', retriable: false, message: expect.stringMatching(/encrypted.*set FACEFLOW_GALLERY_KEY_FILE/) as unknown });
    }
    expect(await sealed.list().then((l) => l.map((i) => i.id).sort())).toEqual(['alice', 'bob']);
    await Promise.all([plain.close(), sealed.close()]);
  });

  it('two_writers_with_the_key_sealing_one_plaintext_gallery_at_once_lose_nothing', async () => {
    const prefix = freshPrefix();
    const plain = await openSealed(prefix);
    await plain.put('alice', [vec(1)]);
    await plain.close();
    const [a, b] = [await openSealed(prefix, key), await openSealed(prefix, key)];
    await Promise.all([a.put('bob', [vec(2)]), b.put('carol', [vec(3)]), a.put('dave', [vec(4)], { metadata: {} })]);
    await Promise.all([a.close(), b.close()]);
    const values = Object.values(await raw!.hgetall(`${prefix}identities`));
    expect(values.every((v) => v.startsWith('ff1.'))).toBe(true);
    const c = await openSealed(prefix, key);
    expect((await c.list()).map((i) => i.id)).toEqual(['alice', 'bob', 'carol', 'dave']);
    await c.close();
  });

  it('a_running_store_keeps_its_data_key_when_another_process_rewraps_it_under_a_new_key', async () => {
    const prefix = freshPrefix();
    const matcher = await openSealed(prefix, key);
    await matcher.put('alice', [vec(1)]);
    const next = GalleryKey.generate().key;
    const admin = await openSealed(prefix, key);
    await admin.rotateKey({ key: next });
    await admin.close();
    await matcher.put('bob', [vec(2)]); // the old key file is still what it was started with
    expect((await matcher.get('bob'))?.embeddings).toHaveLength(1);
    await matcher.close();
    const restarted = await openSealed(prefix, next);
    expect((await restarted.list()).map((i) => i.id).sort()).toEqual(['alice', 'bob']);
    await restarted.close();
  });

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

// issue 14: a million-person list is imported in bounded batches to a staging hash, then swapped in at once
describe.skipIf(skip)('RedisGalleryStore streamed import (real Redis)', () => {
  const ids = (n: number, from = 0, dim = 8): GalleryIdentity[] => Array.from({ length: n }, (_, i) => ({ id: `p${from + i}`, embeddings: [vec(from + i + 1, dim)], metadata: {}, updatedAt: 1 }));
  const inBatches = function* (all: GalleryIdentity[], size: number): Generator<GalleryIdentity[]> {
    for (let i = 0; i < all.length; i += size) yield all.slice(i, i + size);
  };

  it('replaceStream_puts_every_batch_in_place_at_once_with_one_import_change_and_leaves_no_staging_hash', async () => {
    const prefix = freshPrefix();
    const store = await open(prefix);
    await store.put('old', [vec(1, 8)]);
    const changes: GalleryChange[] = [];
    await store.subscribe((c) => changes.push(c));
    let seenMidway: number | undefined;
    async function* batches(): AsyncGenerator<GalleryIdentity[]> {
      yield ids(1500);
      seenMidway = (await store.list()).length; // readers still see the old gallery while batches go in
      yield ids(1500, 1500);
    }
    const c = await store.replaceStream(batches(), { model: 'm1', version: 40 });
    expect(c).toMatchObject({ type: 'import', version: 41 });
    expect(seenMidway).toBe(1);
    const snap = await store.snapshot();
    expect([snap.identities.length, snap.version, snap.imported, snap.model]).toEqual([3000, 41, 41, 'm1']);
    expect(snap.identities.some((i) => i.id === 'old')).toBe(false);
    expect((await store.get('p2999'))?.embeddings[0]).toEqual(vec(3000, 8));
    await until(async () => changes.length === 1, 5000, 'the import change');
    expect(changes[0]).toMatchObject({ type: 'import', version: 41 });
    expect(await keysOf(`${prefix}identities:`)).toEqual([]);
    expect(await raw!.ttl(`${prefix}identities`)).toBe(-1); // the staging hash's expiry did not come along
    await store.close();
  });

  it('a_bad_batch_aborts_the_streamed_import_with_one_line_and_changes_nothing', async () => {
    const prefix = freshPrefix();
    const store = await open(prefix);
    await store.put('old', [vec(1, 8)]);
    const v = await store.version();
    const nan = ids(1, 5000)[0]!;
    nan.embeddings[0]![3] = NaN;
    const cases: Array<[GalleryIdentity[], RegExp]> = [
      [ids(3, 5000, 4), /identity "p5000": embeddings\[0\] has dimension 4, the gallery's is 8/],
      [[nan], /identity "p5000": embeddings\[0\] must hold finite numbers only/],
      [ids(1, 10), /identity "p10" appears twice/],
    ];
    for (const [second, message] of cases) {
      const e = await store.replaceStream(inBatches([...ids(1200), ...second], 1200)).catch((x: unknown) => x);
      expect(e).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(message) as unknown });
      expect((e as Error).message).not.toContain('\n');
      expect([await store.version(), (await store.list()).map((i) => i.id)]).toEqual([v, ['old']]);
      expect(await keysOf(`${prefix}identities:`)).toEqual([]);
    }
    await store.close();
  });

  it('replace_of_a_large_gallery_streams_and_gives_what_the_one_script_gives', async () => {
    const store = await open(freshPrefix());
    await store.put('old', [vec(1, 8)]);
    expect(await store.replace({ identities: ids(2500), version: 3 })).toMatchObject({ type: 'import', version: 4 });
    const snap = await store.snapshot();
    expect([snap.identities.length, snap.imported]).toEqual([2500, 4]);
    expect(snap.identities.some((i) => i.id === 'old')).toBe(false);
    await store.close();
  });

  it('a_streamed_import_by_a_store_with_a_key_seals_every_record', async () => {
    const prefix = freshPrefix();
    const key = GalleryKey.generate().key;
    const store = await RedisGalleryStore.open({ ...redis, keyPrefix: prefix, key });
    prefixes.add(prefix);
    await store.replaceStream(inBatches(ids(2100), 700));
    const values = Object.values(await raw!.hgetall(`${prefix}identities`));
    expect(values).toHaveLength(2100);
    expect(values.every((x) => x.startsWith('ff1.'))).toBe(true);
    const reader = await RedisGalleryStore.open({ ...redis, keyPrefix: prefix, key });
    expect((await reader.get('p7'))?.embeddings[0]).toEqual(vec(8, 8));
    await Promise.all([store.close(), reader.close()]);
  });
});
