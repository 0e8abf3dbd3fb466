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
import { GALLERY_FILE_FORMAT, GALLERY_FILE_SEALED_VERSION, GALLERY_FILE_VERSION, parseGalleryFile } from './file-gallery-store.js';
import { deleteIdentity, exportGalleryFile, importGalleryFile, listGallery } from './gallery-admin.js';
import { GalleryKey, sealedRecordKeyId } from './gallery-crypto.js';
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
      // issue 14: a NaN or an infinity is named, on one line; a delete of an unknown name changes nothing
      for (const bad of [NaN, Infinity]) {
        const e = await store.put('b', [vec(2).map((x, i) => (i === 1 ? bad : x))]).catch((x: unknown) => x as Error);
        expect(e).toMatchObject({ code: 'INVALID_ARGUMENT', message: 'gallery: identity "b": embeddings[0] must hold finite numbers only' });
      }
      expect(await store.delete('nobody')).toBeNull();
      expect(await store.version()).toBe(1);
      expect((await store.list()).map((i) => i.id)).toEqual(['a']);
      expect((await store.get('a'))?.embeddings).toEqual([vec(1)]);
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
export function galleryAdminContract(name: string, make: () => Promise<GalleryStore>, options: { key?: GalleryKey } = {}): void {
  const keyed = options.key ? { key: options.key } : {};
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
      expect(await importGalleryFile(store, src, keyed)).toEqual({ version: 11, identities: 2, removed: ['stale'], model: 'm1', dim: 8, fileVersion: 10 });
      expect(await listGallery(store)).toMatchObject({ version: 11, model: 'm1', dim: 8, identities: [{ id: 'alice', embeddings: 1 }, { id: 'bob', embeddings: 1 }] });
      await deleteIdentity(store, 'bob');
      const out = join(dir, 'out.json');
      expect(await exportGalleryFile(store, out, keyed)).toEqual({ version: 12, identities: 1, model: 'm1', dim: 8 });
      const text = await readFile(out, 'utf8');
      const doc = JSON.parse(text) as Record<string, unknown>;
      // with a key the export is sealed too (issue 15): a backup holds no plaintext template
      expect(doc).toMatchObject({ format: GALLERY_FILE_FORMAT, version: options.key ? GALLERY_FILE_SEALED_VERSION : GALLERY_FILE_VERSION, model: 'm1', dim: 8, galleryVersion: 12, identities: [{ id: 'alice' }] });
      expect(parseGalleryFile(text, out, options.key).identities[0]!.embeddings[0]![0]).toBeCloseTo(vec(1)[0]!, 12);
      await store.close();
    });

    it('refuses a gallery of another model or size, and a bad file, changing nothing', async () => {
      const store = await make();
      await importGalleryFile(store, await file('m1.json', galleryFileDoc({ model: 'm1', ids: [['alice', 1]] })), keyed);
      const before = await store.snapshot();
      const refused = async (content: string): Promise<unknown> => importGalleryFile(store, await file(`bad-${Math.random()}.json`, content), keyed).catch((e: unknown) => e);
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
      expect(await exportGalleryFile(store, out, keyed).catch((e: unknown) => e)).toMatchObject({ code: 'GALLERY_EMPTY' });
      expect(await readFile(out, 'utf8')).toBe('the backup');
      await store.close();
    });
  });
}

/** One store's storage at rest, for the encryption contract: opened again and again over the same bytes. */
export interface SealedStorage {
  /** A store over this storage (with `key`: sealed). */
  open(key?: GalleryKey): Promise<GalleryStore>;
  /** Everything the storage holds at rest, as bytes (file content, or every Redis value under the prefix). */
  raw(): Promise<Buffer>;
  /** The stored record of `id` as it is at rest, and a way to put a (changed) one back. */
  record(id: string): Promise<string>;
  setRecord(id: string, raw: string): Promise<void>;
}

/** The byte forms an embedding could leak in: float32 and float64 bytes, and the JSON text of its numbers. */
function plaintextForms(e: number[]): Buffer[] {
  return [
    Buffer.from(Float32Array.from(e).buffer),
    Buffer.from(Float64Array.from(e).buffer),
    Buffer.from(JSON.stringify(e)),
    ...e.slice(0, 3).map((x) => Buffer.from(String(x))),
    ...e.slice(0, 3).map((x) => Buffer.from(String(Math.round(x * 1e7) / 1e7))),
  ];
}

/** Flips one byte of a sealed record's ciphertext (its base64 body decoded, changed, encoded again). */
export function flipOneByte(sealed: string): string {
  const dot = sealed.lastIndexOf('.');
  const body = Buffer.from(sealed.slice(dot + 1), 'base64');
  body[20] = body[20]! ^ 0x01;
  return `${sealed.slice(0, dot + 1)}${body.toString('base64')}`;
}

/**
 * Templates encrypted at rest (issue 15, item 2), as every store that keeps them at rest must show it (file,
 * Redis; the memory store keeps nothing at rest). `fresh` gives new, empty storage each time.
 */
export function galleryEncryptionContract(name: string, fresh: () => Promise<SealedStorage>): void {
  const k1 = GalleryKey.generate().key;
  const k2 = GalleryKey.generate().key;
  const alice = [unitVector(11), unitVector(12)];
  const bob = [unitVector(13)];
  const filled = async (): Promise<SealedStorage> => {
    const st = await fresh();
    const s = await st.open(k1);
    await s.put('alice', alice, { metadata: { fullName: 'Alice Secretname' } });
    await s.put('bob', bob);
    await s.close();
    return st;
  };
  const failure = async (p: Promise<unknown>): Promise<{ code?: string; retriable?: boolean; message: string }> => {
    const e = await p.then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e, 'expected a failure').toBeDefined();
    return e as { code?: string; retriable?: boolean; message: string };
  };
  const readAll = async (s: GalleryStore): Promise<void> => {
    try {
      await s.snapshot();
      await s.get('alice');
    } finally {
      await s.close();
    }
  };

  describe(`${name}: templates encrypted at rest`, () => {
    it('sealed_storage_holds_no_plaintext_embedding_nor_metadata', async () => {
      const st = await filled();
      const raw = await st.raw();
      expect(raw.length).toBeGreaterThan(0);
      for (const e of [...alice, ...bob]) for (const form of plaintextForms(e)) expect(raw.includes(form), `plaintext form ${form.toString('hex').slice(0, 24)} found at rest`).toBe(false);
      expect(raw.includes(Buffer.from('Secretname'))).toBe(false);
      // and the plaintext forms would be found if they were there (the check can fail)
      const plain = await fresh();
      const p = await plain.open();
      await p.put('alice', alice);
      await p.close();
      const plainRaw = await plain.raw();
      expect(plaintextForms(alice[0]!).filter((f) => plainRaw.includes(f)).length).toBeGreaterThan(0);
      // with the key it reads back exactly
      const s = await st.open(k1);
      expect((await s.get('alice'))?.embeddings[1]![3]).toBeCloseTo(alice[1]![3]!, 12);
      expect((await s.get('alice'))?.metadata).toEqual({ fullName: 'Alice Secretname' });
      await s.close();
    });

    it('without_the_key_an_encrypted_gallery_cannot_be_read_and_the_error_names_the_variable', async () => {
      const st = await filled();
      const before = await st.raw();
      const e = await failure(st.open().then(readAll));
      expect(e).toMatchObject({ code: 'GALLERY_KEY', retriable: false });
      expect(e.message).toMatch(/is encrypted .*set FACEFLOW_GALLERY_KEY_FILE/);
      expect(e.message).not.toContain('\n');
      expect((await st.raw()).equals(before)).toBe(true);
    });

    it('another_key_is_refused_as_the_wrong_key_changing_nothing', async () => {
      const st = await filled();
      const before = await st.raw();
      const e = await failure(st.open(k2).then(readAll));
      expect(e).toMatchObject({ code: 'GALLERY_KEY', retriable: false });
      expect(e.message).toContain(`sealed under key ${k1.id}, but FACEFLOW_GALLERY_KEY_FILE holds key ${k2.id}`);
      expect((await st.raw()).equals(before)).toBe(true);
    });

    it('a_flipped_byte_in_a_record_is_detected_as_tampering_changing_nothing', async () => {
      const st = await filled();
      await st.setRecord('alice', flipOneByte(await st.record('alice')));
      const before = await st.raw();
      const e = await failure(st.open(k1).then(readAll));
      expect(e).toMatchObject({ code: 'GALLERY_INTEGRITY', retriable: false });
      expect(e.message).toMatch(/record of identity "alice" does not authenticate/);
      expect((await st.raw()).equals(before)).toBe(true);
    });

    it('records_swapped_between_two_names_are_detected_as_tampering', async () => {
      const st = await filled();
      const [a, b] = [await st.record('alice'), await st.record('bob')];
      await st.setRecord('alice', b);
      await st.setRecord('bob', a);
      const e = await failure(st.open(k1).then(readAll));
      expect(e).toMatchObject({ code: 'GALLERY_INTEGRITY', retriable: false });
    });

    it('a_record_copied_into_another_gallery_is_detected_as_tampering', async () => {
      const st = await filled();
      const other = await fresh();
      const o = await other.open(k1);
      await o.put('alice', [unitVector(20)]);
      await o.close();
      await other.setRecord('alice', await st.record('alice'));
      const e = await failure(other.open(k1).then(readAll));
      expect(e).toMatchObject({ code: 'GALLERY_INTEGRITY', retriable: false });
    });

    it('rotate_key_rewraps_under_the_new_key_and_the_old_one_no_longer_opens_it', async () => {
      const st = await filled();
      const s = await st.open(k1);
      const rec = await st.record('alice');
      expect(await s.rotateKey!({ key: k2 })).toMatchObject({ fromKey: k1.id, toKey: k2.id, resealed: 0 });
      await s.close();
      expect(sealedRecordKeyId(await st.record('alice'))).toBe(sealedRecordKeyId(rec)); // a re-wrap keeps the data key
      expect(await failure(st.open(k1).then(readAll))).toMatchObject({ code: 'GALLERY_KEY' });
      const s2 = await st.open(k2);
      expect((await s2.get('alice'))?.embeddings[0]![0]).toBeCloseTo(alice[0]![0]!, 12);
      // a new data key: every record sealed again, still only under k2
      const r = await s2.rotateKey!({ key: k2, newDataKey: true });
      expect(r).toMatchObject({ fromKey: k2.id, toKey: k2.id, resealed: 2 });
      expect(r.toDataKey).not.toBe(r.fromDataKey);
      await s2.put('carol', [unitVector(14)]);
      await s2.close();
      expect(sealedRecordKeyId(await st.record('alice'))).toBe(r.toDataKey);
      expect(r.toDataKey).not.toBe(sealedRecordKeyId(rec));
      const s3 = await st.open(k2);
      expect((await s3.list()).map((i) => i.id).sort()).toEqual(['alice', 'bob', 'carol']);
      expect((await s3.get('bob'))?.embeddings[0]![0]).toBeCloseTo(bob[0]![0]!, 12);
      await s3.close();
      expect(await failure(st.open(k1).then(readAll))).toMatchObject({ code: 'GALLERY_KEY' });
    });

    it('a_plaintext_gallery_keeps_working_without_a_key_and_is_sealed_by_the_first_write_with_one', async () => {
      const st = await fresh();
      const p = await st.open();
      await p.put('alice', alice);
      await p.close();
      const p2 = await st.open();
      expect((await p2.get('alice'))?.embeddings).toHaveLength(2); // backward compatible
      await p2.close();
      const s = await st.open(k1);
      expect((await s.get('alice'))?.embeddings).toHaveLength(2); // a key reads a plaintext gallery
      await s.put('bob', bob);
      await s.close();
      const raw = await st.raw();
      for (const e of [...alice, ...bob]) for (const form of plaintextForms(e)) expect(raw.includes(form)).toBe(false);
      // once sealed, a store without the key can neither read nor write it
      expect(await failure(st.open().then(async (x) => x.put('eve', [unitVector(15)]).finally(() => x.close())))).toMatchObject({ code: 'GALLERY_KEY' });
    });

    it('an_import_of_a_plaintext_file_into_a_store_with_a_key_seals_it', async () => {
      const st = await fresh();
      const dir = await mkdtemp(join(tmpdir(), 'faceflow-sealed-import-'));
      try {
        const src = join(dir, 'plain.json');
        await writeFile(src, galleryFileDoc({ model: 'm1', ids: [['alice', 31], ['bob', 32]] }));
        const s = await st.open(k1);
        await importGalleryFile(s, src, { key: k1 });
        await s.close();
        const raw = await st.raw();
        for (const form of [...plaintextForms(unitVector(31)), ...plaintextForms(unitVector(32))]) expect(raw.includes(form)).toBe(false);
        const s2 = await st.open(k1);
        expect((await s2.list()).map((i) => i.id).sort()).toEqual(['alice', 'bob']);
        await s2.close();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
}
