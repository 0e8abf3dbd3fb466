/**
 * A large gallery in Redis for the benchmarks (issue 14: a million-person watch list): `count` identities of
 * one random unit embedding each, written through the store's own streamed import (RedisGalleryStore
 * .replaceStream: bounded HSET batches to a staging hash, swapped in at once), so that the records are the
 * ones an enrolment writes (plaintext JSON, or sealed when the store has a key) and a matcher reads them as it
 * would real ones. The vectors are float32 values (what an embedder sends), from a seeded generator, so the
 * same seed gives the same gallery. Only one batch is held in memory at a time.
 */
import type { GalleryChange, GalleryIdentity } from '@faceflow/shared';
import type { RedisGalleryStore } from '@faceflow/shared/redis';

/** mulberry32: a small seeded generator (deterministic galleries; Math.random cannot be seeded). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random unit vector (Gaussian components, normalised: uniform on the sphere) as float32 values. */
function unitF32(next: () => number, dim: number): number[] {
  const v = new Float32Array(dim);
  let s = 0;
  for (let i = 0; i < dim; i++) {
    const x = Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
    v[i] = x;
    s += x * x;
  }
  const n = Math.sqrt(s);
  for (let i = 0; i < dim; i++) v[i]! /= n;
  return Array.from(v);
}

export const SEED_ID_PREFIX = 'seed-';

/** The seeded identities, `batch` at a time. */
export function* seededIdentities(count: number, o: { dim?: number; seed?: number; batch?: number } = {}): Generator<GalleryIdentity[]> {
  const dim = o.dim ?? 128;
  const batch = o.batch ?? 1000;
  const next = rng(o.seed ?? 14);
  const updatedAt = Date.now();
  for (let start = 0; start < count; start += batch) {
    const out: GalleryIdentity[] = [];
    for (let i = start; i < Math.min(count, start + batch); i++) out.push({ id: `${SEED_ID_PREFIX}${i}`, embeddings: [unitF32(next, dim)], metadata: {}, updatedAt });
    yield out;
  }
}

/** Replaces the store's gallery with `count` seeded identities; the import change and the seconds it took. */
export async function seedGallery(store: RedisGalleryStore, count: number, o: { dim?: number; seed?: number; model?: string } = {}): Promise<{ change: GalleryChange; seconds: number }> {
  const t = process.hrtime.bigint();
  const change = await store.replaceStream(seededIdentities(count, o), o.model ? { model: o.model } : {});
  return { change, seconds: Number(process.hrtime.bigint() - t) / 1e9 };
}
