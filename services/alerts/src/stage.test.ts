import { describe, expect, it } from 'vitest';
import { IdentityEventSchema, MatchSchema, stageHandler, withDeadLetter, type ConsumedMessage, type HandlerContext, type IdentityEvent, type Match, type OutgoingMessage, type StageResult } from '@faceflow/shared';
import { createMetrics } from '@faceflow/shared/ops';
import { AlertsStage, type AlertRules, type AlertsStageOptions } from './stage.js';
import { DirCropStore, type CropStore } from '@faceflow/shared';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const T0 = Date.UTC(2026, 0, 1);
const ctx: HandlerContext = { signal: new AbortController().signal, heartbeat: async () => undefined, markProcessed: () => undefined };
let offset = 0;

function match(trackId: string, t: number, identity: string | null, faces: number, o: { camera?: string; confidence?: number; startTs?: number; crop?: string; best?: string; cluster?: string } = {}): ConsumedMessage {
  const m: Match = {
    frameId: `f${t}`,
    cameraId: o.camera ?? 'cam',
    captureTs: T0 + t,
    faceIndex: 0,
    trackId,
    box: { x: 0, y: 0, width: 50, height: 50 },
    identity,
    score: 0.8,
    candidates: [],
    quality: 0.7,
    galleryVersion: 1,
    track: {
      identity,
      confidence: o.confidence ?? 0.8,
      startTs: o.startTs ?? T0 + t - (faces - 1) * 100,
      faces,
      reason: identity ? 'match' : 'above-threshold',
      ...((o.best ?? o.crop) ? { bestCropRef: o.best ?? o.crop } : {}),
      ...(o.cluster ? { unknownCluster: { id: o.cluster, members: 2, firstSeen: T0 - 60_000, lastSeen: T0 - 30_000 } } : {}),
    },
    ...(o.crop ? { cropRef: o.crop } : {}),
  };
  return { topic: 'matches', partition: 0, offset: String(offset++), key: m.cameraId, value: MatchSchema.encode(m), headers: {}, timestamp: Date.now() };
}

function events(r: StageResult | { topic: string; messages: { value: Buffer }[] }[]): IdentityEvent[] {
  const outputs = Array.isArray(r) ? r : r.outputs;
  return outputs.flatMap((o) => o.messages.map((m) => IdentityEventSchema.decode(m.value)));
}

async function run(stage: AlertsStage, msgs: ConsumedMessage[]): Promise<IdentityEvent[]> {
  const r = await stage.process(msgs, ctx);
  r.commit?.();
  return events(r);
}

function stageWith(rules: Partial<AlertRules> = {}, now = () => 0, extra: Partial<AlertsStageOptions> = {}): AlertsStage {
  return new AlertsStage({ eventsTopic: 'identity-events', rules: { minFaces: 3, cooldownMs: 10_000, minStable: 1, ...rules }, trackTimeoutMs: 2000, idleMs: 5000, now, ...extra });
}

describe('AlertsStage', () => {
  it('an_unknown_persons_events_carry_the_recurring_stranger_cluster_the_matcher_gave_and_a_named_ones_never_do', async () => {
    const s = stageWith();
    const enter = await run(s, [match('t1', 0, null, 1, { cluster: 'u7' }), match('t1', 100, null, 2, { cluster: 'u7' }), match('t1', 200, null, 3, { cluster: 'u7' })]);
    expect(enter).toMatchObject([{ type: 'enter', identity: null, unknownCluster: { id: 'u7', members: 2, firstSeen: T0 - 60_000, lastSeen: T0 - 30_000 } }]);
    const named = await run(s, [match('t2', 300, 'alice', 3, { cluster: 'u8' })]);
    expect(named).toHaveLength(1);
    expect(named[0]!.unknownCluster).toBeUndefined();
    const plain = await run(s, [match('t3', 400, null, 3)]);
    expect(plain[0]!.unknownCluster).toBeUndefined();
    const exits = await run(s, [match('x', 5000, null, 1)]);
    expect(exits.find((e) => e.trackId === 't1')).toMatchObject({ type: 'exit', unknownCluster: { id: 'u7' } });
  });

  it('announces a confirmed track once, updates on an identity change, exits after the timeout', async () => {
    const s = stageWith();
    expect(await run(s, [match('t1', 0, null, 1), match('t1', 100, null, 2)])).toEqual([]);
    const enter = await run(s, [match('t1', 200, null, 3), match('t1', 300, null, 4)]);
    expect(enter.map((e) => [e.type, e.identity])).toEqual([['enter', null]]);
    const upd = await run(s, [match('t1', 400, 'alice', 5), match('t1', 500, 'alice', 6)]);
    expect(upd.map((e) => [e.type, e.identity])).toEqual([['update', 'alice']]);
    // another track on the same camera, 3 s later: t1 has timed out
    const later = await run(s, [match('t2', 3500, null, 1)]);
    expect(later).toMatchObject([{ type: 'exit', trackId: 't1', identity: 'alice', startTs: T0, endTs: T0 + 500 }]);
  });

  it('does not flood: a person who flickers out and back within the cooldown is one visit', async () => {
    const s = stageWith();
    const a = await run(s, [match('t1', 0, 'alice', 3), match('t1', 100, 'alice', 4)]);
    expect(a.map((e) => e.type)).toEqual(['enter']);
    const b = await run(s, [match('x', 2500, null, 1), match('t2', 2600, 'alice', 3), match('t2', 2700, 'alice', 4)]);
    expect(b.map((e) => `${e.type}:${e.trackId}`)).toEqual(['exit:t1']);
    // a second track of alice while the first is still live is not announced either
    const c = await run(s, [match('t3', 2800, 'alice', 3)]);
    expect(c).toEqual([]);
    // after the cooldown (measured from the last sighting, suppressed tracks included) she enters again
    await run(s, [match('y', 20_000, null, 1)]);
    const d = await run(s, [match('t4', 20_100, 'alice', 3)]);
    expect(d.map((e) => `${e.type}:${e.trackId}`)).toEqual(['enter:t4']);
  });

  it('applies the rules: watched identities, unknown faces, cameras, minimum confidence', async () => {
    const s = stageWith({ watch: ['alice'], unknown: false, cameras: ['door'], minConfidence: 0.6 });
    const out = await run(s, [
      match('a', 0, 'alice', 3, { camera: 'door' }),
      match('b', 0, 'bob', 3, { camera: 'door' }),
      match('u', 0, null, 3, { camera: 'door' }),
      match('c', 0, 'alice', 3, { camera: 'yard' }),
      match('d', 0, 'alice', 3, { camera: 'door', confidence: 0.55 }),
    ]);
    expect(out.map((e) => `${e.type}:${e.trackId}`)).toEqual(['enter:a']);
  });

  it('ends tracks of a silent camera on the wall clock (sweep), and all of them at flush', async () => {
    let now = 0;
    const s = stageWith({}, () => now);
    await run(s, [match('t1', 0, 'alice', 3, { camera: 'a' }), match('t2', 0, 'bob', 3, { camera: 'b' })]);
    now = 4000;
    await run(s, [match('t2', 100, 'bob', 4, { camera: 'b' })]);
    now = 6000;
    expect(events(s.sweep()).map((e) => `${e.type}:${e.trackId}`)).toEqual(['exit:t1']);
    expect(events(s.flush()).map((e) => `${e.type}:${e.trackId}`)).toEqual(['exit:t2']);
    expect(s.liveTracks).toBe(0);
  });

  it('emits nothing new for a redelivered batch, and everything again when the publish failed', async () => {
    const s = stageWith();
    const batch = [match('t1', 0, 'alice', 3)];
    const failed = await s.process(batch, ctx); // not committed: the publish "failed"
    expect(events(failed).map((e) => e.type)).toEqual(['enter']);
    expect((await run(s, batch)).map((e) => e.type)).toEqual(['enter']);
    expect(await run(s, batch)).toEqual([]);
  });

  it('waits until the identity of a track has settled before announcing or changing it', async () => {
    const s = stageWith({ minStable: 3 });
    // a name that flickers for two faces is never announced
    expect(await run(s, [match('t1', 0, null, 1), match('t1', 100, 'rachael', 2), match('t1', 200, 'rachael', 3), match('t1', 300, null, 4)])).toEqual([]);
    expect((await run(s, [match('t1', 400, null, 5), match('t1', 450, null, 6)])).map((e) => [e.type, e.identity])).toEqual([['enter', null]]);
    expect(await run(s, [match('t1', 500, 'alice', 7), match('t1', 600, 'alice', 8)])).toEqual([]);
    expect((await run(s, [match('t1', 700, 'alice', 9)])).map((e) => [e.type, e.identity])).toEqual([['update', 'alice']]);
  });

  it('an_exit_never_names_an_identity_that_was_not_announced (unknown, then unsettled just before the end)', async () => {
    const s = stageWith({ minStable: 3 });
    const enter = await run(s, [match('t1', 0, null, 1), match('t1', 100, null, 2), match('t1', 200, null, 3), match('t1', 300, null, 4)]);
    expect(enter.map((e) => [e.type, e.identity])).toEqual([['enter', null]]);
    // the track leans to alice in its last face, not long enough to be announced; then it times out
    expect(await run(s, [match('t1', 400, 'alice', 5)])).toEqual([]);
    const exit = await run(s, [match('t2', 4000, null, 1)]);
    expect(exit).toMatchObject([{ type: 'exit', trackId: 't1', identity: null }]);
  });

  it('does not start an ended track again when a late face of it arrives', async () => {
    const s = stageWith();
    await run(s, [match('t1', 0, 'alice', 3)]);
    expect(events(s.flush()).map((e) => e.type)).toEqual(['exit']);
    expect(await run(s, [match('t1', 100, 'alice', 4)])).toEqual([]);
  });

  it('an unknown track\'s thumbnail is redacted (withheld) by default; a named track keeps its own', async () => {
    const metrics = createMetrics();
    const s = stageWith({}, () => 0, { metrics });
    const out = await run(s, [match('u', 0, null, 3, { crop: 'file:///crops/cam/f0-1.jpg' }), match('a', 0, 'alice', 3, { crop: 'file:///crops/cam/f0-0.jpg' })]);
    expect(out.map((e) => [e.type, e.trackId, e.identity, e.thumbnailRef])).toEqual([
      ['enter', 'u', null, null],
      ['enter', 'a', 'alice', 'file:///crops/cam/f0-0.jpg'],
    ]);
    const exits = events(s.flush());
    expect(exits.map((e) => [e.trackId, e.thumbnailRef])).toEqual([
      ['u', null],
      ['a', 'file:///crops/cam/f0-0.jpg'],
    ]);
    expect(await metrics.metricsText()).toMatch(/faceflow_alerts_thumbnails_withheld_total 2/);
  });

  it('a track that is named later gets its thumbnail then, and loses it again if it turns unknown', async () => {
    const s = stageWith();
    const enter = await run(s, [match('t', 0, null, 3, { crop: 'mem://0' })]);
    expect(enter.map((e) => [e.type, e.thumbnailRef])).toEqual([['enter', null]]);
    const named = await run(s, [match('t', 100, 'alice', 4, { crop: 'mem://1' })]);
    expect(named.map((e) => [e.type, e.identity, e.thumbnailRef])).toEqual([['update', 'alice', 'mem://1']]);
    const lost = await run(s, [match('t', 200, null, 5, { crop: 'mem://2' })]);
    expect(lost.map((e) => [e.type, e.identity, e.thumbnailRef])).toEqual([['update', null, null]]);
  });

  it('keeps unknown tracks\' thumbnails only on cameras exempt from redaction', async () => {
    const s = stageWith({}, () => 0, { redactExemptCameras: ['staff-room'] });
    const out = await run(s, [match('x', 0, null, 3, { camera: 'staff-room', crop: 'mem://staff' }), match('y', 0, null, 3, { camera: 'lobby', crop: 'mem://lobby' })]);
    expect(out.map((e) => [e.cameraId, e.thumbnailRef])).toEqual([
      ['staff-room', 'mem://staff'],
      ['lobby', null],
    ]);
    const all = await run(stageWith({}, () => 0, { redactExemptCameras: ['*'] }), [match('z', 0, null, 3, { camera: 'lobby', crop: 'mem://z' })]);
    expect(all[0]!.thumbnailRef).toBe('mem://z');
  });

  /** A crop store that records what it is asked to delete (and fails for refs starting with "bad"). */
  function memoryCrops(): CropStore & { deleted: string[] } {
    const deleted: string[] = [];
    return {
      deleted,
      put: async () => 'unused',
      delete: async (ref) => {
        if (ref.startsWith('bad')) throw new Error(`refused ${ref}`);
        deleted.push(ref);
      },
    };
  }

  it('crops_no_event_points_at_are_deleted: an unknown track keeps none, a named one the thumbnails its events showed', async () => {
    const crops = memoryCrops();
    const metrics = createMetrics();
    const s = stageWith({}, () => 0, { crops, metrics });
    // unknown track u: u1 is never its best face; u0 is replaced by u2; u2 goes when it ends unshown
    await run(s, [match('u', 0, null, 1, { crop: 'u0' }), match('u', 100, null, 2, { crop: 'u1', best: 'u0' }), match('u', 200, null, 3, { crop: 'u2' })]);
    // named track a: a0 is shown by the enter, a1 replaces it as the candidate (a0 stays: an event points at
    // it), a2 is never the best, a1 is shown by the exit
    const enter = await run(s, [match('a', 0, 'alice', 3, { crop: 'a0' })]);
    expect(enter.map((e) => [e.trackId, e.thumbnailRef])).toEqual([['a', 'a0']]);
    await run(s, [match('a', 100, 'alice', 4, { crop: 'a1' }), match('a', 200, 'alice', 5, { crop: 'a2', best: 'a1' })]);
    await s.settled();
    expect(crops.deleted.sort()).toEqual(['a2', 'u0', 'u1']);
    const exits = events(s.flush());
    expect(exits.map((e) => [e.trackId, e.thumbnailRef])).toEqual([
      ['u', null],
      ['a', 'a1'],
    ]);
    await s.settled();
    expect(crops.deleted.sort()).toEqual(['a2', 'u0', 'u1', 'u2']);
    // a late face of the ended named track: its crop goes, a redelivered shown one stays
    await run(s, [match('a', 300, 'alice', 6, { crop: 'a3' }), match('a', 100, 'alice', 4, { crop: 'a1' })]);
    await s.settled();
    expect(crops.deleted.sort()).toEqual(['a2', 'a3', 'u0', 'u1', 'u2']);
    expect(await metrics.metricsText()).toMatch(/faceflow_alerts_crops_deleted_total 5/);
  });

  it('deletes crops only once the batch\'s events are out (commit), and never on exempt cameras or with keepAllCrops', async () => {
    const crops = memoryCrops();
    const s = stageWith({}, () => 0, { crops });
    const batch = [match('u', 0, null, 1, { crop: 'u0' }), match('u', 100, null, 2, { crop: 'u1', best: 'u0' })];
    // publishing failed: no commit, nothing deleted; the batch runs again and is committed
    await s.process(batch, ctx);
    await s.settled();
    expect(crops.deleted).toEqual([]);
    await run(s, batch);
    await s.settled();
    expect(crops.deleted).toEqual(['u1']);

    for (const extra of [{ redactExemptCameras: ['lobby'] }, { keepAllCrops: true }]) {
      const kept = memoryCrops();
      const e = stageWith({}, () => 0, { crops: kept, ...extra });
      await run(e, [match('x', 0, null, 1, { camera: 'lobby', crop: 'x0' }), match('x', 100, null, 2, { camera: 'lobby', crop: 'x1', best: 'x0' })]);
      e.flush();
      await e.settled();
      expect(kept.deleted).toEqual([]);
    }
  });

  it('an_erased_identity_loses_its_thumbnails_tracks_and_cooldowns_and_is_unknown_in_late_matches', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-alerts-erase-'));
    try {
      const crops = new DirCropStore(dir);
      const put = (frame: string): Promise<string> => crops.put('cam', frame, 0, Buffer.from(`jpeg ${frame}`));
      const [a0, a1, a2, b0] = [await put('a0'), await put('a1'), await put('a2'), await put('b0')];
      const s = stageWith({}, () => 0, { crops });
      const first = await run(s, [match('a', 0, 'alice', 3, { crop: a0 }), match('b', 0, 'bob', 3, { crop: b0 })]);
      expect(first.map((e) => [e.identity, e.thumbnailRef])).toEqual([['alice', a0], ['bob', b0]]);
      // alice's best face changes: an update shows the new thumbnail (confidence moved), then a later candidate
      await run(s, [match('a', 100, 'alice', 4, { crop: a1, confidence: 0.2 })]);
      await run(s, [match('a', 200, 'alice', 5, { crop: a2 })]);
      await s.settled();
      const erased = await s.forget('alice');
      expect(erased).toBeGreaterThanOrEqual(2);
      for (const ref of [a0, a1, a2]) expect(existsSync(fileURLToPath(ref)), ref).toBe(false);
      expect(existsSync(crops.indexFileOf('alice'))).toBe(false);
      expect(existsSync(fileURLToPath(b0))).toBe(true);
      // a match made before the matcher heard of the deletion: unknown, no event names her
      const late = await run(s, [match('a2', 300, 'alice', 3)]);
      expect(late.map((e) => e.identity)).toEqual([null]);
      // her track is gone without an exit; bob's ends as usual
      expect(s.flush().flatMap((o) => o.messages.map((m) => IdentityEventSchema.decode(m.value))).map((e) => e.identity)).toEqual(['bob', null]);
      // enrolled again: hers again
      s.remember('alice');
      expect((await run(s, [match('a3', 400, 'alice', 3)])).map((e) => e.identity)).toEqual(['alice']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a crop that cannot be deleted is counted, not thrown', async () => {
    const crops = memoryCrops();
    const metrics = createMetrics();
    const s = stageWith({}, () => 0, { crops, metrics });
    await run(s, [match('u', 0, null, 1, { crop: 'bad-0' }), match('u', 100, null, 2, { crop: 'ok-1', best: 'bad-0' })]);
    s.flush();
    await s.settled();
    expect(crops.deleted).toEqual(['ok-1']);
    expect(await metrics.metricsText()).toMatch(/faceflow_alerts_crop_delete_failures_total 1/);
  });

  it('reports malformed messages as failures', async () => {
    const s = stageWith();
    const bad = { ...match('t1', 0, 'alice', 3), value: Buffer.from('not json') };
    const r = await s.process([bad], ctx);
    expect(r.failures?.[0]!.error.code).toBe('INVALID_MESSAGE');
  });
});

describe('AlertsStage failures', () => {
  it('counts_a_malformed_message_once_though_the_dead_letter_policy_runs_it_again', async () => {
    const metrics = createMetrics();
    const stage = new AlertsStage({ eventsTopic: 'events', metrics });
    const published: Array<{ topic: string; messages: OutgoingMessage[] }> = [];
    const publish = async (topic: string, messages: OutgoingMessage[]): Promise<void> => void published.push({ topic, messages });
    let off = 1000;
    const bad = (): ConsumedMessage => ({ topic: 'matches', partition: 0, offset: String(off++), key: 'cam', value: Buffer.from('garbage'), headers: {}, timestamp: Date.now() });
    const handler = withDeadLetter(stageHandler(stage, publish), { publish, groupId: 'g' });
    const good = { ...match('t1', 0, 'alice', 1), offset: String(off++) };
    await handler({ topic: 'matches', partition: 0, messages: [bad(), good, bad(), bad()] }, ctx);
    expect(published.filter((p) => p.topic === 'matches.dlq')).toHaveLength(3);
    expect(await metrics.metricsText()).toMatch(/faceflow_messages_dropped_total\{stage="alerts",reason="invalid_message"\} 3\n/);
  });
});
