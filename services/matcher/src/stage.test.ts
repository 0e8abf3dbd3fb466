import { describe, expect, it } from 'vitest';
import { DEFAULT_QUALITY_FLOOR, Gallery } from '@faceflow/engine/match';
import { FaceSchema, MatchSchema, MemoryGalleryStore, stageHandler, withDeadLetter, type ConsumedMessage, type Face, type HandlerContext, type OutgoingMessage } from '@faceflow/shared';
import { createMetrics } from '@faceflow/shared/ops';
import { GalleryCache } from './gallery-cache.js';
import { DEFAULT_MATCH_QUALITY_FLOOR, MatcherStage } from './stage.js';
import { near, person } from './embeddings.testkit.js';

const T0 = Date.UTC(2026, 0, 1);
const ctx: HandlerContext = { signal: new AbortController().signal, heartbeat: async () => undefined, markProcessed: () => undefined };
let offset = 0;

function msg(value: Buffer): ConsumedMessage {
  return { topic: 'faces', partition: 0, offset: String(offset++), key: 'cam', value, headers: {}, timestamp: Date.now() };
}

function faceMsg(frame: number, index: number, embedding: number[], x = 100, quality = 0.8, cameraId = 'cam'): ConsumedMessage {
  const f: Face = {
    frameId: `f${frame}`,
    cameraId,
    captureTs: T0 + frame * 200,
    faceIndex: index,
    box: { x, y: 50, width: 80, height: 80 },
    landmarks: [],
    score: 0.9,
    quality,
    embedding,
    model: 'test',
  };
  return msg(FaceSchema.encode(f));
}

describe('MatcherStage', () => {
  const alice = person(1);
  const view = (g: Gallery | undefined) => ({ current: g, version: 1 });
  const galleryOf = () => {
    const g = new Gallery('test', 128);
    g.add('alice', [Float32Array.from(alice)]);
    return g;
  };

  it('emits one Match per face with the track decision', async () => {
    const stage = new MatcherStage({ gallery: view(galleryOf()), matchesTopic: 'matches', threshold: 0.6 });
    const r = await stage.process([faceMsg(0, 0, near(alice, 1)), faceMsg(0, 1, person(9), 500), faceMsg(1, 0, near(alice, 2))], ctx);
    r.commit?.();
    const matches = r.outputs[0]!.messages.map((m) => MatchSchema.decode(m.value));
    expect(matches).toHaveLength(3);
    expect(matches[0]!.track).toMatchObject({ identity: 'alice', faces: 1, reason: 'match' });
    expect(matches[1]!.track?.identity).toBeNull();
    expect(matches[2]!.trackId).toBe(matches[0]!.trackId);
    expect(matches[2]!.track?.faces).toBe(2);
    expect(matches[0]!.candidates[0]!.identity).toBe('alice');
    expect(r.outputs[0]!.messages[0]!.key).toBe('cam');
  });

  it('searches_the_gallery_once_per_face_for_its_decision_and_candidates_and_once_for_its_track', async () => {
    // issue 14: at 1M identities a search costs ~10 ms; the stage searched three times per face
    const g = galleryOf();
    g.add('bob', [Float32Array.from(person(2))]);
    let searches = 0;
    const search = g.search.bind(g);
    g.search = (...a: Parameters<Gallery['search']>) => {
      searches++;
      return search(...a);
    };
    const stage = new MatcherStage({ gallery: view(g), matchesTopic: 'matches', threshold: 0.6, topK: 2 });
    const first = await stage.process([faceMsg(0, 0, near(alice, 1))], ctx);
    expect(searches).toBe(2); // the face (decision + candidates), its new track's mean
    const m = MatchSchema.decode(first.outputs[0]!.messages[0]!.value);
    expect([m.identity, m.track?.identity, m.candidates.map((c) => c.identity)]).toEqual(['alice', 'alice', ['alice', 'bob']]);
    searches = 0;
    await stage.process([faceMsg(1, 0, near(alice, 2))], ctx); // a named track exists: the split rule reuses the face's search
    expect(searches).toBe(2 + 2); // the face, the track's mean, and its two faces' support check
  });

  it('never names a face under the quality floor, nor a track made only of such faces (reason low-quality)', async () => {
    const metrics = createMetrics();
    const stage = new MatcherStage({ gallery: view(galleryOf()), matchesTopic: 'matches', threshold: 0.6, qualityFloor: 0.3, metrics });
    const poor = await stage.process([faceMsg(0, 0, near(alice, 1), 100, 0.1), faceMsg(1, 0, near(alice, 2), 100, 0.29)], ctx);
    poor.commit?.();
    const [m0, m1] = poor.outputs[0]!.messages.map((m) => MatchSchema.decode(m.value));
    // the same track, candidates listed for diagnosis, but nobody is named
    expect(m1!.trackId).toBe(m0!.trackId);
    for (const m of [m0!, m1!]) {
      expect(m.identity).toBeNull();
      expect(m.candidates[0]!.identity).toBe('alice');
      expect(m.track).toMatchObject({ identity: null, reason: 'low-quality' });
    }
    expect(m1!.track!.faces).toBe(2);
    expect(await metrics.metricsText()).toMatch(/faceflow_matcher_low_quality_faces_total 2/);
    // a good face of the same person joins the track and names it
    const good = await stage.process([faceMsg(2, 0, near(alice, 3), 100, 0.9)], ctx);
    const m2 = MatchSchema.decode(good.outputs[0]!.messages[0]!.value);
    expect(m2).toMatchObject({ trackId: m0!.trackId, identity: 'alice', track: { identity: 'alice', faces: 3, reason: 'match' } });
  });

  it('applies the default quality floor (the engine\'s enrolment floor) when none is given', async () => {
    const stage = new MatcherStage({ gallery: view(galleryOf()), matchesTopic: 'matches', threshold: 0.6 });
    expect(DEFAULT_MATCH_QUALITY_FLOOR).toBe(DEFAULT_QUALITY_FLOOR);
    const r = await stage.process([faceMsg(0, 0, near(alice, 1), 100, DEFAULT_QUALITY_FLOOR - 0.01), faceMsg(1, 0, near(alice, 2), 400, DEFAULT_QUALITY_FLOOR)], ctx);
    const [under, at] = r.outputs[0]!.messages.map((m) => MatchSchema.decode(m.value));
    expect(under!.track).toMatchObject({ identity: null, reason: 'low-quality' });
    expect(at!.track).toMatchObject({ identity: 'alice', reason: 'match' });
  });

  it('drops redelivered faces (same frameId and faceIndex) before they touch a track', async () => {
    const stage = new MatcherStage({ gallery: view(galleryOf()), matchesTopic: 'matches', threshold: 0.6 });
    const first = [faceMsg(0, 0, near(alice, 1)), faceMsg(1, 0, near(alice, 2))];
    const a = await stage.process(first, ctx);
    a.commit?.();
    const again = await stage.process([msg(first[0]!.value), msg(first[1]!.value), faceMsg(2, 0, near(alice, 3))], ctx);
    again.commit?.();
    const out = again.outputs[0]!.messages.map((m) => MatchSchema.decode(m.value));
    expect(out.map((m) => m.frameId)).toEqual(['f2']);
    expect(out[0]!.track?.faces).toBe(3);
  });

  it('reports a malformed message as a failure and goes on', async () => {
    const stage = new MatcherStage({ gallery: view(undefined), matchesTopic: 'matches', threshold: 0.6 });
    const bad = msg(Buffer.from('{"schema":"face","v":1}'));
    const r = await stage.process([bad, faceMsg(0, 0, alice)], ctx);
    expect(r.failures?.map((f) => f.message.offset)).toEqual([bad.offset]);
    expect(r.failures?.[0]!.error.code).toBe('INVALID_MESSAGE');
    expect(r.outputs[0]!.messages).toHaveLength(1);
    expect(MatchSchema.decode(r.outputs[0]!.messages[0]!.value).track?.reason).toBe('empty-gallery');
  });

  it('a_face_of_the_wrong_dimension_or_with_a_nan_is_a_one_line_failure_and_leaves_the_tracks_and_gallery_as_they_were', async () => {
    // issue 14: bad input at the matcher; a NaN cannot be encoded, so it is written into the message by hand
    const g = galleryOf();
    const stage = new MatcherStage({ gallery: view(g), matchesTopic: 'matches', threshold: 0.6 });
    const half = near(alice, 1).slice(0, 64);
    const short = faceMsg(0, 0, half.map((x) => x / Math.hypot(...half)));
    const nan = faceMsg(0, 1, near(alice, 1));
    const doc = JSON.parse(nan.value.toString('utf8')) as { embedding: unknown[] };
    doc.embedding[5] = 'NaN';
    const nanMsg = msg(Buffer.from(JSON.stringify(doc).replace('"NaN"', 'NaN')));
    const r = await stage.process([short, nanMsg], ctx);
    expect(r.outputs[0]?.messages ?? []).toHaveLength(0);
    expect(r.failures?.map((f) => [f.message.offset, f.error.code])).toEqual([[short.offset, 'INVALID_MESSAGE'], [nanMsg.offset, 'INVALID_MESSAGE']]);
    for (const f of r.failures!) expect(f.error.message).not.toContain('\n');
    expect(r.failures![0]!.error.message).toMatch(/64/);
    expect([g.size, g.embeddingCount]).toEqual([1, 1]);
    // the next good face starts the camera's first track: the bad ones made none
    const ok = await stage.process([faceMsg(1, 0, near(alice, 2))], ctx);
    expect(MatchSchema.decode(ok.outputs[0]!.messages[0]!.value).track).toMatchObject({ identity: 'alice', faces: 1 });
  });

  it('with a model set, refuses faces of another model or projection head (failure, counted), and matches its own', async () => {
    const metrics = createMetrics();
    const headed = 'test+head:site@0123abcd';
    const stage = new MatcherStage({ gallery: view(galleryOf()), matchesTopic: 'matches', threshold: 0.6, model: headed, metrics });
    const base = faceMsg(0, 0, near(alice, 1));
    const r = await stage.process([base], ctx);
    expect(r.outputs[0]!.messages).toHaveLength(0);
    expect(r.failures?.map((f) => f.message.offset)).toEqual([base.offset]);
    expect(r.failures?.[0]!.error.code).toBe('INVALID_MESSAGE');
    expect(r.failures?.[0]!.error.message).toMatch(/embedded by "test"; this matcher compares "test\+head:site@0123abcd" embeddings.*FACEFLOW_HEAD/);
    expect(await metrics.metricsText()).toMatch(/faceflow_messages_dropped_total\{stage="matcher",reason="model_mismatch"\} 1/);
    const own = new MatcherStage({ gallery: view(galleryOf()), matchesTopic: 'matches', threshold: 0.6, model: 'test' });
    const ok = await own.process([faceMsg(0, 0, near(alice, 1))], ctx);
    expect(ok.failures ?? []).toHaveLength(0);
    expect(MatchSchema.decode(ok.outputs[0]!.messages[0]!.value).track?.identity).toBe('alice');
  });

  it('follows gallery changes without a restart', async () => {
    const store = new MemoryGalleryStore();
    const cache = new GalleryCache({ store });
    await cache.start();
    const stage = new MatcherStage({ gallery: cache, matchesTopic: 'matches', threshold: 0.6 });
    const before = await stage.process([faceMsg(0, 0, near(alice, 1))], ctx);
    expect(MatchSchema.decode(before.outputs[0]!.messages[0]!.value).track?.identity).toBeNull();
    await store.put('alice', [alice]);
    await new Promise((r) => setTimeout(r, 10));
    expect(cache.version).toBe(1);
    const after = await stage.process([faceMsg(1, 0, near(alice, 2))], ctx);
    expect(MatchSchema.decode(after.outputs[0]!.messages[0]!.value)).toMatchObject({ galleryVersion: 1, track: { identity: 'alice' } });
    await store.delete('alice');
    await new Promise((r) => setTimeout(r, 10));
    expect(cache.current).toBeUndefined();
    await cache.close();
  });
});

describe('MatcherStage failures', () => {
  it('counts_a_malformed_message_once_though_the_dead_letter_policy_runs_it_again', async () => {
    const metrics = createMetrics();
    const g = new Gallery('test', 128);
    g.add('alice', [Float32Array.from(person(1))]);
    const stage = new MatcherStage({ gallery: { current: g, version: 1 }, matchesTopic: 'matches', threshold: 0.6, metrics });
    const published: Array<{ topic: string; messages: OutgoingMessage[] }> = [];
    const publish = async (topic: string, messages: OutgoingMessage[]): Promise<void> => void published.push({ topic, messages });
    const handler = withDeadLetter(stageHandler(stage, publish), { publish, groupId: 'g' });
    await handler({ topic: 'faces', partition: 0, messages: [msg(Buffer.from('{}')), faceMsg(50, 0, near(person(1), 3)), msg(Buffer.from('nope')), msg(Buffer.from('[]'))] }, ctx);
    expect(published.filter((p) => p.topic === 'faces.dlq')).toHaveLength(3);
    expect(await metrics.metricsText()).toMatch(/faceflow_messages_dropped_total\{stage="matcher",reason="invalid_message"\} 3\n/);
  });

  describe('recurring strangers (issue 14)', () => {
    const alice = person(1);
    const view = (g: Gallery | undefined) => ({ current: g, version: 1 });
    const galleryOf = () => {
      const g = new Gallery('test', 128);
      g.add('alice', [Float32Array.from(alice)]);
      return g;
    };
    const stranger = person(21);
    const other = person(22);
    const decodeAll = (r: { outputs: { messages: OutgoingMessage[] }[] }) => r.outputs[0]!.messages.map((m) => MatchSchema.decode(m.value));

    it('an_unknown_person_seen_again_after_their_track_ended_carries_the_cluster_of_their_earlier_track', async () => {
      const stage = new MatcherStage({ gallery: view(galleryOf()), matchesTopic: 'matches', threshold: 0.6, unknownClusters: { threshold: 0.5, retentionMs: 3_600_000, idPrefix: 'i1-' } });
      const first = decodeAll(await stage.process([faceMsg(0, 0, near(stranger, 1)), faceMsg(1, 0, near(stranger, 2)), faceMsg(1, 1, near(alice, 1), 500)], ctx));
      // nobody was seen before: no cluster on any Match
      for (const m of first) expect(m.track?.unknownCluster).toBeUndefined();
      // 10 s later (the tracks have timed out) the stranger, alice and someone new
      const later = decodeAll(await stage.process([faceMsg(50, 0, near(stranger, 3)), faceMsg(50, 1, near(alice, 2), 500), faceMsg(50, 2, near(other, 1), 900)], ctx));
      expect(later[0]!.trackId).not.toBe(first[0]!.trackId);
      expect(later[0]!.track).toMatchObject({ identity: null, unknownCluster: { members: 1, firstSeen: T0 + 200, lastSeen: T0 + 200 } });
      expect(later[0]!.track!.unknownCluster!.id).toMatch(/^i1-/);
      expect(later[1]!.track?.identity).toBe('alice');
      expect(later[1]!.track?.unknownCluster).toBeUndefined();
      expect(later[2]!.track?.unknownCluster).toBeUndefined();
      // only the unknown track was clustered; named tracks never are
      expect(stage.unknownClusters()).toHaveLength(1);
      expect(stage.unknownClusters()[0]!.cameras).toEqual({ cam: 1 });
      // the stranger's second track ends too: the same cluster, now two members
      const third = decodeAll(await stage.process([faceMsg(100, 0, near(stranger, 4))], ctx));
      expect(third[0]!.track?.unknownCluster).toMatchObject({ id: later[0]!.track!.unknownCluster!.id, members: 2 });
      expect(stage.unknownClusters()).toHaveLength(2); // the stranger's, and the newcomer's own
    });

    it('an_unknown_track_older_than_the_retention_is_forgotten', async () => {
      const stage = new MatcherStage({ gallery: view(galleryOf()), matchesTopic: 'matches', threshold: 0.6, unknownClusters: { threshold: 0.5, retentionMs: 5_000 } });
      await stage.process([faceMsg(0, 0, near(stranger, 1))], ctx);
      // 20 s later: the earlier track ended and its retention has passed
      const later = decodeAll(await stage.process([faceMsg(100, 0, near(stranger, 2))], ctx));
      expect(later[0]!.track?.unknownCluster).toBeUndefined();
      expect(stage.unknownClusters()).toHaveLength(0);
    });

    it('without_unknown_clusters_no_match_carries_a_cluster', async () => {
      const stage = new MatcherStage({ gallery: view(galleryOf()), matchesTopic: 'matches', threshold: 0.6 });
      await stage.process([faceMsg(0, 0, near(stranger, 1))], ctx);
      const later = decodeAll(await stage.process([faceMsg(50, 0, near(stranger, 2))], ctx));
      expect(later[0]!.track?.unknownCluster).toBeUndefined();
      expect(stage.unknownClusters()).toEqual([]);
    });
  });
});
