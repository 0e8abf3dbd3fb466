export * from './geometry.js';
export * from './align.js';
export * from './engine.js';
export * from './pool.js';
export * from './gallery.js';
export * from './decide.js';
export * from './triplet.js';
export * from './calibration.js';
export * from './image.js';
export * from './registry/index.js';
export * from './eval/lfw.js';
export * from './eval/detection.js';
export * from './train/index.js';
export { tf, initRuntime, activeBackend, BACKENDS, type BackendName, type RuntimeInfo } from './runtime/tf.js';
export { fileHandler, loadGraphModelFromFile, loadLayersModelFromFile, loadWeightMapFromFile } from './runtime/io.js';
export { GraphEmbedder, type GraphEmbedderConfig } from './models/graph-embedder.js';
export { BlazeFaceDetector, type Detection, type DetectorConfig } from './models/detector.js';
export { YuNetDetector, type YuNetConfig } from './models/yunet.js';
export { OnnxModel, parseRuntimeName, parseProviderName, RUNTIMES, PROVIDERS, type RuntimeName, type ProviderName } from './runtime/onnx.js';
export { applyGraphFixes, GRAPH_FIXES, type GraphFix } from './registry/onnx-graph.js';
export { Landmark68 } from './models/landmarks.js';
export { DlibResNetEmbedder, EMBED_DIM, EMBED_INPUT } from './models/embedder.js';
export * from './mask.js';
export * from './segment.js';
export * from './skin-classifier.js';
export * from './quality.js';
export * from './eval/segmentation.js';
export * from './eval/segmentation-run.js';
export {
  FaceMesh,
  MESH_INPUT,
  MESH_POINTS,
  meshRoiFromLandmarks,
  meshRoiFromMesh,
  roiAffine,
  type FaceMeshConfig,
  type MeshResult,
  type MeshRoi,
  type Point3,
} from './models/facemesh.js';
export * from './redact.js';
export * from './redact/video.js';
export * from './shot-cut.js';
export * from './search/index.js';
