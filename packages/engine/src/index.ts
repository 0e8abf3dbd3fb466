export * from './image/index.js';
export * from './recognize/index.js';
export * from './match/index.js';
export * from './registry/index.js';
export * from './eval/index.js';
export * from './train/index.js';
export * from './models/head.js';
export { tf, initRuntime, activeBackend, BACKENDS, type BackendName, type RuntimeInfo } from './runtime/tf.js';
export { fileHandler, loadGraphModelFromFile, loadLayersModelFromFile, loadWeightMapFromFile } from './runtime/io.js';
export { GraphEmbedder, type GraphEmbedderConfig } from './models/graph-embedder.js';
export { BlazeFaceDetector, type Detection, type DetectorConfig } from './models/detector.js';
export { YuNetDetector, type YuNetConfig } from './models/yunet.js';
export { OnnxModel, parseRuntimeName, parseProviderName, RUNTIMES, PROVIDERS, type RuntimeName, type ProviderName } from './runtime/onnx.js';
export { applyGraphFixes, GRAPH_FIXES, type GraphFix } from './registry/onnx-graph.js';
export { Landmark68 } from './models/landmarks.js';
export { DlibResNetEmbedder, EMBED_DIM, EMBED_INPUT } from './models/embedder.js';
export * from './segment/index.js';
export * from './recognize/quality.js';
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
export * from './redact/index.js';
export * from './search/index.js';
