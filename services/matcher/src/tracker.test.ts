import { describe, expect, it } from 'vitest';
import { Gallery } from '@faceflow/engine/match';
import { CameraTracker, decide, matchConfidence, type TrackFace } from './tracker.js';
import { near, person } from './embeddings.testkit.js';

const T0 = Date.UTC(2026, 0, 1);
const opts = { threshold: 0.6, margin: 0.03 };

function face(frame: number, index: number, emb: number[], x: number, quality = 0.5): TrackFace {
  return { frameId: `f${frame}`, faceIndex: index, captureTs: T0 + frame * 200, box: { x, y: 100, width: 80, height: 80 }, embedding: Float32Array.from(emb), quality };
}

function gallery(people: Record<string, number[]>): Gallery {
  const g = new Gallery('test', 128);
  for (const [name, e] of Object.entries(people)) g.add(name, [Float32Array.from(e)]);
  return g;
}

describe('CameraTracker', () => {
  const alice = person(1);
  const bob = person(2);

  it('keeps a person walking across the scene as one track', () => {
    const t = new CameraTracker('cam');
    const ids = new Set<string>();
    for (let i = 0; i < 10; i++) ids.add(t.update([face(i, 0, near(alice, i, 0.25), 50 + i * 40)], undefined, opts)[0]!.id);
    expect(ids.size).toBe(1);
    expect(t.live[0]!.faces).toBe(10);
  });

  it('gives two people in one frame two tracks, and keeps them apart when they cross', () => {
    const t = new CameraTracker('cam');
    const seen = { a: new Set<string>(), b: new Set<string>() };
    for (let i = 0; i < 8; i++) {
      const [ta, tb] = t.update([face(i, 0, near(alice, i, 0.2), 100 + i * 30), face(i, 1, near(bob, 100 + i, 0.2), 340 - i * 30)], undefined, opts);
      seen.a.add(ta!.id);
      seen.b.add(tb!.id);
    }
    expect(seen.a.size).toBe(1);
    expect(seen.b.size).toBe(1);
    expect([...seen.a][0]).not.toBe([...seen.b][0]);
  });

  it('starts a new track when another person appears where someone was (a shot cut)', () => {
    const t = new CameraTracker('cam');
    const a = t.update([face(0, 0, alice, 100)], undefined, opts)[0]!.id;
    const b = t.update([face(1, 0, bob, 100)], undefined, opts)[0]!.id;
    expect(b).not.toBe(a);
  });

  it('a_face_the_gallery_names_as_someone_else_never_continues_a_named_track (a look-alike after a shot cut)', () => {
    const evan = person(11);
    const eddie = near(evan, 12, 0.3); // a brother: within the tracker's distance gate of evan
    const g = gallery({ evan, eddie });
    const t = new CameraTracker('cam');
    let track = '';
    for (let i = 0; i < 5; i++) track = t.update([face(i, 0, near(evan, 20 + i, 0.05), 100 + i * 5)], g, opts)[0]!.id;
    expect(t.live[0]!.decision.identity).toBe('evan');
    const next = t.update([face(5, 0, near(eddie, 30, 0.05), 130)], g, opts)[0]!;
    expect(next.id).not.toBe(track);
    expect(next.decision.identity).toBe('eddie');
    // evan's own next face still continues his track
    expect(t.update([face(6, 0, near(evan, 31, 0.05), 135)], g, opts)[0]!.id).toBe(track);
    // without a gallery the same faces would have joined: the gate is what splits them
    const blind = new CameraTracker('cam');
    for (let i = 0; i < 5; i++) blind.update([face(i, 0, near(evan, 20 + i, 0.05), 100 + i * 5)], undefined, opts);
    expect(blind.update([face(5, 0, near(eddie, 30, 0.05), 130)], undefined, opts)[0]!.faces).toBe(6);
  });

  it('ends a track after the timeout; the same person later is a new track', () => {
    const t = new CameraTracker('cam', { timeoutMs: 1000 });
    const a = t.update([face(0, 0, alice, 100)], undefined, opts)[0]!.id;
    expect(t.update([face(4, 0, near(alice, 4), 100)], undefined, opts)[0]!.id).toBe(a); // 800 ms later
    expect(t.update([face(20, 0, near(alice, 20), 100)], undefined, opts)[0]!.id).not.toBe(a); // 3.2 s later
    expect(t.expire(T0 + 20 * 200 + 1001)).toHaveLength(1);
  });

  it('names a track from its best faces, and keeps unknown people unknown', () => {
    const g = gallery({ alice, bob });
    const t = new CameraTracker('cam', { bestK: 3 });
    // poor faces far from alice first, then good ones close to her
    let track = t.update([face(0, 0, near(alice, 1, 0.75), 100, 0.1)], g, opts)[0]!;
    for (let i = 1; i < 6; i++) track = t.update([face(i, 0, near(alice, i + 10, 0.2), 100, 0.9)], g, opts)[0]!;
    expect(track.decision.identity).toBe('alice');
    expect(track.decision.reason).toBe('match');
    expect(track.best).toHaveLength(3);
    expect(track.best.every((f) => f.quality === 0.9)).toBe(true);
    const stranger = person(3);
    const s = t.update([face(6, 1, stranger, 600)], g, opts)[1 - 1]!;
    expect(s.decision.identity).toBeNull();
    expect(s.decision.reason).toBe('above-threshold');
  });

  it('does not name a track whose best faces, one by one, mostly disagree with their mean', () => {
    const g = gallery({ alice, bob });
    const mixed = [near(alice, 1, 0.1), near(bob, 2, 0.1), near(bob, 3, 0.1)].map((e) => Float32Array.from(e));
    const aliceMean = Float32Array.from(near(alice, 4, 0.05));
    expect(decide(aliceMean, g, opts).identity).toBe('alice');
    expect(decide(aliceMean, g, opts, mixed)).toMatchObject({ identity: null, reason: 'ambiguous' });
    const agreeing = [near(alice, 5, 0.1), near(alice, 6, 0.1), near(bob, 7, 0.1)].map((e) => Float32Array.from(e));
    expect(decide(aliceMean, g, opts, agreeing).identity).toBe('alice');
  });

  it('faces under the quality floor never name a track: a track made only of them stays unknown (low-quality)', () => {
    const g = gallery({ alice, bob });
    const t = new CameraTracker('cam', { qualityFloor: 0.3 });
    // alice herself, close to her enrolled face, but every face is poor: tracked, never named
    let track = t.update([face(0, 0, near(alice, 1, 0.1), 100, 0.2)], g, opts)[0]!;
    for (let i = 1; i < 6; i++) track = t.update([face(i, 0, near(alice, i + 1, 0.1), 100 + i * 10, 0.29)], g, opts)[0]!;
    expect(track.faces).toBe(6);
    expect(t.live).toHaveLength(1);
    expect(track.decision).toMatchObject({ identity: null, distance: null, reason: 'low-quality' });
    // one good face joins the same track, and it alone may name it
    track = t.update([face(6, 0, near(alice, 9, 0.1), 160, 0.8)], g, opts)[0]!;
    expect(t.live).toHaveLength(1);
    expect(track.decision).toMatchObject({ identity: 'alice', reason: 'match' });
  });

  it('faces under the quality floor do not vote: poor faces of someone else cannot sway a well-seen track', () => {
    const g = gallery({ alice, bob });
    const t = new CameraTracker('cam', { qualityFloor: 0.3, bestK: 5, maxDistance: 2, reidDistance: 2 });
    // one good face of alice, then four poor faces that look like bob (a merged track, or a misleading blur)
    let track = t.update([face(0, 0, near(alice, 1, 0.1), 100, 0.9)], g, opts)[0]!;
    for (let i = 1; i < 5; i++) track = t.update([face(i, 0, near(bob, i + 20, 0.1), 100, 0.2)], g, opts)[0]!;
    expect(track.faces).toBe(5);
    expect(track.decision).toMatchObject({ identity: 'alice', reason: 'match' });
    // without a floor the same faces outvote her: the mean is no one's and the vote is lost
    const open = new CameraTracker('cam', { qualityFloor: 0, bestK: 5, maxDistance: 2, reidDistance: 2 });
    let o = open.update([face(0, 0, near(alice, 1, 0.1), 100, 0.9)], g, opts)[0]!;
    for (let i = 1; i < 5; i++) o = open.update([face(i, 0, near(bob, i + 20, 0.1), 100, 0.2)], g, opts)[0]!;
    expect(o.decision.identity).not.toBe('alice');
  });

  it('decides unknown with an empty gallery, and maps distances to confidences', () => {
    expect(decide(Float32Array.from(person(1)), undefined, opts)).toMatchObject({ identity: null, reason: 'empty-gallery' });
    expect(matchConfidence(0, 0.6)).toBe(1);
    expect(matchConfidence(0.6, 0.6)).toBeCloseTo(0.5);
    expect(matchConfidence(2, 0.6)).toBe(0);
  });
});
