import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { calibrationFor } from '@faceflow/engine/match';
import { matcherClusterThreshold, matcherConfig, matcherModelAndThreshold, unknownClusterConfig } from './config.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'faceflow-matcher-config-'));

/** A head folder with only head.json: what the matcher reads (it never loads the weights). */
function headDir(name: string, extra: Record<string, unknown> = {}): string {
  const dir = path.join(tmp, name);
  mkdirSync(dir, { recursive: true });
  const meta = {
    format: 'faceflow-projection-head',
    version: 1,
    name: 'site',
    baseModel: 'faceapi-recognition',
    kind: 'linear',
    inputDim: 128,
    dim: 128,
    normalise: 'l2',
    threshold: 0.52,
    thresholdSource: 'validation-identities',
    weightsSha256: 'abcdef0123456789'.repeat(4),
    ...extra,
  };
  writeFileSync(path.join(dir, 'head.json'), JSON.stringify(meta));
  return dir;
}

const load = (env: Record<string, string>) => matcherModelAndThreshold(matcherConfig.load(env));

describe('matcher configuration: model and threshold', () => {
  it('without a head: the model calibration at FAR 1e-3, or FACEFLOW_MATCH_THRESHOLD', () => {
    expect(load({})).toEqual({ model: 'faceapi-recognition', threshold: calibrationFor('faceapi-recognition')!.distanceAtFar1e3, thresholdSource: 'calibration-far-1e-3' });
    expect(load({ FACEFLOW_MATCH_THRESHOLD: '0.3' })).toMatchObject({ threshold: 0.3, thresholdSource: 'FACEFLOW_MATCH_THRESHOLD' });
    expect(load({ FACEFLOW_MODEL: 'my-model' })).toMatchObject({ model: 'my-model', threshold: 0.6, thresholdSource: 'fallback' });
  });

  it("FACEFLOW_HEAD: the head's embedder name and its distance at FAR 1e-3, from head.json alone", () => {
    const dir = headDir('new', { distanceAtFar1e3: 0.41 });
    expect(load({ FACEFLOW_HEAD: dir })).toEqual({ model: 'faceapi-recognition+head:site@abcdef01', threshold: 0.41, thresholdSource: 'head-far-1e-3' });
    expect(load({ FACEFLOW_HEAD: dir, FACEFLOW_MATCH_THRESHOLD: '0.35' })).toEqual({ model: 'faceapi-recognition+head:site@abcdef01', threshold: 0.35, thresholdSource: 'FACEFLOW_MATCH_THRESHOLD' });
  });

  it('a head trained before heads recorded a FAR-1e-3 distance falls back to its accuracy-optimal threshold', () => {
    expect(load({ FACEFLOW_HEAD: headDir('old') })).toEqual({ model: 'faceapi-recognition+head:site@abcdef01', threshold: 0.52, thresholdSource: 'head-accuracy-optimal' });
  });

  it('refuses at start-up, naming the variables: no head there, a head of another base, a head name as FACEFLOW_MODEL', () => {
    const missing = path.join(tmp, 'nothing');
    expect(() => matcherConfig.load({ FACEFLOW_HEAD: missing })).toThrow(/FACEFLOW_HEAD: no projection head at .*nothing \(head\.json not found\)/);
    const other = headDir('other', { baseModel: 'sface', distanceAtFar1e3: 0.4 });
    expect(() => matcherConfig.load({ FACEFLOW_HEAD: other })).toThrow(/FACEFLOW_HEAD, FACEFLOW_MODEL: the head at .* was trained on "sface" embeddings, but FACEFLOW_MODEL is "faceapi-recognition": set FACEFLOW_MODEL=sface/);
    expect(matcherModelAndThreshold(matcherConfig.load({ FACEFLOW_HEAD: other, FACEFLOW_MODEL: 'sface' })).model).toBe('sface+head:site@abcdef01');
    expect(() => matcherConfig.load({ FACEFLOW_MODEL: 'faceapi-recognition+head:site@abcdef01' })).toThrow(
      /FACEFLOW_MODEL: .* is the embedder name of a projection head: set FACEFLOW_MODEL=faceapi-recognition and FACEFLOW_HEAD to the folder of head "site"/,
    );
    const bad = headDir('bad', { distanceAtFar1e3: -1 });
    expect(() => matcherConfig.load({ FACEFLOW_HEAD: bad })).toThrow(/FACEFLOW_HEAD: .*"distanceAtFar1e3" must be a distance/);
    let error: unknown;
    try {
      matcherConfig.load({ FACEFLOW_HEAD: missing });
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'INVALID_CONFIG', details: { env: 'FACEFLOW_HEAD' } });
  });
});

describe('unknown-face clustering config (issue 14)', () => {
  it('clusters_unknown_tracks_for_a_day_at_the_models_far_1e_4_distance_by_default', () => {
    const c = unknownClusterConfig.load({});
    expect(c.retentionMs).toBe(86_400_000);
    expect(c.threshold).toBeUndefined();
    expect(matcherClusterThreshold({ model: 'faceapi-recognition' })).toEqual({ threshold: calibrationFor('faceapi-recognition')!.distanceAtFar1e4, source: 'calibration-far-1e-4' });
    expect(matcherClusterThreshold({ model: 'faceapi-recognition' }, 0.3)).toEqual({ threshold: 0.3, source: 'FACEFLOW_UNKNOWN_CLUSTER_THRESHOLD' });
    expect(unknownClusterConfig.load({ FACEFLOW_UNKNOWN_CLUSTER_RETENTION: '0' }).retentionMs).toBe(0);
  });

  it('a_bad_cluster_setting_is_refused_naming_its_variable', () => {
    expect(() => unknownClusterConfig.load({ FACEFLOW_UNKNOWN_CLUSTER_RETENTION: 'a while' })).toThrow(/FACEFLOW_UNKNOWN_CLUSTER_RETENTION/);
    expect(() => unknownClusterConfig.load({ FACEFLOW_UNKNOWN_CLUSTER_THRESHOLD: '3' })).toThrow(/FACEFLOW_UNKNOWN_CLUSTER_THRESHOLD/);
  });
});
