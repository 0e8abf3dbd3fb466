/** What segment, redact and eval seg share: the --method and --classifier flags, and loading their models. */
import { FaceEngine, resolveModel } from '@faceflow/engine';
import { faceQuality } from '@faceflow/engine/recognize';
import { GROW_CLASSIFIERS, type GrowClassifier, loadSkinClassifier, loadVariantSegmenters, SEG_VARIANTS, type SegVariant } from '@faceflow/engine/segment';
import { type CommandContext, str, UsageError } from '../cli.js';
import { engineConfig } from '../engine-setup.js';

export function parseVariant(v: string): SegVariant {
  if (!(SEG_VARIANTS as readonly string[]).includes(v)) throw new UsageError(`--method must be one of ${SEG_VARIANTS.join(', ')}, got "${v}"`);
  return v as SegVariant;
}

/** --classifier, or undefined: the segmenter's default (learned on mesh outlines, contrast on landmark ones) */
export function parseClassifier(ctx: CommandContext): GrowClassifier | undefined {
  const c = str(ctx, 'classifier');
  if (c !== undefined && !(GROW_CLASSIFIERS as readonly string[]).includes(c)) throw new UsageError(`--classifier must be one of ${GROW_CLASSIFIERS.join(', ')}, got "${c}"`);
  return c as GrowClassifier | undefined;
}

/** The engine and the segmenters (the mesh one when asked), growing with --classifier chosen once at load. */
export async function loadTools(ctx: CommandContext, needMesh: boolean, classifier?: GrowClassifier) {
  // the learned classifier's trees: --skin-classifier FILE, else the bundled ones (read before any model loads)
  const skinClassifier = await loadSkinClassifier(typeof ctx.values['skin-classifier'] === 'string' ? ctx.values['skin-classifier'] : undefined);
  const engine = await FaceEngine.load(engineConfig(ctx));
  try {
    const meshModelPath = needMesh ? (await resolveModel('facemesh')).main : undefined;
    const segs = await loadVariantSegmenters({ skinClassifier, ...(meshModelPath ? { meshModelPath } : {}), ...(classifier ? { classifier } : {}) });
    return { ...segs, engine, quality: faceQuality, close: () => (segs.dispose(), engine.dispose()) };
  } catch (e) {
    engine.dispose();
    throw e;
  }
}

export const CLASSIFIER_HELP = [
  '  --classifier C     +grow methods: learned (the default with mesh: boosted trees on each pixel\'s place in',
  '                     the face and its colour, fitted on LFW Part Labels by faceflow train seg; --skin-classifier',
  '                     FILE for other trees than the bundled), contrast (the default with landmarks: skin vs the',
  '                     colours around the head, trims hair off the outline\'s edge) or skin-only (chroma and luma',
  '                     bounds around the face\'s own skin)',
];
