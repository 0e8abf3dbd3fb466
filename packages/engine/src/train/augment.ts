/**
 * The training augmentations: random CCTV-like degradations (image/degrade.ts holds the ops: grayscale,
 * lowres, blur, brightness, jpeg) drawn per augmented copy, on aligned chips before the frozen base embedder,
 * or on the whole image before detection (`faceflow train --augment-stage image`). Seeded: the same random
 * generator draws the same ops.
 *
 * "Face size" is the width of the inner face (brows, eyes, nose, mouth: what the dlib chip aligns): in an
 * aligned chip it is chipSize / (1 + 2 * padding), 100 px of the 150 px chip.
 */
import { FaceflowError } from '@faceflow/shared';
import type { DegradeOp } from '../image/degrade.js';
import type { Rng } from '../eval/rng.js';

export const AUGMENTATIONS = ['grayscale', 'lowres', 'blur', 'brightness', 'jpeg'] as const;
export type Augmentation = (typeof AUGMENTATIONS)[number];

/** Random ranges of the training augmentations. */
export interface AugmentRanges {
  /** probability of each selected augmentation on an augmented copy (at least one is always applied) */
  p: number;
  /** face size in pixels after `lowres`, uniform in [min, max] */
  lowresFace: [number, number];
  blurSigma: [number, number];
  brightnessGain: [number, number];
  brightnessOffset: [number, number];
  jpegQuality: [number, number];
}

export const DEFAULT_AUGMENT_RANGES: Readonly<AugmentRanges> = Object.freeze({
  p: 0.5,
  lowresFace: [20, 60] as [number, number],
  blurSigma: [0.5, 2] as [number, number],
  brightnessGain: [0.5, 1.5] as [number, number],
  brightnessOffset: [-25, 25] as [number, number],
  jpegQuality: [10, 50] as [number, number],
});

/** "grayscale,lowres,jpeg" -> the list, or a usage error naming what is unknown. */
export function parseAugmentations(spec: string): Augmentation[] {
  const names = spec.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const bad = names.filter((n) => !(AUGMENTATIONS as readonly string[]).includes(n));
  if (bad.length > 0) {
    throw new FaceflowError('INVALID_ARGUMENT', `unknown augmentation "${bad[0]}"; choose from ${AUGMENTATIONS.join(', ')}`);
  }
  return [...new Set(names)] as Augmentation[];
}

/**
 * Draws one random augmentation of the selected kinds: each applies with probability `ranges.p`, at least
 * one always does; the order is fixed (grayscale, brightness, lowres, blur, jpeg: the camera's sensor, then
 * its optics and distance, then its encoder).
 */
export function drawAugmentation(kinds: readonly Augmentation[], rng: Rng, ranges: AugmentRanges = DEFAULT_AUGMENT_RANGES): DegradeOp[] {
  if (kinds.length === 0) return [];
  let chosen = kinds.filter(() => rng.next() < ranges.p);
  if (chosen.length === 0) chosen = [rng.pick(kinds)];
  const order: Augmentation[] = ['grayscale', 'brightness', 'lowres', 'blur', 'jpeg'];
  const ops: DegradeOp[] = [];
  for (const k of order) {
    if (!chosen.includes(k)) continue;
    if (k === 'grayscale') ops.push({ op: 'grayscale' });
    else if (k === 'brightness') ops.push({ op: 'brightness', gain: rng.uniform(...ranges.brightnessGain), offset: rng.uniform(...ranges.brightnessOffset) });
    else if (k === 'lowres') ops.push({ op: 'lowres', face: rng.uniform(...ranges.lowresFace) });
    else if (k === 'blur') ops.push({ op: 'blur', sigma: rng.uniform(...ranges.blurSigma) });
    else ops.push({ op: 'jpeg', quality: Math.round(rng.uniform(...ranges.jpegQuality)) });
  }
  return ops;
}

/**
 * The face size (as above) of a face in an image, from its 68 landmarks: the outer brow corners (iBUG 17 and
 * 26) lie 0.98 of the inner-face width apart in dlib's mean face.
 */
export function faceSizeOf(landmarks68: Array<{ x: number; y: number }>): number {
  const a = landmarks68[17];
  const b = landmarks68[26];
  if (!a || !b) throw new FaceflowError('INVALID_ARGUMENT', `faceSizeOf needs 68 landmarks, got ${landmarks68.length}`);
  return Math.hypot(b.x - a.x, b.y - a.y) / 0.98;
}

/** The face size of an aligned dlib chip: the inner face spans size / (1 + 2 * padding). */
export function chipFaceSize(chipSize: number, padding = 0.25): number {
  return chipSize / (1 + 2 * padding);
}
