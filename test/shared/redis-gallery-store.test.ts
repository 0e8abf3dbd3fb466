/**
 * RedisGalleryStore against the real Redis of scripts/infra.sh. Every store uses its own random key
 * prefix, deleted afterwards.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { GalleryKey, type GalleryChange } from '@faceflow/shared';
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
