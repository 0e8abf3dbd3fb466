/**
 * The one decision-threshold policy (issue 13): which L2 distance decides "same person" for an embedding
 * model, per purpose. The CLI's verify/identify/redact, `faceflow run` and the matcher service all ask here.
 *
 * - verify (1:1): the accuracy-optimal threshold.
 * - identify (1:N, and the pipeline: `faceflow run`, the matcher): the stricter distance at FAR 1e-3, because
 *   every enrolled identity is one more chance to name a stranger (false accepts grow with N), and naming a
 *   stranger is the failure users of face search complain about most.
 * - redact (`redact --keep enrolled`): the distance at FAR 1e-4 where it was measured, since a face left
 *   visible by mistake exposes a stranger; else identify's, with a warning.
 *
 * Where the numbers come from: an explicit override; else the model's own (a projection head's, carried in
 * its EmbedderInfo or head.json); else the shipped calibration of its name (calibration.ts); else `fallback`
 * where the caller has one (the services' dlib 0.6), else an error asking for an explicit threshold. A head
 * trained before heads recorded a FAR-1e-3 distance gives its accuracy-optimal threshold for identify, with
 * a warning.
 */
import { FaceflowError } from '@faceflow/shared';
import { calibrationFor } from './calibration.js';

export type DecisionPurpose = 'verify' | 'identify' | 'redact';
export const DECISION_PURPOSES: readonly DecisionPurpose[] = ['verify', 'identify', 'redact'];

/** The L2 distance threshold when neither the configuration nor a calibration gives one (dlib's published 0.6). */
export const FALLBACK_THRESHOLD = 0.6;

/** The model as the policy needs it: its name, and the thresholds it carries itself (an EmbedderInfo fits). */
export interface ThresholdInfo {
  name: string;
  threshold?: number;
  distanceAtFar1e3?: number;
  distanceAtFar1e3Fallback?: boolean;
}

/** The decision thresholds of one embedding model, wherever they come from. */
export interface DecisionThresholds {
  /** verify (1:1): the accuracy-optimal threshold */
  threshold: number;
  /** identify (1:N) and the pipeline (`faceflow run`, the matcher): the distance at FAR 1e-3 */
  distanceAtFar1e3: number;
  /** redaction's keep-enrolled decision: the distance at FAR 1e-4, where it was measured */
  distanceAtFar1e4?: number;
  /** 'model': shipped with the model itself (a projection head's head.json); 'calibration': CALIBRATIONS */
  source: 'model' | 'calibration';
  /**
   * true for a projection head written before heads recorded a FAR-1e-3 distance: distanceAtFar1e3 is then
   * its accuracy-optimal threshold (looser: more strangers get named)
   */
  fallback: boolean;
}

/**
 * The thresholds of a model (an engine's EmbedderInfo): the model's own (a projection head's), else the
 * shipped calibration of its name, else undefined.
 */
export function thresholdsFor(info: ThresholdInfo): DecisionThresholds | undefined {
  if (info.threshold !== undefined) {
    return {
      threshold: info.threshold,
      distanceAtFar1e3: info.distanceAtFar1e3 ?? info.threshold,
      source: 'model',
      fallback: info.distanceAtFar1e3 === undefined || info.distanceAtFar1e3Fallback === true,
    };
  }
  const cal = calibrationFor(info.name);
  return cal
    ? { threshold: cal.threshold, distanceAtFar1e3: cal.distanceAtFar1e3, ...(cal.distanceAtFar1e4 !== undefined ? { distanceAtFar1e4: cal.distanceAtFar1e4 } : {}), source: 'calibration', fallback: false }
    : undefined;
}

/** Where a decision threshold came from (the pipeline reports it as thresholdSource). */
export type ThresholdSource =
  | 'override'
  | 'head-accuracy-optimal'
  | 'head-far-1e-3'
  | 'calibration-accuracy-optimal'
  | 'calibration-far-1e-3'
  | 'calibration-far-1e-4'
  | 'fallback';

export interface DecisionThreshold {
  value: number;
  source: ThresholdSource;
  /** what the user should know about this choice (one line each, newline-separated): print it */
  warning?: string;
}

export interface DecisionThresholdOptions {
  /** the threshold when the model has none (no head, no calibration); without it that is an INVALID_CONFIG error */
  fallback?: number;
  /** how the user gives an explicit threshold, for warnings and errors (default "pass --threshold") */
  fix?: string;
}

/** The decision threshold of `info`'s embeddings for `purpose`; `override` (a flag, a variable) wins. */
export function decisionThreshold(info: ThresholdInfo, purpose: DecisionPurpose, override?: number, options: DecisionThresholdOptions = {}): DecisionThreshold {
  if (!DECISION_PURPOSES.includes(purpose)) throw new FaceflowError('INVALID_ARGUMENT', `decision purpose must be one of ${DECISION_PURPOSES.join(', ')}; got "${String(purpose)}"`);
  if (override !== undefined) return { value: override, source: 'override' };
  const fix = options.fix ?? 'pass --threshold';
  const th = thresholdsFor(info);
  if (!th) {
    if (options.fallback !== undefined) return { value: options.fallback, source: 'fallback' };
    throw new FaceflowError('INVALID_CONFIG', `model "${info.name}" has no calibrated threshold; ${fix}`);
  }
  const head = th.source === 'model';
  if (purpose === 'verify') return { value: th.threshold, source: head ? 'head-accuracy-optimal' : 'calibration-accuracy-optimal' };
  const warnings: string[] = [];
  if (purpose === 'redact') {
    if (th.distanceAtFar1e4 !== undefined) return { value: th.distanceAtFar1e4, source: 'calibration-far-1e-4' };
    warnings.push(`"${info.name}" has no measured distance at FAR 1e-4: redaction keeps faces visible at its FAR-1e-3 distance ${th.distanceAtFar1e3} (more strangers may be left visible); ${fix}`);
  }
  if (th.fallback) {
    warnings.push(
      `the projection head of "${info.name}" records no distance at FAR 1e-3 (it was trained before heads did): identify uses its accuracy-optimal threshold ${th.distanceAtFar1e3}, which names more strangers; train it again, or ${fix}`,
    );
  }
  const source: ThresholdSource = th.fallback ? 'head-accuracy-optimal' : head ? 'head-far-1e-3' : 'calibration-far-1e-3';
  return { value: th.distanceAtFar1e3, source, ...(warnings.length ? { warning: warnings.join('\n') } : {}) };
}
