export * from './mask.js';
export { FACE_OVAL, type LandmarkPolygonOptions, convexHull, faceOvalPolygon, landmarkJawLine, landmarkPolygon, meshJawLine, meshOutline } from './outline.js';
export { type ContrastModel, type Gauss3, type SkinModel, contrastModel, isSkin, skinModel, skinSample, surroundRing } from './colour.js';
export { GROW_CLASSIFIERS, GROW_MAX_FACE_PX, type GrowClassifier, type GrowOptions, type GrowthSpace, growRegion, growthSpace } from './growth.js';
export { growSkin, trimBand } from './contrast-grower.js';
export { type ColourGaussian, type FieldColourModels, type FieldGeometry, LEARNED_GROW_MAX_FACE_PX, LEARNED_REGION, type SkinField, type SkinFieldData, fieldFeatures, fieldMask, learnedMask, learnedSkinField, skinField } from './learned-grower.js';
export { DEFAULT_SKIN_CLASSIFIER_URL, SKIN_FEATURES, SKIN_FEATURE_COUNT, SKIN_TREE_DEPTH, type SkinClassifier, type SkinClassifierFile, type SkinClassifierOrigin, type SkinTree, loadSkinClassifier, parseSkinClassifier, skinDecision, skinMargin } from './skin-classifier.js';
export { type FaceGeometry, type FaceSegment, FaceSegmenter, type FaceSegmenterConfig, type SegmentMethod, type SegmentOptions, segmentFromLandmarks, segmentFromMesh } from './segment.js';
