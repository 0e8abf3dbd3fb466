/**
 * A grower: the rule that grows a face's outline into the skin around it (forehead, ears, neck). It is chosen
 * once from the grow options (FaceSegmenter at load, a bare segmentFrom* call on entry), so that the
 * per-face path never switches on a classifier's name: the contrast grower (the hand rules,
 * contrast-grower.ts) or the learned one (the trees, learned-grower.ts).
 */
import { FaceflowError } from '@faceflow/shared';
import type { Point, RgbImage } from '../image/geometry.js';
import type { FaceMask } from './mask.js';
import { GROW_CLASSIFIERS, type GrowClassifier, type GrowOptions } from './growth.js';
import type { SkinClassifier } from './skin-classifier.js';
import { contrastGrower } from './contrast-grower.js';
import { learnedGrower } from './learned-grower.js';

export interface Grower {
  readonly classifier: GrowClassifier;
  /** above this face size (pixels) growing runs on a copy scaled down to it (growthSpace) */
  readonly maxFacePx: number;
  /**
   * The mask of `core` (the outline's mask in `image`, not empty) grown into the skin around it; `image`,
   * `outline` and the 68 landmarks are in the growth space's pixels.
   */
  grow(image: RgbImage, core: FaceMask, outline: Point[], landmarks68: Point[]): FaceMask;
}

/**
 * The grower that `grow` asks for; undefined when it asks for none. `fallback` is the classifier when the
 * options name none; `skinClassifier` the trees of 'learned' when the options bring none of their own.
 */
export function growerFor(grow: boolean | GrowOptions | undefined, fallback: GrowClassifier = 'contrast', skinClassifier?: SkinClassifier): Grower | undefined {
  if (!grow) return undefined;
  const options = grow === true ? {} : grow;
  const classifier = options.classifier ?? fallback;
  if (!GROW_CLASSIFIERS.includes(classifier)) throw new FaceflowError('INVALID_ARGUMENT', `grow classifier must be one of ${GROW_CLASSIFIERS.join(', ')}, got "${String(classifier)}"`);
  if (classifier === 'learned') {
    const trees = options.skinClassifier ?? skinClassifier;
    if (!trees) throw new FaceflowError('INVALID_ARGUMENT', "the 'learned' grow classifier needs skinClassifier (loadSkinClassifier(), or use FaceSegmenter, which loads it)");
    return learnedGrower(trees, options);
  }
  return contrastGrower(classifier, options);
}
