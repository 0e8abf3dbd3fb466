import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { assertGalleryModel, galleryModelMismatch, precheckGalleryHead } from './compatibility.js';

const HEAD = 'faceapi-recognition+head:site@abcdef01';
const dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-compat-'));
writeFileSync(
  path.join(dir, 'head.json'),
  JSON.stringify({ format: 'faceflow-projection-head', version: 1, name: 'site', baseModel: 'faceapi-recognition', kind: 'linear', inputDim: 128, dim: 128, normalise: 'l2', threshold: 0.5, thresholdSource: 'validation-identities', weightsSha256: 'abcdef01'.repeat(8) }),
);

describe('gallery/model compatibility', () => {
  it('a_gallery_of_another_model_or_head_is_refused_with_what_to_pass', () => {
    expect(galleryModelMismatch('g.json', 'sface-2021dec-int8bq', 'faceapi-recognition').message).toMatch(/holds "sface-2021dec-int8bq" embeddings; .* pass --embedder sface-2021dec-int8bq$/);
    expect(galleryModelMismatch('g.json', HEAD, 'faceapi-recognition').message).toMatch(/enrolled through the projection head "site" \(weights abcdef01\.\.\.\): pass --head/);
    expect(galleryModelMismatch('g.json', 'faceapi-recognition', HEAD, 'h/').message).toMatch(/enrolled without a projection head .* \(--head h\/\)/);
    expect(galleryModelMismatch('g.json', HEAD, 'faceapi-recognition').code).toBe('GALLERY_FORMAT');
    expect(() => assertGalleryModel('g.json', 'a', 'b')).toThrow(/g\.json holds "a" embeddings/);
    expect(() => assertGalleryModel('g.json', undefined, 'b')).not.toThrow();
    expect(() => assertGalleryModel('g.json', 'b', 'b')).not.toThrow();
  });

  it('a_gallery_the_head_cannot_match_is_refused_before_any_model_loads', async () => {
    await expect(precheckGalleryHead('g.json', HEAD, {})).rejects.toThrow(/this engine makes "faceapi-recognition" embeddings/);
    await expect(precheckGalleryHead('g.json', 'faceapi-recognition', { head: dir })).rejects.toThrow(/enrolled without a projection head/);
    await expect(precheckGalleryHead('g.json', HEAD, { head: dir })).resolves.toBeUndefined();
    await expect(precheckGalleryHead('g.json', 'faceapi-recognition', {})).resolves.toBeUndefined();
    await expect(precheckGalleryHead('g.json', undefined, { head: path.join(dir, 'none') })).resolves.toBeUndefined();
  });
});
