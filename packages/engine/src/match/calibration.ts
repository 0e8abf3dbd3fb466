/**
 * Shipped decision thresholds, one per embedding model and engine configuration, calibrated on LFW View 1
 * `pairsDevTrain.txt` (never on the test pairs). Regenerate with the command in `command`; the numbers are
 * copied from that command's JSON output, and BENCHMARKS.md holds the run.
 */
export interface Calibration {
  model: string;
  /** accuracy-optimal L2 distance threshold on the calibration pairs */
  threshold: number;
  /** the largest threshold with a false-accept rate <= 1e-3 on the calibration pairs */
  distanceAtFar1e3: number;
  /** true when the calibration set had >= 1000 impostor pairs, so FAR 1e-3 is actually resolved */
  farResolved: boolean;
  /**
   * the distance at FAR 1e-4 over every pair of the calibration images of two different people (millions of
   * pairs: the pairs file's 1100 impostor pairs cannot resolve it); the privacy threshold of `redact --keep
   * enrolled`, where naming a stranger exposes them
   */
  distanceAtFar1e4?: number;
  far1e4Command?: string;
  measuredOn: string;
  command: string;
}

export const DEFAULT_MODEL = 'faceapi-recognition';

export const CALIBRATIONS: Record<string, Calibration> = {
  // Engine defaults (YuNet detector since issue 11, flip averaging on, 2-pass 68 landmarks, dlib chip
  // 150/0.25), wasm backend. 2200 pairs, 3443 images (none fell back to the centred box), AUC 0.99967,
  // TAR@FAR=1e-3 0.96182, accuracy at this threshold 99.227% on the same pairs (optimistic by construction;
  // see BENCHMARKS.md "YuNet becomes the default" for the held-out pairsDevTest number). Before, with
  // BlazeFace: 0.4144 / 0.3874 / 0.3348 (2026-11-29).
  'faceapi-recognition': {
    model: 'faceapi-recognition',
    threshold: 0.4109,
    distanceAtFar1e3: 0.3805,
    farResolved: true,
    // 3443 images, 5,923,194 cross-identity pairs, the same run as the threshold (--fit --all-pairs gives
    // both); FAR 1e-3 fell at 0.3745, 1e-5 at 0.3019
    distanceAtFar1e4: 0.3351,
    far1e4Command: 'faceflow eval lfw --images ../shared/data/lfw/images --pairs ../shared/data/lfw/pairsDevTrain.txt --fit --all-pairs --json',
    measuredOn: 'LFW View 1 pairsDevTrain.txt, detector yunet-2023mar, 2026-12-02',
    command: 'faceflow eval lfw --images ../shared/data/lfw/images --pairs ../shared/data/lfw/pairsDevTrain.txt --fit --json',
  },
  // SFace (issue 11) with the YuNet detector, 2-pass 68 landmarks -> ArcFace 5-point chip, flip averaging,
  // onnxruntime CPU; the run's figures and the held-out pairsDevTest result are in BENCHMARKS.md (Engine v2).
  // Calibrated with YuNet: with BlazeFace the landmarks (and so the chips) differ; not calibrated for that.
  'sface-2021dec-int8bq': {
    model: 'sface-2021dec-int8bq',
    threshold: 1.1375,
    distanceAtFar1e3: 1.1306,
    farResolved: true,
    measuredOn: 'LFW View 1 pairsDevTrain.txt, detector yunet-2023mar, 2026-12-02',
    command:
      'faceflow eval lfw --images ../shared/data/lfw/images --pairs ../shared/data/lfw/pairsDevTrain.txt --embedder sface-2021dec-int8bq --detector yunet --workers 2 --fit --json',
  },
};

export function calibrationFor(model: string): Calibration | undefined {
  return CALIBRATIONS[model];
}

// What a model's thresholds are and which one a decision uses: match/decision.ts (one policy, issue 13).
