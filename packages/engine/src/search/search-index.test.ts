import { describe, expect, it } from 'vitest';
import { FaceflowError } from '@faceflow/shared';
import { Gallery } from '../match/gallery.js';
import { identify } from '../match/decide.js';
import { defaultIvfLists, type SearchMethod } from './index.js';

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
  for (const method of ['int8', 'hnsw', 'ivf'] as const) {
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

  for (const method of ['exact', 'int8', 'hnsw', 'ivf'] as const) {
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
    expect(() => new Gallery('m', DIM, { search: { method: 'annoy' as SearchMethod } })).toThrow(/auto, exact, int8, hnsw, ivf, got annoy/);
    expect(() => new Gallery('m', DIM, { search: { method: 'ivf', nprobe: 0 } })).toThrow(/nprobe must be an integer >= 1, got 0/);
    expect(() => new Gallery('m', DIM, { search: { method: 'ivf', lists: 2.5 } })).toThrow(/lists must be an integer >= 1, got 2.5/);
    expect(() => new Gallery('m', DIM, { search: { method: 'ivf', decisionSlack: -1 } })).toThrow(/decisionSlack must be between 0 and 2, got -1/);
    expect(() => new Gallery('m', DIM, { search: { approx: 'exact' as 'int8' } })).toThrow(/approx search method must be int8, hnsw or ivf, got exact/);
  });

  it('ivf_decisions_agree_with_exact_search_on_queries_near_the_threshold_and_the_margin', async () => {
    // a crowded neighbourhood (issue 14): every query has identities just inside and just outside the
    // threshold, and a second identity near the margin, spread over many IVF lists
    const r = rng(21);
    const threshold = 0.4;
    const margin = 0.03;
    const exact = new Gallery('m', DIM, { search: { method: 'exact' } });
    const ivf = new Gallery('m', DIM, { search: { method: 'ivf', lists: 64, nprobe: 2 } });
    const add = (name: string, e: Float32Array): void => {
      exact.add(name, [e]);
      ivf.add(name, [e]);
    };
    /** a unit vector at L2 distance `d` from unit `c` (a random direction orthogonal to it) */
    const at = (c: Float32Array, d: number): Float32Array => {
      const u = randomUnit(r);
      let dot = 0;
      for (let j = 0; j < DIM; j++) dot += u[j]! * c[j]!;
      const o = normalise(u.map((x, j) => x - dot * c[j]!));
      const cos = 1 - (d * d) / 2;
      const sin = Math.sqrt(1 - cos * cos);
      return normalise(c.map((x, j) => cos * x + sin * o[j]!));
    };
    const cone = randomUnit(r);
    const queries: Float32Array[] = [];
    for (let i = 0; i < 400; i++) {
      const q = near(cone, 1.5, r);
      queries.push(q);
      const d1 = threshold + (r() - 0.5) * 0.06;
      add(`a${i}`, at(q, d1));
      add(`b${i}`, at(q, d1 + margin + (r() - 0.5) * 0.04));
      for (let j = 0; j < 6; j++) add(`c${i}.${j}`, at(q, threshold + 0.02 + r() * 0.2));
    }
    for (let i = 0; i < 8000; i++) add(`x${i}`, near(cone, 1.5, r));
    await ivf.whenSearchReady();
    expect(ivf.searchMethod).toBe('ivf');
    const decide = (g: Gallery, q: Float32Array): string => {
      const d = identify(q, g, { threshold, margin });
      return `${d.identity}/${d.reason}`;
    };
    const want = queries.map((q) => decide(exact, q));
    expect(new Set(want.map((w) => w.split('/')[1]))).toEqual(new Set(['match', 'ambiguous', 'above-threshold']));
    const got = queries.map((q) => decide(ivf, q));
    expect(got.filter((g, i) => g === want[i]).length / queries.length).toBeGreaterThanOrEqual(0.999);
    expect(ivf.ivfStats.widened).toBeGreaterThan(0); // the decisions in doubt were checked again
    exact.close();
    ivf.close();
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

  it('ivf_answers_stay_right_after_the_gallery_outgrows_its_lists', async () => {
    const { other, centres, r } = buildPair('ivf', 300, 17);
    await other.whenSearchReady();
    for (let i = 0; i < 3000; i++) other.add(`late${i}`, [randomUnit(r)]);
    await other.whenSearchReady();
    expect(other.searchMethod).toBe('ivf');
    for (let i = 0; i < 3000; i += 97) expect(other.search(other.embeddingsOf(`late${i}`)[0]!, 1)[0]!.name).toBe(`late${i}`);
    expect(other.search(near(centres[4]!, 0.02, r), 1)[0]!.name).toBe('p4');
    other.close();
  });

  it('a_bulk_load_with_the_build_held_trains_the_ivf_lists_once_on_the_whole_gallery', async () => {
    // issue 14: a streamed load used to train the quantiser at each fourfold growth and keep a small one
    const r = rng(23);
    const load = async (hold: boolean): Promise<Gallery> => {
      const g = new Gallery('m', DIM, { search: { method: 'ivf' } });
      const resume = hold ? g.deferSearchBuild() : undefined;
      for (let b = 0; b < 20; b++) {
        for (let i = 0; i < 1000; i++) g.add(`p${b * 1000 + i}`, [randomUnit(r)]);
        await new Promise((done) => setImmediate(done)); // a batch's read: the background build may run
      }
      if (hold) expect(g.searchMethod).toBe('int8');
      resume?.();
      await g.whenSearchReady();
      return g;
    };
    const held = await load(true);
    expect(held.ivfLists).toEqual({ lists: defaultIvfLists(20_000), trainedRows: 20_000 });
    expect(held.searchMethod).toBe('ivf');
    expect(held.search(held.embeddingsOf('p12345')[0]!, 1)[0]!.name).toBe('p12345');
    const grown = await load(false);
    expect(grown.ivfLists!.trainedRows).toBeLessThan(20_000); // what the hold avoids
    held.close();
    grown.close();
  });

  it('a_closed_gallery_index_frees_its_rows_and_refuses_use', async () => {
    const { other } = buildPair('hnsw', 500, 9);
    await other.whenSearchReady();
    other.close();
    expect(other.embeddingCount).toBe(0);
    expect(() => other.search(new Float32Array(DIM).fill(1 / Math.sqrt(DIM)), 1)).toThrow(FaceflowError);
  });
});
