import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirCropStore, eraseIdentityCrops, type CropStore } from './crop-store.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-crops-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('DirCropStore', () => {
  it('stores a crop under its camera and deletes it by its reference, twice without error', async () => {
    const store = new DirCropStore(path.join(dir, 'crops'));
    const ref = await store.put('lobby/1', 'f:12', 3, Buffer.from('jpeg'));
    expect(ref).toMatch(/^file:.*\/lobby_1\/f_12-3\.jpg$/);
    expect(existsSync(fileURLToPath(ref))).toBe(true);
    await store.delete(ref);
    expect(existsSync(fileURLToPath(ref))).toBe(false);
    // a redelivered batch deletes again: the crop is already gone, which is fine
    await expect(store.delete(ref)).resolves.toBeUndefined();
  });

  it('a_message_never_names_a_file_to_delete: references it did not make are refused and nothing is deleted', async () => {
    const store = new DirCropStore(path.join(dir, 'crops'));
    await store.put('cam', 'f1', 0, Buffer.from('jpeg'));
    const victim = path.join(dir, 'victim.jpg');
    await writeFile(victim, 'keep me');
    const outside = [
      pathToFileURL(victim).href,
      `${pathToFileURL(path.join(dir, 'crops')).href}/cam/../../victim.jpg`,
      pathToFileURL(path.join(dir, 'crops', 'cam', 'f1-0.png')).href,
      pathToFileURL(path.join(dir, 'crops', 'f1-0.jpg')).href,
      pathToFileURL(path.join(dir, 'crops', 'a', 'b', 'f1-0.jpg')).href,
      'http://example.com/crops/cam/f1-0.jpg',
      'crops/cam/f1-0.jpg',
      'file://%00',
    ];
    for (const ref of outside) await expect(store.delete(ref), ref).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(existsSync(victim)).toBe(true);
    expect(await readdir(path.join(dir, 'crops', 'cam'))).toEqual(['f1-0.jpg']);
  });

  it('erasing_an_identity_deletes_every_thumbnail_recorded_for_it_and_its_index_and_nobody_elses', async () => {
    const store = new DirCropStore(path.join(dir, 'crops'));
    const a1 = await store.put('cam', 'f1', 0, Buffer.from('alice 1'));
    const a2 = await store.put('door', 'f2', 0, Buffer.from('alice 2'));
    const b1 = await store.put('cam', 'f3', 0, Buffer.from('bob'));
    await store.recordThumbnail('alice', a1);
    await store.recordThumbnail('alice', a2);
    await store.recordThumbnail('alice', a1); // a redelivered event records again
    await store.recordThumbnail('bob', b1);
    // the index names no one in clear
    const index = await readdir(path.join(dir, 'crops', '.erasure'));
    expect(index.join(' ')).not.toMatch(/alice|bob/);
    expect(await readFile(store.indexFileOf('alice'), 'utf8')).not.toMatch(/alice/);
    expect(await eraseIdentityCrops(store, 'alice')).toBe(2);
    for (const ref of [a1, a2]) expect(existsSync(fileURLToPath(ref))).toBe(false);
    expect(existsSync(store.indexFileOf('alice'))).toBe(false);
    expect(existsSync(fileURLToPath(b1))).toBe(true);
    // again: nothing left, no error
    expect(await eraseIdentityCrops(store, 'alice')).toBe(0);
    // a ref the store did not make is never recorded (the index must not name a file to delete)
    await expect(store.recordThumbnail('bob', pathToFileURL(path.join(dir, 'victim.jpg')).href)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('refuses_to_report_an_erasure_from_a_store_that_keeps_no_index', async () => {
    const bare: CropStore = { put: async () => 'x', delete: async () => undefined };
    await expect(eraseIdentityCrops(bare, 'alice')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
