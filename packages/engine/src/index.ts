/**
 * @faceflow/engine: the curated API (issue 13: under 40 names). The notebook verbs are FaceAnalysis's
 * (encode, enroll, verify, whoIsIt); FaceEngine / EnginePool are the batched engine under it; the rest sits
 * behind subpaths, one per layer (packages/engine/README.md): /image, /recognize, /match (no TF.js: the
 * matcher's), /segment, /redact, /models, /runtime, /registry, /search, /eval, /train.
 */
export {
  FaceAnalysis,
  type FaceAnalysisConfig,
  type ImageInput,
  type EncodedFace,
  type EnrollAnswer,
  type VerifyAnswer,
  type WhoIsItAnswer,
} from './recognize/analysis.js';
export { FaceEngine, DEFAULT_MODELS, type EngineConfig, type DetectedFace, type RunOptions, type EmbedderInfo } from './recognize/engine.js';
export { EnginePool } from './recognize/pool.js';
export { largestFace } from './recognize/largest-face.js';
export { Gallery } from './match/gallery.js';
export { identify, verify, type IdentifyResult, type VerifyResult } from './match/decide.js';
export { decisionThreshold, type DecisionThreshold, type DecisionPurpose } from './match/decision.js';
export { decodeImage, type ImageLimits } from './image/image.js';
export type { Box, Point, RgbImage } from './image/geometry.js';
export { FaceSegmenter } from './segment/segment.js';
export type { FaceMask } from './segment/mask.js';
export { redactImage } from './redact/redact.js';
export { initRuntime } from './runtime/tf.js';
export { resolveModel, pullModel } from './registry/registry.js';
export { tripletLoss } from './train/triplet.js';
