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
  measuredOn: string;
  command: string;
}

export const DEFAULT_MODEL = 'faceapi-recognition';

export const CALIBRATIONS: Record<string, Calibration> = {};

export function calibrationFor(model: string): Calibration | undefined {
  return CALIBRATIONS[model];
}
