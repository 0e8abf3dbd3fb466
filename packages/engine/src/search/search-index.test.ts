import { describe, expect, it } from 'vitest';
import { FaceflowError } from '@faceflow/shared';
import { Gallery } from '../gallery.js';
import { identify } from '../decide.js';
import type { SearchMethod } from './index.js';

const DIM = 128;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function normalise(v: Float32Array): Float32Array {
  let n = 0;
  for (const x of v) n += x * x;
  n = Math.sqrt(n);
  return v.map((x) => x / n);
}

function randomUnit(r: () => number): Float32Array {
  return normalise(Float32Array.from({ length: DIM }, () => r() - 0.5));
}

/** A face-like cluster: people share a common direction (real embeddings sit in a narrow cone), each person's shots sit near their centre. */
function near(v: Float32Array, eps: number, r: () => number): Float32Array {
  return normalise(v.map((x) => x + eps * (r() - 0.5)));
}

function buildPair(method: SearchMethod, people: number, seed: number): { exact: Gallery; other: Gallery; centres: Float32Array[]; r: () => number } {
  const r = rng(seed);
  const cone = randomUnit(r);
  const exact = new Gallery('m', DIM, { search: { method: 'exact' } });
  const other = new Gallery('m', DIM, { search: { method } });
  const centres: Float32Array[] = [];
  for (let i = 0; i < people; i++) {
    const c = i % 2 ? randomUnit(r) : near(cone, 1.2, r); // half random, half real-like (near each other)
    centres.push(c);
    const shots = [near(c, 0.05, r), near(c, 0.05, r), near(c, 0.05, r)].slice(0, 1 + (i % 3));
    exact.add(`p${i}`, shots);
    other.add(`p${i}`, shots);
  }
  return { exact, other, centres, r };
}

function agreement(exact: Gallery, other: Gallery, queries: Float32Array[]): { top2: number; decision: number; matches: number } {
  let top2 = 0;
  let decision = 0;
  let matches = 0;
  for (const q of queries) {
    const a = exact.search(q, 2);
    const b = other.search(q, 2);
    if (a[0]!.name === b[0]!.name && a[1]!.name === b[1]!.name && Math.abs(a[0]!.distance - b[0]!.distance) < 1e-5) top2++;
    const da = identify(q, exact, { threshold: 0.4 });
    const db = identify(q, other, { threshold: 0.4 });
    if (da.identity === db.identity && da.reason === db.reason) decision++;
    if (da.identity !== null) matches++;
  }
  return { top2: top2 / queries.length, decision: decision / queries.length, matches };
}

describe('gallery search index (issue 14)', () => {
  for (const method of ['int8', 'hnsw'] as const) {
    it(`${method}_search_agrees_with_exact_search_on_random_and_face_like_queries`, async () => {
      const { exact, other, centres, r } = buildPair(method, 3000, 7);
      await other.whenSearchReady();
      expect(other.searchMethod).toBe(method);
      const queries = [
        ...centres.slice(0, 1500).map((c) => near(c, 0.08, r)), // enrolled people, new shots
        ...Array.from({ length: 500 }, () => randomUnit(r)), // strangers
      ];
      const a = agreement(exact, other, queries);
      expect(a.matches).toBeGreaterThan(0.5 * 1500);
      expect(a.decision).toBeGreaterThanOrEqual(0.999);
      expect(a.top2).toBeGreaterThanOrEqual(0.98);
      exact.close();
      other.close();
    });
  }

  it('exact_search_matches_a_brute_force_scan_above_the_js_scan_size', () => {
    const { exact, r } = buildPair('exact', 3000, 11); // > 512 rows: the native scan
    expect(exact.embeddingCount).toBeGreaterThan(512);
    for (let i = 0; i < 50; i++) {
      const q = randomUnit(r);
      const brute = exact
        .names()
        .map((name) => ({ name, distance: Math.min(...exact.embeddingsOf(name).map((e) => Math.sqrt(Math.max(0, 2 - 2 * e.reduce((s, x, j) => s + x * q[j]!, 0))))) }))
        .sort((a, b) => a.distance - b.distance);
      const got = exact.search(q, 3);
      expect(got.map((g) => g.name)).toEqual(brute.slice(0, 3).map((b) => b.name));
      got.forEach((g, j) => expect(g.distance).toBeCloseTo(brute[j]!.distance, 5));
    }
  });

  for (const method of ['exact', 'int8', 'hnsw'] as const) {
    it(`${method}_index_follows_adds_and_deletes_without_a_rebuild`, async () => {
      const { exact, other, centres, r } = buildPair(method, 2000, 3);
      await other.whenSearchReady();
      for (let i = 0; i < 2000; i += 3) {
        exact.delete(`p${i}`);
        other.delete(`p${i}`);
      }
      // re-enrolment of a kept identity with new shots; a new identity enrolled
      for (let i = 1; i < 200; i += 3) {
        const shot = near(centres[i]!, 0.05, r);
        exact.add(`p${i}`, [shot]);
        other.add(`p${i}`, [shot]);
      }
      const fresh = randomUnit(r);
      exact.add('newcomer', [fresh]);
      other.add('newcomer', [fresh]);
      expect(other.search(near(fresh, 0.05, r), 1)[0]!.name).toBe('newcomer'); // at once: no rebuild wait
      expect(other.searchMethod).toBe(method);
      for (let i = 0; i < 2000; i += 3) expect(other.has(`p${i}`)).toBe(false);
      const queries = [...centres.map((c) => near(c, 0.08, r)).slice(0, 800), ...Array.from({ length: 200 }, () => randomUnit(r))];
      for (const q of queries.slice(0, 300)) {
        for (const hit of other.search(q, 2)) expect(hit.name.startsWith('p') ? Number(hit.name.slice(1)) % 3 : 1).not.toBe(0);
      }
      const a = agreement(exact, other, queries);
      expect(a.matches).toBeGreaterThan(0.5 * queries.length); // the queries are of enrolled people, mostly named
      expect(a.decision).toBeGreaterThanOrEqual(0.999);
      // every embedding still held is found where it is (a row moved by a deletion is still in the index)
      for (const name of other.names()) expect(other.search(other.embeddingsOf(name)[0]!, 1)[0]!.name).toBe(name);
      expect(other.embeddingCount).toBe(exact.embeddingCount);
    });
  }

  it('a_bad_query_or_enrolment_is_a_clear_error_and_changes_nothing', () => {
    const { exact: g, r } = buildPair('int8', 50, 5);
    const before = { size: g.size, rows: g.embeddingCount, p1: g.embeddingsOf('p1') };
    const q = randomUnit(r);
    const answer = g.search(q, 2);
    const bad = (f: () => unknown, code: string, text: RegExp): void => {
      try {
        f();
        expect.unreachable('no error');
      } catch (e) {
        expect(e).toBeInstanceOf(FaceflowError);
        expect((e as FaceflowError).code).toBe(code);
        expect((e as Error).message).toMatch(text);
        expect((e as Error).message).not.toContain('\n');
      }
    };
    bad(() => g.search(new Float32Array(64), 2), 'INVALID_ARGUMENT', /64 values, the gallery wants 128/);
    const nan = q.slice();
    nan[3] = Number.NaN;
    bad(() => g.search(nan, 2), 'INVALID_ARGUMENT', /non-finite/);
    bad(() => g.add('p1', [new Float32Array(64).fill(0.125)]), 'INVALID_ARGUMENT', /dimension 64/);
    bad(() => g.add('p1', [nan]), 'INVALID_ARGUMENT', /finite/);
    bad(() => g.add('p1', [randomUnit(r), nan]), 'INVALID_ARGUMENT', /finite/);
    bad(() => g.delete('nobody'), 'NOT_FOUND', /no identity "nobody"/);
    expect(g.size).toBe(before.size);
    expect(g.embeddingCount).toBe(before.rows);
    expect(g.embeddingsOf('p1')).toEqual(before.p1);
    expect(g.search(q, 2)).toEqual(answer);
    expect(() => new Gallery('m', DIM, { search: { method: 'annoy' as SearchMethod } })).toThrow(/exact, int8 or hnsw/);
  });

  it('a_query_that_views_a_larger_buffer_is_searched_as_its_own_values', () => {
    // usearch's native scan reads a typed array from the start of its buffer, whatever the view's offset
    const { exact: g, r } = buildPair('exact', 3000, 13);
    expect(g.embeddingCount).toBeGreaterThan(512);
    const q = randomUnit(r);
    const batch = new Float32Array(3 * DIM);
    batch.set(randomUnit(r), 0);
    batch.set(q, DIM);
    const view = batch.subarray(DIM, 2 * DIM);
    for (const method of ['exact', 'int8'] as const) expect(g.searchWith(method, view, 3)).toEqual(g.searchWith(method, q, 3));
  });

  it('a_closed_gallery_index_frees_its_rows_and_refuses_use', async () => {
    const { other } = buildPair('hnsw', 500, 9);
    await other.whenSearchReady();
    other.close();
    expect(other.embeddingCount).toBe(0);
    expect(() => other.search(new Float32Array(DIM).fill(1 / Math.sqrt(DIM)), 1)).toThrow(FaceflowError);
  });
});
