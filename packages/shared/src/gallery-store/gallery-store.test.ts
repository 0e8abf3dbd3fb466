import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileGalleryStore, GALLERY_FILE_FORMAT, parseGalleryFile } from './file-gallery-store.js';
import { MemoryGalleryStore } from './memory-gallery-store.js';
import { galleryAdminContract, galleryContract, galleryEncryptionContract, unitVector as vec, type SealedStorage } from './contract.testkit.js';
import { GalleryKey } from './gallery-crypto.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'faceflow-gallery-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

galleryContract('MemoryGalleryStore', async () => new MemoryGalleryStore());
let n = 0;
galleryContract('FileGalleryStore', async () => FileGalleryStore.open(join(dir, `contract-${n++}.json`)));
galleryAdminContract('MemoryGalleryStore', async () => new MemoryGalleryStore());
galleryAdminContract('FileGalleryStore', async () => FileGalleryStore.open(join(dir, `admin-${n++}.json`)));

// issue 15: the same contracts with encryption on (the memory store keeps nothing at rest), and the
// encryption contract over the raw file
const key = GalleryKey.generate().key;
galleryContract('FileGalleryStore (encrypted)', async () => FileGalleryStore.open(join(dir, `sealed-contract-${n++}.json`), { key }));
galleryAdminContract('FileGalleryStore (encrypted)', async () => FileGalleryStore.open(join(dir, `sealed-admin-${n++}.json`), { key }), { key });
galleryEncryptionContract('FileGalleryStore', async (): Promise<SealedStorage> => {
  const path = join(dir, `sealed-${n++}.json`);
  type Doc = { identities: { id: string; sealed: string }[] };
  return {
    open: (k) => FileGalleryStore.open(path, k ? { key: k } : {}),
    raw: () => readFile(path),
    record: async (id) => (JSON.parse(await readFile(path, 'utf8')) as Doc).identities.find((i) => i.id === id)!.sealed,
    setRecord: async (id, raw) => {
      const doc = JSON.parse(await readFile(path, 'utf8')) as Doc;
      doc.identities.find((i) => i.id === id)!.sealed = raw;
      await writeFile(path, JSON.stringify(doc));
    },
  };
});

describe('FileGalleryStore', () => {
  it('writes the versioned format, atomically, and reads it back', async () => {
    const path = join(dir, 'sub', 'gallery.json');
    const a = await FileGalleryStore.open(path);
    await a.put('alice', [vec(1), vec(2)], { metadata: { name: 'Alice' } });
    await a.put('bob', [vec(3)]);
    await a.delete('bob');
    const doc = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    expect(doc).toMatchObject({ format: GALLERY_FILE_FORMAT, version: 1, galleryVersion: 3 });
    expect(await readdir(join(dir, 'sub'))).toEqual(['gallery.json']); // no temp files left
    const b = await FileGalleryStore.open(path);
    expect(await b.version()).toBe(3);
    expect((await b.get('alice'))?.metadata).toEqual({ name: 'Alice' });
    expect((await b.get('alice'))?.embeddings[1]).toEqual(vec(2));
  });

  it('keeps memory and file unchanged when the write fails', async () => {
    const path = join(dir, 'ro', 'gallery.json');
    const s = await FileGalleryStore.open(path);
    await s.put('a', [vec(1)]);
    await rm(join(dir, 'ro'), { recursive: true });
    await writeFile(join(dir, 'ro'), 'a file where the directory was');
    await expect(s.put('b', [vec(2)])).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', retriable: true });
    expect(await s.version()).toBe(1);
    expect(await s.get('b')).toBeUndefined();
  });

  it('refuses files of another format or version with GALLERY_FORMAT', async () => {
    const bad = async (content: string): Promise<unknown> => {
      const p = join(dir, `bad-${Math.random()}.json`);
      await writeFile(p, content);
      return FileGalleryStore.open(p).catch((e: unknown) => e);
    };
    expect(await bad('not json')).toMatchObject({ code: 'GALLERY_FORMAT' });
    expect(await bad(JSON.stringify({ format: 'other', version: 1 }))).toMatchObject({ code: 'GALLERY_FORMAT' });
    expect(await bad(JSON.stringify({ format: GALLERY_FILE_FORMAT, version: 3, galleryVersion: 0, identities: [] }))).toMatchObject({
      code: 'GALLERY_FORMAT',
      message: expect.stringContaining('format version 3 is not supported') as unknown,
    });
    expect(() =>
      parseGalleryFile(JSON.stringify({ format: GALLERY_FILE_FORMAT, version: 1, galleryVersion: 1, identities: [{ id: 'a', embeddings: [[2, 0]] }] })),
    ).toThrow(/identities\[0\].*L2-normalised/);
  });

  it('an import is written to the file with its model, and read back', async () => {
    const path = join(dir, 'imported.json');
    const a = await FileGalleryStore.open(path);
    await a.replace({ identities: [{ id: 'alice', embeddings: [vec(1)], metadata: {}, updatedAt: 1 }], model: 'm1', version: 4 });
    const b = await FileGalleryStore.open(path);
    expect([await b.version(), b.model, (await b.list()).map((i) => i.id)]).toEqual([5, 'm1', ['alice']]);
  });

  it('a missing file is an empty gallery', async () => {
    const s = await FileGalleryStore.open(join(dir, 'does-not-exist.json'));
    expect(await s.snapshot()).toEqual({ version: 0, identities: [] });
  });
});
