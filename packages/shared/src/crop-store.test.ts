import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirCropStore } from './crop-store.js';

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
});
