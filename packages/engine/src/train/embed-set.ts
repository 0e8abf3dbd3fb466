/**
 * Base embeddings of a training set, computed once: for every image, the frozen base embedder's vector of the
 * clean aligned chip (copy 0) and of `copies` augmented chips (augment.ts), each augmentation drawn from a
 * generator seeded by (seed, image, copy) so that it does not depend on the order or the concurrency of the
 * work. The base network is the slow part (tens of ms a chip on a CPU core); training the head then runs on
 * these vectors only.
 *
 * With a cache (EmbeddingCache), each vector is stored under a key of the base embedder's tag, the image's
 * path, size and mtime, and the exact degradation drawn: a second run, or a run with more copies, embeds only
 * what is new. An image that cannot be read, or where no face is found, is skipped with a warning.
 */
import { createHash } from 'node:crypto';
import { appendFile, mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { FaceflowError } from '@faceflow/shared';
import { drawAugmentation, chipFaceSize, DEFAULT_AUGMENT_RANGES, type Augmentation, type AugmentRanges } from './augment.js';
import { degradePixels, type DegradeOp } from '../image/degrade.js';
import { Rng, deriveSeed } from '../eval/rng.js';
import type { IdentityFolder } from './dataset.js';
import type { TrainIdentity, TrainSample } from './trainer.js';

/** What the set needs of the base embedder (trainProjectionHead backs it with the base engine, projection-head-run.ts). */
export interface BaseEmbedder {
  /** identifies the embeddings: model name and every setting that changes them (flip, face choice, ...) */
  tag: string;
  chipSize: number;
  /** dlib chip padding (default 0.25), for the face size of `lowres` */
  chipPadding?: number;
  /** the aligned chip of the image's face, or null when it has none; throws a FaceflowError when unreadable */
  chip(file: string): Promise<Uint8Array | null>;
  /**
   * For `stage: 'image'`: the aligned chips of degraded copies of the whole image (plans[i] applied to the
   * picture before detection and landmarks, as a camera would), or null when the clean image has no face;
   * the first plan is empty (the clean chip). Throws a FaceflowError when the image is unreadable.
   */
  imageChips?(file: string, plans: DegradeOp[][]): Promise<Uint8Array[] | null>;
  embedChips(chips: Uint8Array[]): Promise<Float32Array[]>;
}

/** Embeddings by key, in a JSON-lines file that only grows (a killed run keeps what it had computed). */
export class EmbeddingCache {
  private constructor(private readonly file: string, private readonly map: Map<string, Float32Array>) {}

  static async open(file: string): Promise<EmbeddingCache> {
    const map = new Map<string, Float32Array>();
    let text = '';
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new FaceflowError('INVALID_ARGUMENT', `cannot read cache ${file}: ${(e as Error).message}`, { cause: e });
    }
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        const { k, v } = JSON.parse(line) as { k: string; v: string };
        const b = Buffer.from(v, 'base64');
        map.set(k, new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
      } catch {
        // a line cut short by a killed run: ignore it
      }
    }
    try {
      await mkdir(path.dirname(file), { recursive: true });
    } catch (e) {
      throw new FaceflowError('INVALID_ARGUMENT', `cannot create the cache folder for ${file}: ${(e as Error).message}`, { cause: e });
    }
    return new EmbeddingCache(file, map);
  }

  get size(): number {
    return this.map.size;
  }

  get(key: string): Float32Array | undefined {
    return this.map.get(key);
  }

  async put(entries: Array<[string, Float32Array]>): Promise<void> {
    if (entries.length === 0) return;
    const lines = entries.map(([k, v]) => {
      this.map.set(k, v);
      return `${JSON.stringify({ k, v: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') })}\n`;
    });
    await appendFile(this.file, lines.join(''));
  }
}

export interface EmbedSetOptions {
  augment: Augmentation[];
  /** augmented copies per image (besides the clean one); 0 without augmentations */
  copies: number;
  /**
   * where augmentations apply: 'chip' (default) degrades the aligned chip, cut with the clean image's
   * landmarks (fast: one detection per image); 'image' degrades the whole picture before detection and
   * landmarks, so the copies also carry the alignment errors of degraded footage (needs base.imageChips)
   */
  stage?: 'chip' | 'image';
  seed: number;
  ranges?: AugmentRanges;
  cache?: EmbeddingCache;
  /** images in flight (default 4) */
  concurrency?: number;
  onImage?(done: number, total: number): void;
}

export interface EmbeddedSet {
  identities: TrainIdentity[];
  warnings: string[];
  stats: { images: number; usedImages: number; skippedImages: number; vectors: number; fromCache: number; computed: number };
}

function keyOf(tag: string, file: string, size: number, mtime: number, ops: DegradeOp[], stage: 'chip' | 'image'): string {
  // the clean copy is the same whatever the stage; the chip stage keeps the keys it had before stages existed
  const parts: unknown[] = [tag, path.resolve(file), size, mtime, ops];
  if (stage === 'image' && ops.length > 0) parts.push('image');
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url').slice(0, 32);
}

export async function embedIdentities(folders: IdentityFolder[], base: BaseEmbedder, options: EmbedSetOptions): Promise<EmbeddedSet> {
  const copies = options.augment.length > 0 ? options.copies : 0;
  if (!Number.isInteger(copies) || copies < 0 || copies > 1000) throw new FaceflowError('INVALID_ARGUMENT', `copies must be an integer in [0, 1000], got ${options.copies}`);
  const ranges = options.ranges ?? DEFAULT_AUGMENT_RANGES;
  const stage = options.stage ?? 'chip';
  if (stage === 'image' && !base.imageChips) throw new FaceflowError('INVALID_ARGUMENT', 'image-stage augmentation needs a base embedder that can degrade whole images');
  const faceSize = chipFaceSize(base.chipSize, base.chipPadding ?? 0.25);
  const jobs = folders.flatMap((f, id) => f.files.map((file) => ({ id, file })));
  const results: Array<Float32Array[] | null> = new Array(jobs.length).fill(null);
  const warnings: string[] = [];
  const stats = { images: jobs.length, usedImages: 0, skippedImages: 0, vectors: 0, fromCache: 0, computed: 0 };
  let done = 0;
  let next = 0;

  const one = async (j: number): Promise<void> => {
    const { file } = jobs[j]!;
    let st;
    try {
      st = await stat(file);
    } catch {
      warnings.push(`${file} skipped: cannot be read`);
      return;
    }
    const plans: DegradeOp[][] = [[]];
    for (let c = 1; c <= copies; c++) plans.push(drawAugmentation(options.augment, new Rng(deriveSeed(options.seed, path.resolve(file), c)), ranges));
    const keys = plans.map((ops) => keyOf(base.tag, file, st.size, st.mtimeMs, ops, stage));
    const vectors: Array<Float32Array | undefined> = keys.map((k) => options.cache?.get(k));
    const missing = vectors.flatMap((v, i) => (v ? [] : [i]));
    stats.fromCache += vectors.length - missing.length;
    if (missing.length > 0) {
      let chips: Uint8Array[] | null;
      try {
        if (stage === 'image') {
          chips = await base.imageChips!(file, [[], ...missing.filter((i) => i > 0).map((i) => plans[i]!)]);
          if (chips && !missing.includes(0)) chips = chips.slice(1);
        } else {
          const chip = await base.chip(file);
          chips = chip ? await Promise.all(missing.map((i) => degradePixels(chip, base.chipSize, base.chipSize, plans[i]!, faceSize))) : null;
        }
      } catch (e) {
        if (e instanceof FaceflowError && e.code !== 'INTERNAL') {
          warnings.push(`${file} skipped: ${e.code}: ${e.message}`);
          return;
        }
        throw e;
      }
      if (!chips) {
        warnings.push(`${file} skipped: no face found`);
        return;
      }
      const embedded = await base.embedChips(chips);
      missing.forEach((i, n) => (vectors[i] = embedded[n]!));
      stats.computed += missing.length;
      await options.cache?.put(missing.map((i) => [keys[i]!, vectors[i]!]));
    }
    results[j] = vectors as Float32Array[];
  };

  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const j = next++;
      await one(j);
      options.onImage?.(++done, jobs.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 4, jobs.length)) }, worker));

  const identities: TrainIdentity[] = folders.map((f) => ({ name: f.name, samples: [] as TrainSample[] }));
  jobs.forEach((job, j) => {
    const v = results[j];
    if (!v) {
      stats.skippedImages++;
      return;
    }
    stats.usedImages++;
    stats.vectors += v.length;
    identities[job.id]!.samples.push({ key: path.relative(path.dirname(path.dirname(job.file)), job.file), copies: v });
  });
  const kept = identities.filter((idt) => {
    if (idt.samples.length >= 2) return true;
    warnings.push(`identity "${idt.name}" skipped: ${idt.samples.length} usable image(s) after decoding and face detection`);
    return false;
  });
  warnings.sort();
  return { identities: kept, warnings, stats };
}
