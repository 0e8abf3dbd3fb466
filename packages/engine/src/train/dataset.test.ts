import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaceflowError } from '@faceflow/shared';
import { scanIdentityFolders } from './dataset.js';
import { embedIdentities, EmbeddingCache, type BaseEmbedder } from './embed-set.js';
import { decodeImage } from '../image/image.js';

let root: string;
const png = (v: number): Promise<Buffer> => sharp({ create: { width: 20, height: 20, channels: 3, background: { r: v, g: v, b: v } } }).png().toBuffer();

async function folder(dir: string, files: Record<string, Buffer | string>): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, data] of Object.entries(files)) await writeFile(path.join(dir, name), data);
}

/** A stand-in for the engine: the "chip" is the decoded image, the "embedding" its mean value and a constant. */
function fakeBase(calls: { chips: number; embeds: number }): BaseEmbedder {
  return {
    tag: 'fake',
    chipSize: 20,
    async chip(file) {
      calls.chips++;
      const img = await decodeImage(file);
      if (img.data[0] === 0) return null; // black: "no face"
      return img.data;
    },
    async embedChips(chips) {
      calls.embeds += chips.length;
      return chips.map((c) => {
        const m = c.reduce((s, v) => s + v, 0) / c.length / 255;
        const v = Float32Array.from([m, 1 - m]);
        const n = Math.hypot(v[0]!, v[1]!);
        return v.map((x) => x / n);
      });
    },
  };
}

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'faceflow-data-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('training data on disk', () => {
  it('a folder with one identity is a clear error', async () => {
    const dir = path.join(root, 'one');
    await folder(path.join(dir, 'alice'), { '1.png': await png(100), '2.png': await png(120) });
    await expect(scanIdentityFolders(dir)).rejects.toThrow(/1 identity with two or more images \(alice\); training needs at least 2/);
    await expect(scanIdentityFolders(path.join(root, 'missing'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('skips an identity with one image, with a warning', async () => {
    const dir = path.join(root, 'three');
    await folder(path.join(dir, 'alice'), { '1.png': await png(100), '2.png': await png(120) });
    await folder(path.join(dir, 'bob'), { '1.png': await png(150), '2.jpg': await png(160), 'notes.txt': 'x' });
    await folder(path.join(dir, 'carol'), { '1.png': await png(200) });
    await writeFile(path.join(dir, 'loose.jpg'), await png(1));
    const scan = await scanIdentityFolders(dir);
    expect(scan.identities.map((i) => i.name)).toEqual(['alice', 'bob']);
    expect(scan.identities[1]!.files.map((f) => path.basename(f))).toEqual(['1.png', '2.jpg']);
    expect(scan.warnings.join('\n')).toMatch(/identity "carol" skipped: only one image/);
    expect(scan.warnings.join('\n')).toMatch(/1 image\(s\) directly under/);
  });

  it('skips an unreadable image and a faceless one with warnings, and caches the embeddings', async () => {
    const dir = path.join(root, 'bad');
    await folder(path.join(dir, 'alice'), { '1.png': await png(100), '2.png': await png(120), '3.png': await png(130) });
    await folder(path.join(dir, 'bob'), { '1.png': await png(150), '2.png': await png(160), 'broken.jpg': Buffer.from('not a jpeg at all') });
    await folder(path.join(dir, 'dave'), { '1.png': await png(170), 'black.png': await png(0) });
    const scan = await scanIdentityFolders(dir);
    const cache = await EmbeddingCache.open(path.join(root, 'cache', 'e.jsonl'));
    const calls = { chips: 0, embeds: 0 };
    const opts = { augment: ['grayscale', 'brightness'] as const, copies: 2, seed: 1, cache };
    const set = await embedIdentities(scan.identities, fakeBase(calls), { ...opts, augment: [...opts.augment] });
    expect(set.identities.map((i) => [i.name, i.samples.length])).toEqual([['alice', 3], ['bob', 2]]);
    expect(set.identities[0]!.samples[0]!.copies).toHaveLength(3);
    const w = set.warnings.join('\n');
    expect(w).toMatch(/broken\.jpg skipped: UNSUPPORTED_FORMAT/);
    expect(w).toMatch(/black\.png skipped: no face found/);
    expect(w).toMatch(/identity "dave" skipped: 1 usable image/);
    expect(set.stats).toMatchObject({ images: 8, usedImages: 6, skippedImages: 2, computed: 18, fromCache: 0 });
    expect(calls.embeds).toBe(18);

    // a second run reads everything back from the cache (re-opened from its file)
    const again = { chips: 0, embeds: 0 };
    const set2 = await embedIdentities(scan.identities, fakeBase(again), { ...opts, augment: [...opts.augment], cache: await EmbeddingCache.open(path.join(root, 'cache', 'e.jsonl')) });
    expect(again.embeds).toBe(0);
    expect(set2.stats.fromCache).toBe(18);
    expect(set2.identities[1]!.samples[1]!.copies).toEqual(set.identities[1]!.samples[1]!.copies);
  });

  it('image-stage augmentation degrades whole images through the base, and caches apart from chip-stage copies', async () => {
    const dir = path.join(root, 'three');
    const scan = await scanIdentityFolders(dir);
    const cache = await EmbeddingCache.open(path.join(root, 'cache', 'stages.jsonl'));
    const plansSeen: number[][] = [];
    const calls = { chips: 0, embeds: 0 };
    const base = fakeBase(calls);
    const imageBase: BaseEmbedder = {
      ...base,
      async imageChips(file, plans) {
        plansSeen.push(plans.map((p) => p.length));
        const clean = await base.chip(file);
        return clean ? plans.map((p) => (p.length ? clean.map((v) => v >> 1) : clean)) : null;
      },
    };
    const opts = { augment: ['grayscale' as const], copies: 2, seed: 1, cache };
    const chipSet = await embedIdentities(scan.identities, base, opts);
    expect(chipSet.stats.computed).toBe(12);
    const imageSet = await embedIdentities(scan.identities, imageBase, { ...opts, stage: 'image' });
    // the clean copies come from the cache; the two degraded copies of each image are new
    expect(imageSet.stats).toMatchObject({ fromCache: 4, computed: 8 });
    expect(plansSeen).toHaveLength(4);
    for (const p of plansSeen) expect(p).toEqual([0, 1, 1]);
    expect(imageSet.identities[0]!.samples[0]!.copies[0]).toEqual(chipSet.identities[0]!.samples[0]!.copies[0]);
    await expect(embedIdentities(scan.identities, base, { ...opts, stage: 'image' })).rejects.toThrow(/image-stage augmentation needs/);
  });

  it('an unexpected failure of the engine is not swallowed', async () => {
    const dir = path.join(root, 'three');
    const scan = await scanIdentityFolders(dir);
    const base: BaseEmbedder = { ...fakeBase({ chips: 0, embeds: 0 }), chip: async () => { throw new FaceflowError('INTERNAL', 'boom'); } };
    await expect(embedIdentities(scan.identities, base, { augment: [], copies: 0, seed: 1 })).rejects.toThrow(/boom/);
  });
});
