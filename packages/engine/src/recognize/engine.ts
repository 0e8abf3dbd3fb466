/**
 * The face engine: frame -> faces (box, score, keypoints, 68 landmarks) -> aligned chips -> embeddings.
 * One instance owns its models; it holds no module-level state, and dispose() frees every tensor.
 */
import { FaceflowError, unitVector } from '@faceflow/shared';
import { initRuntime, type RuntimeInfo } from '../runtime/tf.js';
import { BlazeFaceDetector, type DetectorConfig, type Detection } from '../models/detector.js';
import { YuNetDetector } from '../models/yunet.js';
import { parseProviderName, parseRuntimeName, type RuntimeName } from '../runtime/onnx.js';
import { Landmark68, LANDMARK_INPUT, type LandmarkModel } from '../models/landmarks.js';
import { Landmark68Onnx } from '../models/landmarks-onnx.js';
import { DlibResNetEmbedder, EMBED_INPUT } from '../models/embedder.js';
import { DlibResNetOnnxEmbedder } from '../models/dlib-resnet-onnx.js';
import { GraphEmbedder, type GraphEmbedderConfig } from '../models/graph-embedder.js';
import { loadModelRegistry, resolveModel, type DerivedConverter, type ModelEntry, type ModelRegistry } from '../registry/index.js';
import { alignEmbedderChip, cropSquare } from './align.js';
import { SFaceEmbedder, SFACE_DIM, SFACE_INPUT } from '../models/sface.js';
import { headIdentifyThreshold, ProjectionHead } from '../models/head.js';
import { DEFAULT_MODEL } from '../match/calibration.js';
import { thresholdsFor } from '../match/decision.js';
import { applyAffine, boundingBox, flipHorizontal, iou as boxIou, type Box, type Point, type RgbImage } from '../image/geometry.js';
import { assertQuality, DEFAULT_QUALITY_FLOOR, faceQuality, type FaceQuality, type QualityOptions } from './quality.js';

/**
 * A face the engine found in an image (box, keypoints, landmarks, embedding). Named DetectedFace, not Face
 * (issue 13): @faceflow/shared's `Face` is the Face v1 message of the faces topic, another thing.
 */
export interface DetectedFace {
  /**
   * the detector's own box, uncorrected (YuNet's by default: tight, brow to chin). The box corrections of
   * `eval det --fit-boxes` (models/box-corrections.json) turn boxes into a ground truth's convention for
   * scoring only and are never applied here: every consumer (landmark crops, trackers, redaction's ellipse)
   * reads the raw box (issue 11, BENCHMARKS.md "YuNet becomes the default")
   */
  box: Box;
  /** detector confidence in [0, 1]; 1 when the caller declared the whole image to be the face */
  score: number;
  /** 6 detector keypoints (eyes, nose, mouth, ears), image pixels; empty for whole-image faces */
  keypoints: Point[];
  /** 68 iBUG landmarks, image pixels */
  landmarks: Point[];
  /** L2-normalised embedding, when asked for */
  embedding?: Float32Array;
  /** detected near a box of RunOptions.trackOnlyNear: box, score and keypoints only (no landmarks, no embedding) */
  trackOnly?: boolean;
}


/** A detection this close to a trackOnlyNear box is the same face. */
const TRACK_ONLY_IOU = 0.3;

export interface EngineConfig {
  /** TF.js backend: auto | tensorflow | wasm | cpu (default auto, or FACEFLOW_BACKEND) */
  backend?: string;
  /**
   * model runtime (issue 11): auto (each model on the runtime of its registry format), onnx or tfjs (the
   * detector must be of that runtime; with tfjs and no detector named, BlazeFace); default env FACEFLOW_RUNTIME,
   * else auto. The dlib embedder (faceapi-recognition) runs on either: onnx uses its converted file
   * (faceapi-recognition-onnx, `faceflow models pull`), tfjs its TF.js weights, auto the converted file when it
   * is installed (faster, BENCHMARKS.md "dlib ResNet on ONNX Runtime"), else the weights. The 68-point
   * landmarks (faceapi-landmarks68) likewise: onnx their converted file (faceapi-landmarks68-onnx), tfjs the
   * weights, auto the converted file when installed (BENCHMARKS.md "68 landmarks on ONNX Runtime").
   */
  runtime?: string;
  /** ONNX Runtime execution provider: cpu | cuda (default env FACEFLOW_ORT_PROVIDER, else cpu) */
  onnxProvider?: string;
  /**
   * intra-op threads of each ONNX Runtime session (default 1: an EnginePool scales with worker threads, one
   * session each; on few cores one worker with more threads is the other choice, see bench:engine)
   */
  onnxThreads?: number;
  detector?: Partial<DetectorConfig>;
  /** average the embeddings of the chip and its mirror image (default true; costs a second forward pass) */
  flip?: boolean;
  /** crop scale around the detector box for the first landmark pass (default 1.3) */
  landmarkCropScale?: number;
  /** crop scale around the landmarks' bounding box for the refining pass (default 1.25); 0 disables it */
  refineCropScale?: number;
  /** dlib chip padding (default 0.25) */
  chipPadding?: number;
  /**
   * Models by registry name (`faceflow models list`), defaults (DEFAULT_MODELS): the pulled yunet-2023mar,
   * the npm-shipped faceapi-landmarks68 and faceapi-recognition. The embedder may also be a user's own TF.js model by path.
   */
  models?: { detector?: string; regionDetector?: string; landmarks?: string; embedder?: string | (GraphEmbedderConfig & { name?: string }) };
  /** a user registry file adding or overriding model entries (else env FACEFLOW_MODEL_REGISTRY) */
  registryFile?: string;
  /** where pulled models live (else env FACEFLOW_MODEL_CACHE, else ~/.cache/faceflow/models) */
  cacheDir?: string;
  /**
   * the folder of a projection head trained by `faceflow train`: applied to every embedding after the base
   * embedder (and after flip-averaging); the embedder's name and dimension become the head's
   */
  head?: string;
  /** faces under this quality (quality.ts) are refused by assertEnrollable (default DEFAULT_QUALITY_FLOOR) */
  qualityFloor?: number;
}

export interface RunOptions {
  /** compute embeddings (default true) */
  embed?: boolean;
  /** detection only: box, score and keypoints, no landmarks and no embedding (detection evaluation) */
  detectOnly?: boolean;
  /** the whole image is one face crop: skip detection (the notebook's 96x96 pictures) */
  wholeImageIsFace?: boolean;
  /** keep at most this many faces per image, largest score first */
  maxFaces?: number;
  /**
   * when nothing is detected, treat a centred box of this fraction of the image as the face (e.g. 0.45 on
   * LFW's 250 px funneled images, where the face is centred by construction); off by default
   */
  fallbackCenterFraction?: number;
  /**
   * per image: look for faces only near these boxes (faces of the camera's previous frame) instead of the
   * whole frame; undefined for an image = full detection. See BlazeFaceDetector.run.
   */
  regions?: Array<Box[] | undefined>;
  /**
   * per image: faces detected over one of these boxes (IoU >= 0.3) are only located, not landmarked or
   * embedded: a video pipeline that embedded a face a moment ago follows it without paying for it again
   * (DeepStream's secondary-reinfer-interval). They come back with `trackOnly: true`.
   */
  trackOnlyNear?: Array<Box[] | undefined>;
  /**
   * the full-frame detector's confidence threshold for this call instead of its configured one (in (0,1)):
   * redaction's verification looks again at a lower one, so that a face just under the threshold, which a
   * re-encoded copy of the frame may tip over it, is hidden too
   */
  minScore?: number;
}

/** Short detector names the CLI accepts (--detector), and the registry entries they stand for. */
export const DETECTOR_ALIASES: Readonly<Record<string, string>> = { blazeface: 'facemesh-detection-full', yunet: 'yunet-2023mar' };

/** The detectors the engine can run, by registry name. */
const SUPPORTED_DETECTORS = ['facemesh-detection-full', 'yunet-2023mar'];

export type ModelRuntime = 'onnx' | 'tfjs';

/** The common contract of the detector wrappers (BlazeFaceDetector, YuNetDetector). */
export interface FaceDetector {
  run(images: RgbImage[], regions?: ReadonlyArray<readonly Box[] | undefined>, override?: { scoreThreshold?: number }): Promise<Detection[][]>;
  dispose(): void | Promise<void>;
}

/**
 * The product's default models: the one place they are defined (the CLI, the services, `faceflow run` and
 * FaceAnalysis take the engine's default when no detector is named).
 */
export const DEFAULT_MODELS = {
  /**
   * YuNet (issue 11): ahead of BlazeFace on CMU+MIT recall at <= 0.3 FP/image, on LFW DevTest and 12-17x
   * cheaper per 720p frame (BENCHMARKS.md "YuNet becomes the default"). It also looks near the previous
   * frame's faces (RunOptions.regions) itself, so a track's boxes keep one detector's convention.
   */
  detector: 'yunet-2023mar',
  /**
   * BlazeFace's model for the windows near the previous frame's faces, where faces are large (short range);
   * used only with `--detector blazeface`
   */
  regionDetector: 'facemesh-detection-short',
  landmarks: 'faceapi-landmarks68',
  embedder: DEFAULT_MODEL,
} as const;

/**
 * Files of the npm-shipped TF.js models (verified against the registry's sha256): BlazeFace full range and
 * its short-range region model, the 68 landmarks and the default embedder. YuNet, the default detector, is
 * a pulled ONNX file (`resolveModel(DEFAULT_MODELS.detector)`).
 */
export async function defaultModelPaths(): Promise<{ blazeface: string; regionDetector: string; landmarks: string; embedder: string }> {
  const [blazeface, regionDetector, landmarks, embedder] = await Promise.all(
    [DETECTOR_ALIASES.blazeface!, DEFAULT_MODELS.regionDetector, DEFAULT_MODELS.landmarks, DEFAULT_MODELS.embedder].map((n) => resolveModel(n)),
  );
  return { blazeface: blazeface!.main, regionDetector: regionDetector!.main, landmarks: landmarks!.main, embedder: embedder!.main };
}

interface Embedder {
  run(chips: Uint8Array[]): Promise<Float32Array[]>;
  dispose(): void | Promise<void>;
}

export interface EmbedderInfo {
  /** the model's name: galleries record it, and never mix embeddings of two models */
  name: string;
  dim: number;
  /** side of the aligned chip the model takes */
  chipSize: number;
  /** how the chip is aligned: dlib's 51-landmark chip (default) or the ArcFace 5-point template (SFace) */
  alignment?: 'dlib' | 'arcface';
  /** a decision threshold shipped with the model itself (a projection head's, recalibrated when trained) */
  threshold?: number;
  /**
   * the identify (1:N) threshold shipped with the model itself: a projection head's distance at FAR 1e-3 on
   * its validation identities; for a head written before that was recorded, its `threshold` (and
   * `distanceAtFar1e3Fallback` is true). thresholdsFor() and the decision policy (match/decision.ts) read both.
   */
  distanceAtFar1e3?: number;
  distanceAtFar1e3Fallback?: boolean;
}

/**
 * The installed ONNX conversion (by faceflow's `converter`) of TF.js model `source`, when `runtime` asks for
 * it: never under tfjs; under auto when the registry has one and it is installed (the converted file is an
 * optional speed-up: a missing one means the TF.js weights); under onnx it must be there, else one line
 * naming the command that installs it. A file that is there but fails its check is an error either way.
 * `subject` names the model in messages: `embedder "x"` / `landmarks "x"` (`plural`: they need, not it needs).
 */
async function onnxConversion(
  source: ModelEntry,
  converter: DerivedConverter,
  runtime: RuntimeName,
  where: { registry: ModelRegistry; cacheDir?: string },
  subject: { text: string; plural: boolean },
): Promise<{ entry: ModelEntry; main: string } | undefined> {
  if (runtime === 'tfjs') return undefined;
  const onnx = where.registry.list(source.kind).find((e) => e.format === 'onnx' && e.derived?.from === source.name && e.derived.converter === converter);
  if (!onnx) {
    if (runtime === 'onnx') throw new FaceflowError('INVALID_CONFIG', `${subject.text} ${subject.plural ? 'have' : 'has'} no ONNX conversion in the registry but the runtime is forced to onnx; use --runtime auto or tfjs`);
    return undefined;
  }
  try {
    return { entry: onnx, main: (await resolveModel(onnx, where)).main };
  } catch (e) {
    if (!(e instanceof FaceflowError && e.code === 'NOT_FOUND')) throw e;
    if (runtime === 'auto') return undefined;
    throw new FaceflowError('NOT_FOUND', `${subject.text} on --runtime onnx ${subject.plural ? 'need their' : 'needs its'} converted file: ${e.message}`, { cause: e, details: e.details });
  }
}

async function loadEmbedder(
  spec: NonNullable<NonNullable<EngineConfig['models']>['embedder']>,
  registry: ModelRegistry,
  cacheDir: string | undefined,
  runtime: RuntimeName = 'auto',
  provider?: string,
  threads?: number,
): Promise<{ embedder: Embedder; info: EmbedderInfo; runtime: ModelRuntime }> {
  if (typeof spec !== 'string') {
    const e = await GraphEmbedder.load(spec);
    return { embedder: e, info: { name: spec.name ?? `file:${spec.path}`, dim: e.dim, chipSize: spec.inputSize }, runtime: 'tfjs' };
  }
  const where = { registry, ...(cacheDir ? { cacheDir } : {}) };
  const resolved = await resolveModel(spec, where);
  const entry = resolved.entry;
  if (entry.kind !== 'embedder') throw new FaceflowError('INVALID_CONFIG', `model "${spec}" is a ${entry.kind}, not an embedder`);
  if (runtime === 'tfjs' && entry.format === 'onnx') {
    const fix = entry.derived ? entry.derived.from : 'faceapi-recognition';
    throw new FaceflowError('INVALID_CONFIG', `embedder "${entry.name}" is an ONNX model but the runtime is forced to tfjs; use --embedder ${fix} or --runtime auto`);
  }
  const onnxOptions = () => ({ provider: parseProviderName(provider), ...(threads !== undefined ? { threads } : {}) });
  const dlibOnnx = async (onnx: ModelEntry, main: string, name: string) => {
    const e = await DlibResNetOnnxEmbedder.load({ modelPath: main, name: onnx.name, ...onnxOptions() });
    // the same network and weights as the TF.js one: its embeddings keep the source model's name
    return { embedder: e, info: { name, dim: 128, chipSize: EMBED_INPUT }, runtime: 'onnx' as const };
  };
  if (entry.format === 'face-api-weights') {
    const onnx = await onnxConversion(entry, 'dlib-resnet-onnx', runtime, where, { text: `embedder "${entry.name}"`, plural: false });
    if (onnx) return dlibOnnx(onnx.entry, onnx.main, entry.name);
    const e = await DlibResNetEmbedder.load({ manifestPath: resolved.main });
    return { embedder: e, info: { name: entry.name, dim: 128, chipSize: EMBED_INPUT }, runtime: 'tfjs' };
  }
  if (entry.format === 'onnx') {
    if (entry.derived?.converter === 'dlib-resnet-onnx') return dlibOnnx(entry, resolved.main, entry.derived.from);
    if (!entry.name.startsWith('sface-')) throw new FaceflowError('INVALID_CONFIG', `ONNX embedder "${entry.name}" is not wired into the engine; use --embedder sface-2021dec-int8bq or faceapi-recognition`);
    const e = await SFaceEmbedder.load({ modelPath: resolved.main, name: entry.name, ...onnxOptions() });
    return { embedder: e, info: { name: entry.name, dim: SFACE_DIM, chipSize: SFACE_INPUT, alignment: 'arcface' }, runtime: 'onnx' };
  }
  const { width, normalisation, channelOrder } = entry.input;
  const e = await GraphEmbedder.load({
    path: resolved.main,
    format: entry.format,
    inputSize: width,
    mean: normalisation.mean,
    std: normalisation.std,
    ...(channelOrder ? { channelOrder } : {}),
    ...(entry.output.embeddingDim !== undefined ? { dim: entry.output.embeddingDim } : {}),
  });
  return { embedder: e, info: { name: entry.name, dim: e.dim, chipSize: width }, runtime: 'tfjs' };
}

/**
 * The 68-point landmark net on the runtime `runtime` asks for: its ONNX conversion under onnx, and under
 * auto when the converted file is installed (the same points, faster: BENCHMARKS.md "68 landmarks on ONNX
 * Runtime"), else its TF.js weights. `source` is the resolved TF.js entry (faceapi-landmarks68).
 */
async function loadLandmarks(
  source: { entry: ModelEntry; main: string },
  runtime: RuntimeName,
  config: EngineConfig,
  where: { registry: ModelRegistry; cacheDir?: string },
): Promise<{ landmarker: LandmarkModel; runtime: ModelRuntime }> {
  const onnx = await onnxConversion(source.entry, 'landmarks68-onnx', runtime, where, { text: `landmarks "${source.entry.name}"`, plural: true });
  if (onnx) {
    const landmarker = await Landmark68Onnx.load({
      modelPath: onnx.main,
      name: onnx.entry.name,
      provider: parseProviderName(config.onnxProvider),
      ...(config.onnxThreads !== undefined ? { threads: config.onnxThreads } : {}),
    });
    return { landmarker, runtime: 'onnx' };
  }
  return { landmarker: await Landmark68.load({ manifestPath: source.main }), runtime: 'tfjs' };
}

/** Loads a projection head for the base embedder `info`; on failure, disposes `owned` and throws. */
async function loadHead(dir: string, info: EmbedderInfo, owned: Array<{ dispose(): void }>): Promise<{ head: ProjectionHead; info: EmbedderInfo }> {
  let head: ProjectionHead | undefined;
  try {
    head = await ProjectionHead.load({ dir });
    if (head.meta.baseModel !== info.name || head.inputDim !== info.dim) {
      throw new FaceflowError('INVALID_CONFIG', `the head at ${dir} was trained on "${head.meta.baseModel}" (${head.inputDim}-d); this engine's embedder is "${info.name}" (${info.dim}-d)`);
    }
    const identify = headIdentifyThreshold(head.meta);
    return {
      head,
      info: {
        name: head.embedderName(info.name),
        dim: head.dim,
        chipSize: info.chipSize,
        ...(info.alignment ? { alignment: info.alignment } : {}),
        threshold: head.threshold,
        distanceAtFar1e3: identify.threshold,
        ...(identify.fallback ? { distanceAtFar1e3Fallback: true } : {}),
      },
    };
  } catch (e) {
    head?.dispose();
    owned.forEach((m) => m.dispose());
    throw e;
  }
}

/** What the engine's models run on, and which detector it uses. */
export interface EngineModels {
  detector: { name: string; runtime: ModelRuntime; provider?: string };
  landmarks: { name: string; runtime: ModelRuntime };
  embedder: { name: string; runtime: ModelRuntime };
}

async function loadDetector(
  name: string,
  runtime: RuntimeName,
  config: EngineConfig,
  where: { registry: ModelRegistry; cacheDir?: string },
): Promise<{ detector: FaceDetector; info: EngineModels['detector'] }> {
  const model = await resolveModel(name, where);
  const entry = model.entry;
  if (entry.kind !== 'detector') throw new FaceflowError('INVALID_CONFIG', `model "${name}" is a ${entry.kind}, not a detector`);
  if (!SUPPORTED_DETECTORS.includes(entry.name)) {
    throw new FaceflowError('INVALID_CONFIG', `detector "${entry.name}" is not wired into the engine; use --detector yunet or --detector blazeface`);
  }
  const onnx = entry.format === 'onnx';
  if (runtime === 'tfjs' && onnx) throw new FaceflowError('INVALID_CONFIG', `detector "${entry.name}" is an ONNX model but the runtime is forced to tfjs; use --detector blazeface or --runtime auto`);
  if (runtime === 'onnx' && !onnx) throw new FaceflowError('INVALID_CONFIG', `detector "${entry.name}" is a TF.js model but the runtime is forced to onnx; use --detector yunet or --runtime auto`);
  const d = config.detector ?? {};
  if (onnx) {
    const provider = parseProviderName(config.onnxProvider);
    const detector = await YuNetDetector.load({
      modelPath: model.main,
      name: entry.name,
      provider,
      ...(config.onnxThreads !== undefined ? { threads: config.onnxThreads } : {}),
      ...(d.minFaceSize !== undefined ? { minFaceSize: d.minFaceSize } : {}),
      ...(d.scoreThreshold !== undefined ? { scoreThreshold: d.scoreThreshold } : {}),
      ...(d.nmsIou !== undefined ? { nmsIou: d.nmsIou } : {}),
      ...(d.regionScale !== undefined ? { regionScale: d.regionScale } : {}),
      ...(d.regionScoreThreshold !== undefined ? { regionScoreThreshold: d.regionScoreThreshold } : {}),
    });
    return { detector, info: { name: entry.name, runtime: 'onnx', provider } };
  }
  const regionModel = await resolveModel(config.models?.regionDetector ?? DEFAULT_MODELS.regionDetector, where);
  const detector = await BlazeFaceDetector.load({ ...d, modelPath: model.main, regionModelPath: regionModel.main });
  return { detector, info: { name: entry.name, runtime: 'tfjs' } };
}

export class FaceEngine {
  private constructor(
    readonly runtime: RuntimeInfo,
    /** the detector, landmarks and embedder, and the runtime each runs on */
    readonly models: EngineModels,
    private readonly detector: FaceDetector,
    private readonly landmarker: LandmarkModel,
    private readonly embedder: Embedder,
    readonly embedderInfo: EmbedderInfo,
    private readonly cfg: Required<Pick<EngineConfig, 'flip' | 'landmarkCropScale' | 'refineCropScale' | 'chipPadding'>>,
    private readonly head?: ProjectionHead,
  ) {}

  static async load(config: EngineConfig = {}): Promise<FaceEngine> {
    const runtimeName = parseRuntimeName(config.runtime);
    if (config.onnxProvider !== undefined) parseProviderName(config.onnxProvider);
    const runtime = await initRuntime(config.backend === undefined ? {} : { backend: config.backend });
    const registry = await loadModelRegistry(config.registryFile ? { registryFile: config.registryFile } : {});
    const models = { ...DEFAULT_MODELS, ...config.models };
    // a forced tfjs runtime without a named detector means BlazeFace, the TF.js one (YuNet is ONNX)
    const detectorName = config.models?.detector ?? (runtimeName === 'tfjs' ? DETECTOR_ALIASES.blazeface! : DEFAULT_MODELS.detector);
    const where = { registry, ...(config.cacheDir ? { cacheDir: config.cacheDir } : {}) };
    let landmarkModel = await resolveModel(models.landmarks, where);
    // the converted file named directly stands for its source: the runtime choice below picks the file
    const landmarkSource = landmarkModel.entry.derived?.converter === 'landmarks68-onnx' ? landmarkModel.entry.derived.from : undefined;
    if (landmarkSource !== undefined) {
      if (runtimeName === 'tfjs') {
        throw new FaceflowError('INVALID_CONFIG', `landmarks "${landmarkModel.entry.name}" are an ONNX model but the runtime is forced to tfjs; use the landmarks model ${landmarkSource} or --runtime auto`);
      }
      landmarkModel = await resolveModel(landmarkSource, where);
    }
    if (landmarkModel.entry.name !== DEFAULT_MODELS.landmarks) {
      throw new FaceflowError('INVALID_CONFIG', `landmarks model "${landmarkModel.entry.name}" is not supported; the aligner needs the 68-point ${DEFAULT_MODELS.landmarks}`);
    }
    const cfg = {
      flip: config.flip ?? true,
      landmarkCropScale: config.landmarkCropScale ?? 1.3,
      refineCropScale: config.refineCropScale ?? 1.25,
      chipPadding: config.chipPadding ?? 0.25,
    };
    if (!(cfg.landmarkCropScale >= 0.8 && cfg.landmarkCropScale <= 3)) {
      throw new FaceflowError('INVALID_CONFIG', `landmarkCropScale must be in [0.8, 3], got ${cfg.landmarkCropScale}`);
    }
    const { detector, info: detectorInfo } = await loadDetector(DETECTOR_ALIASES[detectorName] ?? detectorName, runtimeName, config, where);
    const { landmarker, runtime: landmarksRuntime } = await loadLandmarks(landmarkModel, landmarkSource !== undefined && runtimeName === 'auto' ? 'onnx' : runtimeName, config, where).catch(async (e) => {
      await detector.dispose();
      throw e;
    });
    const { embedder, info, runtime: embedderRuntime } = await loadEmbedder(models.embedder, registry, config.cacheDir, runtimeName, config.onnxProvider, config.onnxThreads).catch(async (e) => {
      await detector.dispose();
      await landmarker.dispose();
      throw e;
    });
    const head = config.head ? await loadHead(config.head, info, [detector, landmarker, embedder]) : undefined;
    const engineModels: EngineModels = {
      detector: detectorInfo,
      landmarks: { name: landmarkModel.entry.name, runtime: landmarksRuntime },
      embedder: { name: info.name, runtime: embedderRuntime },
    };
    const engine = new FaceEngine(runtime, engineModels, detector, landmarker, embedder, head ? head.info : info, cfg, head?.head);
    if (config.qualityFloor !== undefined) {
      if (!(config.qualityFloor >= 0 && config.qualityFloor <= 1)) {
        engine.dispose();
        throw new FaceflowError('INVALID_CONFIG', `qualityFloor must be in [0, 1], got ${config.qualityFloor}`);
      }
      engine.qualityFloor = config.qualityFloor;
    }
    return engine;
  }

  /** The verify (1:1) threshold for this engine's embeddings: its head's, else the shipped calibration, if any. */
  get calibratedThreshold(): number | undefined {
    return thresholdsFor(this.embedderInfo)?.threshold;
  }

  /**
   * The identify (1:N) threshold for this engine's embeddings, the distance at FAR 1e-3: its head's (the
   * accuracy-optimal one for a head that predates it), else the shipped calibration's, if any.
   */
  get calibratedDistanceAtFar1e3(): number | undefined {
    return thresholdsFor(this.embedderInfo)?.distanceAtFar1e3;
  }

  /** Faces of each image, with landmarks and (unless `embed: false`) embeddings. */
  async run(images: RgbImage[], options: RunOptions = {}): Promise<DetectedFace[][]> {
    let detections: Detection[][];
    if (options.wholeImageIsFace) {
      detections = images.map((img) => [{ box: { x: 0, y: 0, width: img.width, height: img.height }, score: 1, keypoints: [] }]);
    } else {
      detections = await this.detector.run(images, options.regions, options.minScore === undefined ? {} : { scoreThreshold: options.minScore });
      const f = options.fallbackCenterFraction;
      if (f !== undefined && f > 0) {
        detections = detections.map((d, i) => {
          if (d.length > 0) return d;
          const img = images[i]!;
          const side = Math.min(img.width, img.height) * f;
          return [{ box: { x: (img.width - side) / 2, y: (img.height - side) / 2, width: side, height: side }, score: 0, keypoints: [] }];
        });
      }
    }
    if (options.maxFaces !== undefined) detections = detections.map((d) => d.slice(0, options.maxFaces));
    const all: Array<{ img: RgbImage; det: Detection; imageIndex: number; trackOnly: boolean }> = [];
    detections.forEach((dets, imageIndex) =>
      dets.forEach((det) => {
        const skip = options.trackOnlyNear?.[imageIndex];
        const trackOnly = skip !== undefined && skip.some((b) => boxIou(b, det.box) >= TRACK_ONLY_IOU);
        all.push({ img: images[imageIndex]!, det, imageIndex, trackOnly });
      }),
    );
    if (options.detectOnly) {
      return detections.map((dets) => dets.map((d) => ({ box: d.box, score: d.score, keypoints: d.keypoints, landmarks: [] })));
    }
    const flat = all.filter((f) => !f.trackOnly);

    const landmarks = await this.landmarks(flat.map((f) => f.img), flat.map((f) => f.det.box), options.wholeImageIsFace ? 1 : this.cfg.landmarkCropScale);
    let refined = landmarks;
    if (this.cfg.refineCropScale > 0 && !options.wholeImageIsFace) {
      refined = await this.landmarks(flat.map((f) => f.img), landmarks.map((l) => boundingBox(l)), this.cfg.refineCropScale);
    }
    let embeddings: Float32Array[] | undefined;
    if (options.embed ?? true) {
      const chips = flat.map((f, i) => this.alignChip(f.img, refined[i]!));
      embeddings = await this.embedChips(chips);
    }
    const result: DetectedFace[][] = images.map(() => []);
    let i = 0;
    for (const f of all) {
      const face: DetectedFace = { box: f.det.box, score: f.det.score, keypoints: f.det.keypoints, landmarks: [] };
      if (f.trackOnly) face.trackOnly = true;
      else {
        face.landmarks = refined[i]!;
        if (embeddings) face.embedding = embeddings[i]!;
        i++;
      }
      result[f.imageIndex]!.push(face);
    }
    return result;
  }

  /** Aligned chips of every face (what the embedder sees), for benchmarks and debugging. */
  async alignedChips(images: RgbImage[], options: RunOptions = {}): Promise<Uint8Array[][]> {
    const faces = await this.run(images, { ...options, embed: false });
    return faces.map((fs, i) => fs.map((f) => this.alignChip(images[i]!, f.landmarks)));
  }

  /** The chip this engine's embedder takes for a face with these 68 landmarks (dlib's chip, or ArcFace's). */
  alignChip(image: RgbImage, landmarks68: Point[]): Uint8Array {
    return alignEmbedderChip(this.embedderInfo, image, landmarks68, this.cfg.chipPadding);
  }

  /** Embeds aligned chips of embedderInfo.chipSize (flip-averaged when configured, then through the head if any). */
  async embedChips(chips: Uint8Array[]): Promise<Float32Array[]> {
    const base = await this.baseEmbedChips(chips);
    return this.head ? this.head.run(base) : base;
  }

  private async baseEmbedChips(chips: Uint8Array[]): Promise<Float32Array[]> {
    if (!this.cfg.flip) return this.embedder.run(chips);
    const size = this.embedderInfo.chipSize;
    const both = await this.embedder.run([...chips, ...chips.map((c) => flipHorizontal(c, size, size))]);
    return chips.map((_, i) => {
      const a = both[i]!;
      const b = both[i + chips.length]!;
      const v = new Float32Array(a.length);
      for (let k = 0; k < a.length; k++) v[k] = a[k]! + b[k]!;
      return unitVector(v);
    });
  }

  private async landmarks(images: RgbImage[], boxes: Box[], scale: number): Promise<Point[][]> {
    const crops = images.map((img, i) => cropSquare(img, boxes[i]!, scale, LANDMARK_INPUT));
    const pts = await this.landmarker.run(crops.map((c) => c.pixels));
    // the net reports crop coordinates with pixel corners at integers; our affines use pixel centres
    return pts.map((p, i) => p.map((q) => applyAffine(crops[i]!.affine, { x: q.x - 0.5, y: q.y - 0.5 })));
  }

  /** The quality score of a face of `image` (quality.ts: size, sharpness, pose, detector score). */
  quality(image: RgbImage, face: DetectedFace, options: QualityOptions = {}): FaceQuality {
    return faceQuality(image, face, options);
  }

  /** The face's quality, or a LOW_QUALITY error when it is under the floor (config qualityFloor, or `floor`). */
  assertEnrollable(image: RgbImage, face: DetectedFace, floor?: number, options: QualityOptions = {}): FaceQuality {
    const q = faceQuality(image, face, options);
    assertQuality(q, floor ?? this.qualityFloor, 'face to enroll');
    return q;
  }

  /** The configured quality floor. */
  qualityFloor = DEFAULT_QUALITY_FLOOR;

  /** Frees every model; every one is disposed even if another throws (the first error is rethrown). */
  dispose(): void {
    let first: unknown;
    const attempt = (f: () => unknown): void => {
      try {
        const r = f();
        if (r instanceof Promise) r.catch(() => undefined);
      } catch (e) {
        first ??= e;
      }
    };
    attempt(() => this.detector.dispose());
    attempt(() => this.landmarker.dispose());
    attempt(() => this.embedder.dispose());
    attempt(() => this.head?.dispose());
    if (first !== undefined) throw first;
  }
}
