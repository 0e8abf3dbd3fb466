/**
 * @faceflow/engine/match: gallery, identify/verify, the one decision-threshold policy, gallery/model
 * compatibility and the one track-identity rule, with no model runtime (issue 13): nothing reachable from
 * here imports TF.js, ONNX Runtime, sharp, prom-client or node:http (test/architecture.test.ts), so the
 * matcher service, which runs no model, uses the same decisions as the engine.
 */
export { Gallery, galleryReadError, readGallerySnapshot, type GalleryOptions, type IdentityDistance } from './gallery.js';
export {
  decisionOf,
  identify,
  l2Distance,
  verify,
  type DecisionReason,
  type DecisionRule,
  type IdentifyOptions,
  type IdentifyResult,
  type Searchable,
  type VerifyResult,
} from './decide.js';
export * from './decision.js';
export * from './compatibility.js';
export * from './track-identity.js';
export { CALIBRATIONS, calibrationFor, DEFAULT_MODEL, type Calibration } from './calibration.js';
export { headEmbedderInfo, headEmbedderName, parseHeadEmbedderName, readHeadMeta, readHeadMetaSync, type HeadMeta } from '../registry/head-meta.js';
export { DEFAULT_QUALITY_FLOOR } from './quality-floor.js';
export type { SearchIndexOptions, SearchMethod } from '../search/index.js';
export { iou, l2, type Box } from '@faceflow/shared';
export * from './gallery-fit.js';
export * from './cluster.js';
