/**
 * The segmentation variants `faceflow segment`, `eval seg` and a notebook compare: an outline (the face mesh
 * or the 68 landmarks), grown into the skin or not. The segmenters are loaded once with the growing chosen
 * at load (FaceSegmenter's grower, issue 13 step 3): a +grow variant runs with the load-time grower, a bare
 * one turns growing off, so no call builds a grower of its own.
 */
import { FaceflowError } from '@faceflow/shared';
import type { RgbImage } from '../image/geometry.js';
import type { GrowClassifier } from './growth.js';
import type { SkinClassifier } from './skin-classifier.js';
import { type FaceGeometry, type FaceSegment, FaceSegmenter, type SegmentMethod } from './segment.js';

export const SEG_VARIANTS = ['mesh', 'mesh+grow', 'landmarks', 'landmarks+grow'] as const;
export type SegVariant = (typeof SEG_VARIANTS)[number];

export function variantBase(v: SegVariant): SegmentMethod {
  return v.startsWith('mesh') ? 'mesh' : 'landmarks';
}

/** The segmenters of the two outlines (mesh only when a mesh variant is run), as loadVariantSegmenters loads them. */
export interface VariantSegmenters {
  mesh?: Pick<FaceSegmenter, 'run'>;
  landmarks: Pick<FaceSegmenter, 'run'>;
}

export interface VariantSegmentersConfig {
  /** facemesh.json (registry entry `facemesh`): loads the mesh segmenter; without it only the landmark variants run */
  meshModelPath?: string;
  /** the grow classifier of the +grow variants (default: each segmenter's own, learned on mesh, contrast on landmarks) */
  classifier?: GrowClassifier;
  /** the trees of the learned classifier (default: the bundled ones) */
  skinClassifier?: SkinClassifier | string;
}

/** Loads the landmark segmenter and, with `meshModelPath`, the mesh one; both grow as the +grow variants ask. */
export async function loadVariantSegmenters(config: VariantSegmentersConfig = {}): Promise<VariantSegmenters & { dispose(): void }> {
  const options = { grow: config.classifier ? { classifier: config.classifier } : true };
  const skin = config.skinClassifier !== undefined ? { skinClassifier: config.skinClassifier } : {};
  const landmarks = await FaceSegmenter.load({ method: 'landmarks', options, ...skin });
  try {
    const mesh = config.meshModelPath ? await FaceSegmenter.load({ method: 'mesh', meshModelPath: config.meshModelPath, options, ...skin }) : undefined;
    return {
      landmarks,
      ...(mesh ? { mesh } : {}),
      dispose: () => {
        mesh?.dispose();
        landmarks.dispose();
      },
    };
  } catch (e) {
    landmarks.dispose();
    throw e;
  }
}

/** Segments `faces` of `image` by variant `v`: +grow with the segmenter's load-time grower, else without growing. */
export async function segmentVariant(tools: VariantSegmenters, v: SegVariant, image: RgbImage, faces: FaceGeometry[]): Promise<FaceSegment[]> {
  const seg = variantBase(v) === 'mesh' ? tools.mesh : tools.landmarks;
  if (!seg) throw new FaceflowError('INTERNAL', `segmentation variant ${v} needs the mesh segmenter`);
  const [out] = await (v.endsWith('+grow') ? seg.run([image], [faces]) : seg.run([image], [faces], { grow: false }));
  return out!;
}
