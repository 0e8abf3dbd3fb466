/** A gallery opened for an engine: a missing file is no gallery yet; another model's or dimension's is GALLERY_FORMAT. */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gallery } from './gallery.js';
import { assertGalleryFits, loadGalleryIfAny } from './gallery-fit.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ff-gfit-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('gallery fit', () => {
  it('a_missing_gallery_file_is_no_gallery_and_an_existing_one_is_read', async () => {
    const f = path.join(dir, 'g.json');
    expect(await loadGalleryIfAny(f)).toBeUndefined();
    const g = new Gallery('m', 2);
    g.add('ada', [new Float32Array([1, 0])]);
    await g.save(f);
    expect((await loadGalleryIfAny(f))?.size).toBe(1);
  });

  it('a_gallery_of_another_model_or_dimension_is_gallery_format_naming_the_file', () => {
    const g = new Gallery('m', 2);
    expect(assertGalleryFits(g, 'g.json', { name: 'm', dim: 2 })).toBe(g);
    expect(() => assertGalleryFits(g, 'g.json', { name: 'other', dim: 2 })).toThrow(expect.objectContaining({ code: 'GALLERY_FORMAT', message: expect.stringContaining('g.json holds "m" embeddings') }));
    expect(() => assertGalleryFits(g, 'g.json', { name: 'm', dim: 3 })).toThrow(expect.objectContaining({ code: 'GALLERY_FORMAT', message: 'g.json holds 2-d "m" embeddings; this engine makes 3-d ones' }));
  });
});
