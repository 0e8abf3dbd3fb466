/**
 * The notebook-level API (issue 13 step 1): InsightFace's `FaceAnalysis.get(img)` and face_recognition's
 * `face_encodings` / `compare_faces`, over faceflow's engine. The seed notebook's `img_to_encoding`,
 * `verify` and `who_is_it` with its dictionary `database` become `encode`, `verify`, `whoIsIt` and
 * `enroll` into a Gallery; the thresholds are the shipped calibrated ones instead of the notebook's 0.7.
 *
 *   const fa = await FaceAnalysis.load();
 *   await fa.enroll('ada', 'ada.jpg');
 *   console.log(await fa.whoIsIt('door.jpg'));
 *
 * Everything the config can get wrong is refused by load() before any model loads; every failure is a
 * FaceflowError with a one-line message that names the fix.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { closeAll, FaceflowError, checkIdentityId, galleryKeyFromEnv, type GalleryKey } from '@faceflow/shared';
import { FaceEngine, type EmbedderInfo, type EngineConfig, type DetectedFace, type RunOptions } from './engine.js';
import { Gallery } from '../match/gallery.js';
import { identify, verify as verifyEmbedding, type DecisionReason } from '../match/decide.js';
import { decisionThreshold, thresholdsFor, type DecisionThreshold } from '../match/decision.js';
import { decodeImage, imageFromRgb, type ImageLimits } from '../image/image.js';
import { assertQuality, faceQuality } from './quality.js';
import { parseHeadEmbedderName } from '../models/head.js';
import { largestFace } from './largest-face.js';
import { BACKENDS } from '../runtime/tf.js';
import { parseProviderName, parseRuntimeName } from '../runtime/onnx.js';
import type { Box, Point, RgbImage } from '../image/geometry.js';

/** An image: a file path, encoded bytes (JPEG, PNG, WebP), or decoded RGB pixels. */
export type ImageInput = string | Buffer | Uint8Array | RgbImage;

export interface FaceAnalysisConfig {
  /** TF.js backend: auto | tensorflow | wasm | cpu (default env FACEFLOW_BACKEND, else auto) */
  backend?: string;
  /** model runtime: auto | onnx | tfjs (default env FACEFLOW_RUNTIME, else auto); tfjs without a detector means BlazeFace */
  runtime?: string;
  /** ONNX Runtime execution provider: cpu | cuda (default env FACEFLOW_ORT_PROVIDER, else cpu) */
  provider?: string;
  /** face detector: yunet (default), blazeface, or a detector's registry name */
  detector?: string;
  /** embedding model by registry name (default faceapi-recognition; `faceflow models list`) */
  embedder?: string;
  /** the folder of a projection head trained by `faceflow train`; its own embedder name and thresholds come with it */
  head?: string;
  /** a registry file with your own models (default env FACEFLOW_MODEL_REGISTRY) */
  registryFile?: string;
  /** where pulled models live (default env FACEFLOW_MODEL_CACHE, else ~/.cache/faceflow/models) */
  cacheDir?: string;
  /** smallest face side to look for, in pixels, in [8, 10000] (default 40) */
  minFaceSize?: number;
  /** detector confidence needed for a face, in [0.01, 0.99] (default: the detector's own, 0.6 for YuNet, 0.65 for BlazeFace) */
  minScore?: number;
  /** average each embedding with the mirrored face's (default true; false is faster, slightly less accurate) */
  flip?: boolean;
  /** every image is already a tight crop of one face (the notebook's 96x96 pictures): skip detection */
  wholeImageIsFace?: boolean;
  /**
   * what enroll and verify do with an image of several faces: 'error' (default: enrolling or checking the
   * wrong person is worse than asking), or 'largest' (the largest face, as `faceflow enroll` does)
   */
  multipleFaces?: 'error' | 'largest';
  /** enroll refuses a face whose quality score (quality.ts) is under this, in [0, 1] (default: no floor) */
  minQuality?: number;
  /**
   * the gallery: a Gallery (used, never closed), or a gallery file (read if it exists, else created; saved
   * after each enroll). Default: a new in-memory gallery.
   */
  gallery?: Gallery | string;
  /** the key of an encrypted gallery file (default: the key file named by env FACEFLOW_GALLERY_KEY_FILE, if set) */
  galleryKey?: GalleryKey;
  /** verify's L2 threshold in [0, 2] instead of the calibrated accuracy-optimal one */
  verifyThreshold?: number;
  /** whoIsIt's L2 threshold in [0, 2] instead of the calibrated distance at FAR 1e-3 */
  identifyThreshold?: number;
  /** whoIsIt names the nearest identity only when it beats the second by this distance, in [0, 2] (default 0.03) */
  margin?: number;
  /** limits on decoded images (decodeImage's defaults otherwise) */
  imageLimits?: ImageLimits;
}

/** One face of an image: where it is, and its L2-normalised embedding. */
export interface EncodedFace {
  box: Box;
  /** detector confidence in [0, 1]; 1 for a whole-image face */
  score: number;
  /** 6 detector keypoints (eyes, nose, mouth, ears), image pixels; empty for whole-image faces */
  keypoints: Point[];
  /** 68 iBUG landmarks, image pixels */
  landmarks: Point[];
  /** L2-normalised */
  embedding: Float32Array;
}

export interface VerifyAnswer {
  name: string;
  /** distance below threshold */
  match: boolean;
  /** L2 distance to the person's closest enrolled embedding */
  distance: number;
  threshold: number;
  /** the face of the image that was compared */
  box: Box;
}

/** Who one face is. No embedding in it, so that printing it logs none. */
export interface WhoIsItAnswer {
  /** the enrolled identity, or null: unknown (an answer, not an error) */
  name: string | null;
  /** distance to the nearest identity, accepted or not */
  distance: number;
  /** the nearest identity, even when the answer is unknown */
  nearest: string;
  secondDistance: number | null;
  reason: DecisionReason;
  threshold: number;
  box: Box;
}

export interface EnrollAnswer {
  name: string;
  /** embeddings added by this call */
  added: number;
  /** embeddings the identity holds now */
  embeddings: number;
}

/** A decision threshold and where it came from. */
/** The threshold verify or whoIsIt uses, and where it came from: the engine's one decision policy (match/decision.ts). */
export type ChosenThreshold = DecisionThreshold;

type Purpose = 'verify' | 'identify';

/**
 * The facade's thresholds come from the engine's one decision policy (match/decision.ts `decisionThreshold`);
 * undefined when the model has none calibrated and the config gives none (verify/whoIsIt then ask for one).
 */
function chooseThreshold(info: EmbedderInfo, purpose: Purpose, override?: number): ChosenThreshold | undefined {
  if (override === undefined && !thresholdsFor(info)) return undefined;
  const fix = purpose === 'verify' ? 'pass { verifyThreshold }' : 'pass { identifyThreshold }';
  return decisionThreshold(info, purpose, override, { fix });
}


const CONFIG_KEYS: ReadonlySet<string> = new Set([
  'backend', 'runtime', 'provider', 'detector', 'embedder', 'head', 'registryFile', 'cacheDir', 'minFaceSize', 'minScore', 'flip',
  'wholeImageIsFace', 'multipleFaces', 'minQuality', 'gallery', 'galleryKey', 'verifyThreshold', 'identifyThreshold', 'margin', 'imageLimits',
]);

function configError(message: string, field: string): FaceflowError {
  return new FaceflowError('INVALID_CONFIG', `FaceAnalysis.load: ${message}`, { details: { field } });
}

/** Checks every field before anything loads; the error names the field and what it takes. */
function validateConfig(config: FaceAnalysisConfig): void {
  if (config === null || typeof config !== 'object') throw configError('config must be an object, e.g. { detector: "yunet" }', 'config');
  for (const k of Object.keys(config)) {
    if (!CONFIG_KEYS.has(k)) throw configError(`unknown option "${k}"; the options are ${[...CONFIG_KEYS].join(', ')}`, k);
  }
  const c = config as Record<string, unknown>;
  for (const k of ['backend', 'runtime', 'provider', 'detector', 'embedder', 'head', 'registryFile', 'cacheDir']) {
    if (c[k] !== undefined && (typeof c[k] !== 'string' || c[k] === '')) throw configError(`${k} must be a non-empty string, got ${JSON.stringify(c[k])}`, k);
  }
  for (const k of ['flip', 'wholeImageIsFace']) {
    if (c[k] !== undefined && typeof c[k] !== 'boolean') throw configError(`${k} must be true or false, got ${JSON.stringify(c[k])}`, k);
  }
  const ranges: Record<string, [number, number]> = { minFaceSize: [8, 10000], minScore: [0.01, 0.99], minQuality: [0, 1], verifyThreshold: [0, 2], identifyThreshold: [0, 2], margin: [0, 2] };
  for (const [k, [lo, hi]] of Object.entries(ranges)) {
    const v = c[k];
    if (v !== undefined && !(typeof v === 'number' && v >= lo && v <= hi)) throw configError(`${k} must be a number in [${lo}, ${hi}], got ${JSON.stringify(v)}`, k);
  }
  if (config.backend !== undefined && config.backend !== 'auto' && !(BACKENDS as readonly string[]).includes(config.backend)) {
    throw configError(`backend must be one of auto, ${BACKENDS.join(', ')}; got "${config.backend}"`, 'backend');
  }
  // the parsers name the CLI flag; here the option is meant
  try {
    parseRuntimeName(config.runtime);
  } catch (e) {
    throw configError((e as Error).message.replace('(--runtime)', '(runtime)'), 'runtime');
  }
  try {
    parseProviderName(config.provider);
  } catch (e) {
    throw configError((e as Error).message.replace('(--provider)', '(provider)'), 'provider');
  }
  if (config.multipleFaces !== undefined && config.multipleFaces !== 'error' && config.multipleFaces !== 'largest') {
    throw configError(`multipleFaces must be "error" or "largest", got ${JSON.stringify(config.multipleFaces)}`, 'multipleFaces');
  }
  if (config.gallery !== undefined && !(config.gallery instanceof Gallery) && (typeof config.gallery !== 'string' || config.gallery === '')) {
    throw configError('gallery must be a Gallery or the path of a gallery file', 'gallery');
  }
}

function engineConfigOf(config: FaceAnalysisConfig): EngineConfig {
  const cfg: EngineConfig = {};
  if (config.backend !== undefined) cfg.backend = config.backend;
  if (config.runtime !== undefined) cfg.runtime = config.runtime;
  if (config.provider !== undefined) cfg.onnxProvider = config.provider;
  if (config.minFaceSize !== undefined || config.minScore !== undefined) {
    cfg.detector = { ...(config.minFaceSize !== undefined ? { minFaceSize: config.minFaceSize } : {}), ...(config.minScore !== undefined ? { scoreThreshold: config.minScore } : {}) };
  }
  if (config.flip !== undefined) cfg.flip = config.flip;
  if (config.detector !== undefined || config.embedder !== undefined) {
    cfg.models = { ...(config.detector !== undefined ? { detector: config.detector } : {}), ...(config.embedder !== undefined ? { embedder: config.embedder } : {}) };
  }
  if (config.registryFile !== undefined) cfg.registryFile = config.registryFile;
  if (config.cacheDir !== undefined) cfg.cacheDir = config.cacheDir;
  if (config.head !== undefined) cfg.head = config.head;
  return cfg;
}

/** A gallery file read if it exists, else a new gallery (made once the embedder is known) saved there on enroll. */
async function readGalleryFile(file: string, key: GalleryKey | undefined): Promise<Gallery | undefined> {
  try {
    await stat(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      // a new file: its folder must exist, or the first enroll would fail after the work is done
      const dir = path.dirname(file);
      const folder = await stat(dir).then((st) => st.isDirectory(), () => false);
      if (!folder) throw configError(`gallery ${file}: the folder ${dir} does not exist; create it, or name a file in an existing folder`, 'gallery');
      return undefined;
    }
  }
  return Gallery.load(file, key ? { key } : {});
}

/** A gallery whose embeddings another model made cannot be compared with this engine's: say which and what to pass. */
function checkGalleryModel(gallery: Gallery, where: string, info: EmbedderInfo): void {
  if (gallery.model === info.name) {
    if (gallery.dim !== info.dim) throw new FaceflowError('GALLERY_FORMAT', `${where} holds ${gallery.dim}-d "${gallery.model}" embeddings; this FaceAnalysis makes ${info.dim}-d ones`);
    return;
  }
  const g = parseHeadEmbedderName(gallery.model);
  const e = parseHeadEmbedderName(info.name);
  const headOf = (h: { name: string; sha256Prefix: string }): string => `head "${h.name}" (weights ${h.sha256Prefix}...)`;
  let advice: string;
  if (g.base !== e.base) advice = `load with { embedder: "${g.base}"${g.head ? `, head: the folder of its ${headOf(g.head)}` : ''} }`;
  else if (g.head && !e.head) advice = `it was enrolled through the projection ${headOf(g.head)}: load with { head: that head's folder }`;
  else if (!g.head && e.head) advice = `it was enrolled without a projection head and this FaceAnalysis applies ${headOf(e.head)}: load without { head }, or enroll the gallery again`;
  else advice = `it was enrolled through another projection head, ${headOf(g.head!)}: load with { head: that head's folder }, or enroll the gallery again`;
  throw new FaceflowError('GALLERY_FORMAT', `${where} holds "${gallery.model}" embeddings; this FaceAnalysis makes "${info.name}" embeddings, which cannot be compared: ${advice}`);
}

function isRgbImage(x: unknown): x is RgbImage {
  return typeof x === 'object' && x !== null && !(x instanceof Uint8Array) && 'data' in x && 'width' in x && 'height' in x;
}

function describe(image: ImageInput, index?: number): string {
  if (typeof image === 'string') return image;
  return index === undefined ? 'the image' : `image #${index}`;
}

export class FaceAnalysis {
  private disposed = false;

  private constructor(
    private readonly engine: FaceEngine,
    private readonly store: Gallery,
    /** the gallery file enroll saves to, when the gallery is one */
    private readonly galleryFile: string | undefined,
    private readonly ownsGallery: boolean,
    private readonly config: FaceAnalysisConfig,
    private readonly chosen: { verify: ChosenThreshold | undefined; identify: ChosenThreshold | undefined },
  ) {}

  /**
   * Loads the models (the product defaults unless the config names others) and the gallery. A bad config
   * value, or a gallery file that cannot be read, fails before any model loads; a gallery of another
   * model's embeddings fails once the embedder is known.
   */
  static async load(options: FaceAnalysisConfig = {}): Promise<FaceAnalysis> {
    validateConfig(options);
    // a copy: the caller changing its object later cannot bypass the checks
    const config = { ...options };
    const file = typeof config.gallery === 'string' ? config.gallery : undefined;
    const key = config.galleryKey ?? (file !== undefined ? galleryKeyFromEnv(process.env) : undefined);
    const fromFile = file !== undefined ? await readGalleryFile(file, key) : undefined;
    const given = config.gallery instanceof Gallery ? config.gallery : undefined;
    const engine = await FaceEngine.load(engineConfigOf(config));
    try {
      const info = engine.embedderInfo;
      let gallery = given ?? fromFile;
      if (gallery) checkGalleryModel(gallery, file ?? 'the given gallery', info);
      else gallery = new Gallery(info.name, info.dim, key ? { key } : {});
      const chosen = { verify: chooseThreshold(info, 'verify', config.verifyThreshold), identify: chooseThreshold(info, 'identify', config.identifyThreshold) };
      if (chosen.identify?.warning) process.emitWarning(chosen.identify.warning, { code: 'FACEFLOW_THRESHOLD_FALLBACK' });
      return new FaceAnalysis(engine, gallery, file, given === undefined, config, chosen);
    } catch (e) {
      fromFile?.close();
      engine.dispose();
      throw e;
    }
  }

  /** The gallery enroll adds to and verify / whoIsIt read (save it with `gallery.save(file)`). */
  get gallery(): Gallery {
    return this.store;
  }

  /** The embedder's name and dimension (a gallery records the name and never mixes two). */
  get embedder(): EmbedderInfo {
    return this.engine.embedderInfo;
  }

  /** The thresholds verify and whoIsIt use (undefined: the model has none calibrated; pass one in the config). */
  get thresholds(): { verify: ChosenThreshold | undefined; identify: ChosenThreshold | undefined } {
    return { ...this.chosen };
  }

  /** Every face of the image with its embedding (face_recognition's face_encodings); no face: []. */
  async encode(image: ImageInput): Promise<EncodedFace[]> {
    const { faces } = await this.facesOf(image);
    return faces;
  }

  /**
   * Adds the face of each image to `name` (created if new; its earlier embeddings stay). All or nothing: an
   * image without exactly one face (see multipleFaces), or under minQuality, fails the call and adds none.
   * A file gallery is saved (atomically) before this returns.
   */
  async enroll(name: string, images: ImageInput | readonly ImageInput[]): Promise<EnrollAnswer> {
    this.assertLive();
    checkIdentityId(name);
    const list: readonly ImageInput[] = Array.isArray(images) ? images : [images as ImageInput];
    if (list.length === 0) throw new FaceflowError('INVALID_ARGUMENT', `enroll("${name}", ...) needs at least one image`);
    const embeddings: Float32Array[] = [];
    for (let i = 0; i < list.length; i++) {
      const where = describe(list[i]!, list.length > 1 ? i : undefined);
      const { image, faces } = await this.facesOf(list[i]!, where);
      const face = this.oneFace(faces, where, 'enroll');
      if (this.config.minQuality !== undefined) assertQuality(faceQuality(image, face), this.config.minQuality, `the face in ${where}`);
      embeddings.push(face.embedding);
    }
    this.store.add(name, embeddings);
    if (this.galleryFile !== undefined) await this.store.save(this.galleryFile);
    return { name, added: embeddings.length, embeddings: this.store.embeddingsOf(name).length };
  }

  /** Is the face of this image the enrolled `name`? (the notebook's verify, with a calibrated threshold) */
  async verify(image: ImageInput, name: string): Promise<VerifyAnswer> {
    this.assertLive();
    if (!this.store.has(name)) {
      throw new FaceflowError('NOT_FOUND', `no identity "${name}" in the gallery${this.galleryFile ? ` ${this.galleryFile}` : ''}: enroll it first (${this.store.size} enrolled)`);
    }
    const threshold = this.threshold('verify');
    const where = describe(image);
    const { faces } = await this.facesOf(image, where);
    const face = this.oneFace(faces, where, 'verify');
    const r = verifyEmbedding(face.embedding, name, this.store, threshold);
    return { name, match: r.match, distance: r.distance, threshold, box: face.box };
  }

  /** Who each face of the image is, or null (unknown); no face: [] (the notebook's who_is_it). */
  async whoIsIt(image: ImageInput): Promise<WhoIsItAnswer[]> {
    this.assertLive();
    if (this.store.size === 0) throw new FaceflowError('GALLERY_EMPTY', `the gallery${this.galleryFile ? ` ${this.galleryFile}` : ''} has no identities: enroll someone first`);
    const threshold = this.threshold('identify');
    const margin = this.config.margin;
    const { faces } = await this.facesOf(image);
    return faces.map((f) => {
      const r = identify(f.embedding, this.store, { threshold, ...(margin !== undefined ? { margin } : {}) });
      return { name: r.identity, distance: r.distance, nearest: r.nearest, secondDistance: r.secondDistance, reason: r.reason, threshold, box: f.box };
    });
  }

  /** Frees every model, and the gallery when this FaceAnalysis made it; each even if another throws. Idempotent. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await closeAll([['engine', () => this.engine.dispose()], this.ownsGallery ? ['gallery', () => this.store.close()] : undefined]);
  }

  private assertLive(): void {
    if (this.disposed) throw new FaceflowError('INTERNAL', 'FaceAnalysis used after dispose(): load another');
  }

  private threshold(purpose: Purpose): number {
    const t = this.chosen[purpose];
    if (!t) {
      const field = purpose === 'verify' ? 'verifyThreshold' : 'identifyThreshold';
      throw new FaceflowError('INVALID_CONFIG', `model "${this.engine.embedderInfo.name}" has no calibrated threshold: load with { ${field}: T }`);
    }
    return t.value;
  }

  private async decode(input: ImageInput, where: string): Promise<RgbImage> {
    // decodeImage names a path in its errors, and refuses a file by size before reading it
    if (typeof input === 'string' || input instanceof Uint8Array) return decodeImage(input, this.config.imageLimits);
    if (isRgbImage(input)) return imageFromRgb(input.data, input.width, input.height);
    throw new FaceflowError('INVALID_ARGUMENT', `${where} must be a file path, a Buffer of JPEG/PNG/WebP bytes, or a decoded { data, width, height } RGB image`);
  }

  private async facesOf(input: ImageInput, where = describe(input)): Promise<{ image: RgbImage; faces: EncodedFace[] }> {
    this.assertLive();
    const image = await this.decode(input, where);
    const options: RunOptions = this.config.wholeImageIsFace ? { wholeImageIsFace: true } : {};
    const [faces] = await this.engine.run([image], options);
    return { image, faces: faces!.map((f: DetectedFace) => ({ box: f.box, score: f.score, keypoints: f.keypoints, landmarks: f.landmarks, embedding: f.embedding! })) };
  }

  private oneFace(faces: EncodedFace[], where: string, verb: 'enroll' | 'verify'): EncodedFace {
    if (faces.length === 0) {
      const hint = this.config.wholeImageIsFace ? '' : ' (if the image is a tight crop of one face, load with { wholeImageIsFace: true })';
      throw new FaceflowError('NO_FACE', `no face found in ${where}${hint}`);
    }
    if (faces.length > 1 && this.config.multipleFaces !== 'largest') {
      throw new FaceflowError('INVALID_ARGUMENT', `${faces.length} faces found in ${where}, where ${verb} needs one: crop the image to the person, or load with { multipleFaces: 'largest' }`, {
        details: { faces: faces.length },
      });
    }
    return largestFace(faces)!;
  }
}
