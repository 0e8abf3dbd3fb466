import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileGalleryStore, GalleryKey } from '@faceflow/shared';
import { Gallery } from './gallery.js';
import { identify, verify, l2Distance } from './decide.js';

function unit(seed: number, dim = 8): Float32Array {
  // deterministic pseudo-random unit vector
  let s = seed * 9301 + 49297;
  const v = Float32Array.from({ length: dim }, () => {
    s = (s * 9301 + 49297) % 233280;
    return s / 233280 - 0.5;
  });
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

function near(v: Float32Array, eps: number, seed: number): Float32Array {
  const noise = unit(seed, v.length);
  const w = v.map((x, i) => x + eps * noise[i]!);
  const n = Math.hypot(...w);
  return w.map((x) => x / n);
}

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe('Gallery', () => {
  it('an_enrolled_gallery_saved_with_a_key_is_sealed_and_stays_sealed_when_saved_again', async () => {
    // faceflow enroll / verify / identify go through Gallery.load and save (issue 15)
    const dir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-gallery-sealed-'));
    dirs.push(dir);
    const file = path.join(dir, 'g.json');
    const key = GalleryKey.generate().key;
    const g = new Gallery('test', 8, { key });
    g.add('alice', [unit(1)]);
    await g.save(file);
    const text = await readFile(file, 'utf8');
    expect(JSON.parse(text)).toMatchObject({ version: 2, encryption: { kek: key.id }, identities: [{ id: 'alice' }] });
    expect(text).not.toContain(String(Math.round(unit(1)[0]! * 1e7) / 1e7));
    await expect(Gallery.load(file)).rejects.toMatchObject({ code: 'GALLERY_KEY', retriable: false, message: expect.stringMatching(/set FACEFLOW_GALLERY_KEY_FILE/) });
    await expect(Gallery.load(file, { key: GalleryKey.generate().key })).rejects.toMatchObject({ code: 'GALLERY_KEY' });
    const back = await Gallery.load(file, { key });
    expect(l2Distance(back.embeddingsOf('alice')[0]!, unit(1))).toBeLessThan(1e-6);
    back.add('bob', [unit(2)]);
    await back.save(file);
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ version: 2, encryption: { gallery: JSON.parse(text).encryption.gallery } });
    expect((await Gallery.load(file, { key })).names()).toEqual(['alice', 'bob']);
  });

  it('search returns the same nearest identities as brute force', () => {
    const g = new Gallery('test', 8);
    const people = Array.from({ length: 50 }, (_, i) => ({ name: `p${i}`, embs: [unit(i * 3 + 1), unit(i * 3 + 2)] }));
    people.forEach((p) => g.add(p.name, p.embs));
    for (let q = 0; q < 20; q++) {
      const query = unit(1000 + q);
      const brute = people
        .map((p) => ({ name: p.name, distance: Math.min(...p.embs.map((e) => l2Distance(query, e))) }))
        .sort((a, b) => a.distance - b.distance);
      const got = g.search(query, 3);
      expect(got.map((r) => r.name)).toEqual(brute.slice(0, 3).map((r) => r.name));
      got.forEach((r, i) => expect(r.distance).toBeCloseTo(brute[i]!.distance, 5));
    }
  });

  it('round-trips through a versioned file, and rejects a file of another format or version', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-gallery-'));
    dirs.push(dir);
    const g = new Gallery('test', 8);
    g.add('alice', [unit(1), unit(2)]);
    g.add("o'brien", [unit(3)]);
    const file = path.join(dir, 'g.json');
    await g.save(file);
    const back = await Gallery.load(file);
    expect(back.names()).toEqual(["alice", "o'brien"]);
    expect(back.embeddingsOf('alice')).toHaveLength(2);
    expect(l2Distance(back.embeddingsOf('alice')[1]!, unit(2))).toBeLessThan(1e-6);
    const json = JSON.parse(await readFile(file, 'utf8'));
    expect(json).toMatchObject({ format: 'faceflow-gallery', version: 1, model: 'test', dim: 8 });
    expect(json.identities[0]).toMatchObject({ id: 'alice', metadata: {} });
    // the same file opens as a FileGalleryStore: one gallery format across the project
    const store = await FileGalleryStore.open(file, { model: 'test' });
    expect((await store.snapshot()).identities.map((i) => i.id).sort()).toEqual(['alice', "o'brien"]);
    await store.close();
    await expect(FileGalleryStore.open(file, { model: 'other-model' })).rejects.toMatchObject({ code: 'GALLERY_FORMAT' });
    await writeFile(file, JSON.stringify({ ...json, version: 99 }));
    await expect(Gallery.load(file)).rejects.toMatchObject({ code: 'GALLERY_FORMAT', message: expect.stringMatching(/version 99/) });
    const { model: _m, ...noModel } = json;
    await writeFile(file, JSON.stringify(noModel));
    await expect(Gallery.load(file)).rejects.toMatchObject({ code: 'GALLERY_FORMAT', message: expect.stringMatching(/no "model"/) });
    await writeFile(file, '{not json');
    await expect(Gallery.load(file)).rejects.toMatchObject({ code: 'GALLERY_FORMAT' });
    await expect(Gallery.load(path.join(dir, 'missing.json'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('refuses embeddings of the wrong size or not normalised, and bad names', () => {
    const g = new Gallery('test', 8);
    expect(() => g.add('a', [unit(1, 7)])).toThrow(/dimension 7/);
    expect(() => g.add('a', [new Float32Array(8).fill(1)])).toThrow(/L2-normalised/);
    expect(() => g.add('bad\u0001name', [unit(1)])).toThrow(/identity id/);
    expect(() => g.add('b', [])).toThrow(/non-empty/);
  });

  it('an empty gallery is a clear error, and so is an unknown name', () => {
    const g = new Gallery('test', 8);
    expect(() => g.search(unit(1))).toThrow(expect.objectContaining({ code: 'GALLERY_EMPTY' }));
    g.add('bob', [unit(1)]);
    expect(() => verify(unit(2), 'carol', g, 0.5)).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
  });
});

describe('verify and identify', () => {
  const g = new Gallery('test', 8);
  const alice = unit(11);
  const bob = unit(22);
  g.add('alice', [alice]);
  g.add('bob', [bob]);

  it('verify matches the right person and rejects the wrong one', () => {
    const probe = near(alice, 0.05, 5);
    expect(verify(probe, 'alice', g, 0.4)).toMatchObject({ match: true });
    expect(verify(probe, 'bob', g, 0.4)).toMatchObject({ match: false });
  });

  it('identify names the nearest person only under the threshold and beyond the margin', () => {
    expect(identify(near(bob, 0.05, 6), g, { threshold: 0.4 })).toMatchObject({ identity: 'bob', reason: 'match' });
    // a stranger far from everyone is unknown
    const stranger = unit(999);
    const r = identify(stranger, g, { threshold: Math.min(l2Distance(stranger, alice), l2Distance(stranger, bob)) - 0.01 });
    expect(r).toMatchObject({ identity: null, reason: 'above-threshold' });
    // a face halfway between two enrolled people is ambiguous, not a match
    const mid = alice.map((x, i) => x + bob[i]!);
    const n = Math.hypot(...mid);
    const halfway = mid.map((x) => x / n);
    expect(identify(halfway, g, { threshold: 2, margin: 0.05 })).toMatchObject({ identity: null, reason: 'ambiguous' });
  });

  it('identify_returns_its_k_nearest_from_the_search_it_decided_on', () => {
    // issue 14: the matcher shows the top candidates without a second search
    const probe = near(bob, 0.05, 7);
    const two = identify(probe, g, { threshold: 0.4 });
    const one = identify(probe, g, { threshold: 0.4, k: 1 });
    expect(two.neighbours).toEqual(g.search(probe, 2));
    expect(one.neighbours).toEqual(g.search(probe, 1));
    expect([one.identity, one.reason, one.secondDistance]).toEqual([two.identity, two.reason, two.secondDistance]);
    expect(() => identify(probe, g, { threshold: 0.4, k: 0 })).toThrow(/k must be an integer >= 1, got 0/);
  });
});
