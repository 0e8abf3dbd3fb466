/**
 * The one decision-threshold policy (issue 13): the same values and warnings the four choosers it replaced
 * gave (the CLI's threshold(), `faceflow run`'s thresholdSource, the matcher's matcherModelAndThreshold,
 * calibration's thresholdsFor).
 */
import { describe, expect, it } from 'vitest';
import { CALIBRATIONS } from './calibration.js';
import { decisionThreshold, FALLBACK_THRESHOLD } from './decision.js';

const dlib = CALIBRATIONS['faceapi-recognition']!;
const sface = CALIBRATIONS['sface-2021dec-int8bq']!;
/** a projection head's EmbedderInfo, recorded with its FAR-1e-3 distance */
const head = { name: 'faceapi-recognition+head:site@abcdef01', threshold: 0.52, distanceAtFar1e3: 0.41 };
/** a head trained before heads recorded one: the engine reports its accuracy-optimal threshold, flagged */
const oldHead = { name: 'faceapi-recognition+head:old@abcdef01', threshold: 0.52, distanceAtFar1e3: 0.52, distanceAtFar1e3Fallback: true };

describe('decisionThreshold: one policy per purpose', () => {
  it('verify_decides_at_the_accuracy_optimal_threshold', () => {
    expect(decisionThreshold({ name: 'faceapi-recognition' }, 'verify')).toEqual({ value: dlib.threshold, source: 'calibration-accuracy-optimal' });
    expect(decisionThreshold(head, 'verify')).toEqual({ value: 0.52, source: 'head-accuracy-optimal' });
    // verify needs no FAR distance, so an old head says nothing
    expect(decisionThreshold(oldHead, 'verify').warning).toBeUndefined();
  });

  it('identify_decides_at_the_distance_at_far_1e3', () => {
    expect(decisionThreshold({ name: 'faceapi-recognition' }, 'identify')).toEqual({ value: dlib.distanceAtFar1e3, source: 'calibration-far-1e-3' });
    expect(decisionThreshold({ name: 'sface-2021dec-int8bq' }, 'identify')).toEqual({ value: sface.distanceAtFar1e3, source: 'calibration-far-1e-3' });
    expect(decisionThreshold(head, 'identify')).toEqual({ value: 0.41, source: 'head-far-1e-3' });
  });

  it('identify_with_a_head_that_records_no_far_distance_uses_its_accuracy_optimal_threshold_and_warns', () => {
    const r = decisionThreshold(oldHead, 'identify');
    expect(r).toMatchObject({ value: 0.52, source: 'head-accuracy-optimal' });
    expect(r.warning).toBe(
      'the projection head of "faceapi-recognition+head:old@abcdef01" records no distance at FAR 1e-3 (it was trained before heads did): identify uses its accuracy-optimal threshold 0.52, which names more strangers; train it again, or pass --threshold',
    );
  });

  it('redact_decides_at_the_distance_at_far_1e4_where_measured_else_at_far_1e3_with_a_warning', () => {
    expect(decisionThreshold({ name: 'faceapi-recognition' }, 'redact')).toEqual({ value: dlib.distanceAtFar1e4, source: 'calibration-far-1e-4' });
    const r = decisionThreshold({ name: 'sface-2021dec-int8bq' }, 'redact');
    expect(r).toMatchObject({ value: sface.distanceAtFar1e3, source: 'calibration-far-1e-3' });
    expect(r.warning).toBe(
      `"sface-2021dec-int8bq" has no measured distance at FAR 1e-4: redaction keeps faces visible at its FAR-1e-3 distance ${sface.distanceAtFar1e3} (more strangers may be left visible); pass --threshold`,
    );
    // an old head: both warnings, one line each
    expect(decisionThreshold(oldHead, 'redact').warning?.split('\n')).toHaveLength(2);
  });

  it('an_override_wins_for_every_purpose_and_warns_of_nothing', () => {
    for (const purpose of ['verify', 'identify', 'redact'] as const) {
      expect(decisionThreshold(oldHead, purpose, 0.3)).toEqual({ value: 0.3, source: 'override' });
      expect(decisionThreshold({ name: 'uncalibrated' }, purpose, 0.3)).toEqual({ value: 0.3, source: 'override' });
    }
  });

  it('a_model_without_thresholds_takes_the_callers_fallback_or_is_an_error_that_says_what_to_pass', () => {
    expect(decisionThreshold({ name: 'my-model' }, 'identify', undefined, { fallback: FALLBACK_THRESHOLD })).toEqual({ value: 0.6, source: 'fallback' });
    expect(() => decisionThreshold({ name: 'my-model' }, 'verify')).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG', message: 'model "my-model" has no calibrated threshold; pass --threshold' }));
    expect(() => decisionThreshold({ name: 'my-model' }, 'identify', undefined, { fix: 'set FACEFLOW_MATCH_THRESHOLD' })).toThrow(/set FACEFLOW_MATCH_THRESHOLD$/);
    expect(() => decisionThreshold({ name: 'faceapi-recognition' }, 'search' as never)).toThrow(/decision purpose must be one of verify, identify, redact/);
  });
});
