/**
 * The behaviour every GalleryStore implementation must show, as a vitest suite to run against each:
 * MemoryGalleryStore and FileGalleryStore (gallery-store.test.ts) and RedisGalleryStore against a real
 * Redis (test/shared/redis-gallery-store.test.ts). Test-only: excluded from the build (*.testkit.ts).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GalleryChange } from '../schemas/gallery-change.js';
import { l2normalize } from '../schemas/validate.js';
import { GALLERY_FILE_FORMAT, GALLERY_FILE_VERSION } from './file-gallery-store.js';
import { deleteIdentity, exportGalleryFile, importGalleryFile, listGallery } from './gallery-admin.js';
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

    it('replace swaps the whole gallery at once, past both versions, marked as imported, with one import notification', async () => {
      const store = await make();
      const changes: GalleryChange[] = [];
      await store.subscribe((c) => changes.push(c));
      await store.put('old', [vec(1)]);
      await store.put('alice', [vec(2)]);
      const c = await store.replace({ identities: [{ id: 'alice', embeddings: [vec(3)], metadata: { team: 'x' }, updatedAt: 5 }, { id: 'bob', embeddings: [vec(4)], metadata: {}, updatedAt: 6 }], model: 'm1', version: 7 });
      expect(c).toMatchObject({ type: 'import', identity: '', version: 8 });
      const snap = await store.snapshot();
      expect([snap.version, snap.imported, snap.model]).toEqual([8, 8, 'm1']);
      expect(snap.identities.map((i) => [i.id, i.metadata])).toEqual([['alice', { team: 'x' }], ['bob', {}]]);
      expect(snap.identities[0]!.embeddings[0]![0]).toBeCloseTo(vec(3)[0]!, 12);
      // an older gallery still moves the version on, never back
      expect(await store.replace({ identities: [{ id: 'carol', embeddings: [vec(5)], metadata: {}, updatedAt: 1 }], version: 2 })).toMatchObject({ version: 9 });
      expect((await store.snapshot()).model).toBe('m1'); // kept when not given
      await store.put('dave', [vec(6)]);
      expect(await store.snapshot()).toMatchObject({ version: 10, imported: 9 });
      await expect(store.replace({ identities: [{ id: 'x', embeddings: [vec(1), vec(1, 4)], metadata: {}, updatedAt: 0 }] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect(await store.version()).toBe(10);
      await new Promise((r) => setTimeout(r, 50));
      expect(changes.map((x) => [x.type, x.version])).toEqual([['enroll', 1], ['enroll', 2], ['import', 8], ['import', 9], ['enroll', 10]]);
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


/** A gallery file document (the format `faceflow enroll` writes). */
export function galleryFileDoc(o: { model?: string; dim?: number; galleryVersion?: number; ids: [string, number][] }): string {
  const dim = o.dim ?? 8;
  return JSON.stringify({
    format: GALLERY_FILE_FORMAT,
    version: GALLERY_FILE_VERSION,
    ...(o.model !== undefined ? { model: o.model } : {}),
    dim,
    galleryVersion: o.galleryVersion ?? o.ids.length,
    updatedAt: 1,
    identities: o.ids.map(([id, seed]) => ({ id, embeddings: [vec(seed, dim)], metadata: {}, updatedAt: 1 })),
  });
}

/** import / export / list / delete (gallery-admin.ts) as every store must show them. */
export function galleryAdminContract(name: string, make: () => Promise<GalleryStore>): void {
  describe(`${name}: gallery import / export / list / delete`, () => {
    let dir = '';
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'faceflow-gallery-admin-'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });
    const file = async (name: string, content: string): Promise<string> => {
      const p = join(dir, name);
      await writeFile(p, content);
      return p;
    };

    it('an import replaces the gallery and an export writes it back in the same versioned format', async () => {
      const store = await make();
      await store.put('stale', [vec(9)], { metadata: { model: 'm1' } });
      const src = await file('in.json', galleryFileDoc({ model: 'm1', galleryVersion: 10, ids: [['alice', 1], ['bob', 2]] }));
      expect(await importGalleryFile(store, src)).toEqual({ version: 11, identities: 2, removed: ['stale'], model: 'm1', dim: 8, fileVersion: 10 });
      expect(await listGallery(store)).toMatchObject({ version: 11, model: 'm1', dim: 8, identities: [{ id: 'alice', embeddings: 1 }, { id: 'bob', embeddings: 1 }] });
      await deleteIdentity(store, 'bob');
      const out = join(dir, 'out.json');
      expect(await exportGalleryFile(store, out)).toEqual({ version: 12, identities: 1, model: 'm1', dim: 8 });
      const doc = JSON.parse(await readFile(out, 'utf8')) as Record<string, unknown>;
      expect(doc).toMatchObject({ format: GALLERY_FILE_FORMAT, version: GALLERY_FILE_VERSION, model: 'm1', dim: 8, galleryVersion: 12, identities: [{ id: 'alice' }] });
      await store.close();
    });

    it('refuses a gallery of another model or size, and a bad file, changing nothing', async () => {
      const store = await make();
      await importGalleryFile(store, await file('m1.json', galleryFileDoc({ model: 'm1', ids: [['alice', 1]] })));
      const before = await store.snapshot();
      const refused = async (content: string): Promise<unknown> => importGalleryFile(store, await file(`bad-${Math.random()}.json`, content)).catch((e: unknown) => e);
      expect(await refused(galleryFileDoc({ model: 'm2', ids: [['eve', 2]] }))).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/holds "m2" embeddings, the gallery it would replace holds "m1"/) as unknown });
      expect(await refused(galleryFileDoc({ model: 'm1', dim: 16, ids: [['eve', 2]] }))).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/dimension 16/) as unknown });
      expect(await refused(galleryFileDoc({ ids: [['eve', 2]] }))).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/names no "model"/) as unknown });
      expect(await refused('{"format":"faceflow-gallery"')).toMatchObject({ code: 'GALLERY_FORMAT' });
      expect(await importGalleryFile(store, join(dir, 'missing.json')).catch((e: unknown) => e)).toMatchObject({ code: 'NOT_FOUND' });
      expect(await importGalleryFile(store, dir).catch((e: unknown) => e)).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/is a directory/) as unknown });
      expect(await deleteIdentity(store, 'nobody').catch((e: unknown) => e)).toMatchObject({ code: 'NOT_FOUND' });
      expect(await store.snapshot()).toEqual(before);
      await store.close();
    });

    it('export refuses an empty gallery and leaves the file as it was', async () => {
      const store = await make();
      const out = await file('keep.json', 'the backup');
      expect(await exportGalleryFile(store, out).catch((e: unknown) => e)).toMatchObject({ code: 'GALLERY_EMPTY' });
      expect(await readFile(out, 'utf8')).toBe('the backup');
      await store.close();
    });
  });
}
