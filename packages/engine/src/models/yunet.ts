/**
 * Face detector: YuNet 2023mar (Wu, Peng, Yu 2023, "YuNet: A Tiny Millisecond-level Face Detector"; OpenCV
 * Zoo's face_detection_yunet_2023mar.onnx, fp32), on ONNX Runtime (issue 11). Anchor-free, one prior per
 * cell at strides 8, 16 and 32; per cell `cls`, `obj` (sigmoid outputs), `bbox` (dx, dy, log w, log h in
 * stride units) and `kps` (5 points as offsets in stride units). Decoding, padding and NMS as OpenCV's
 * FaceDetectorYN (modules/objdetect/src/face_detect.cpp) and opencv_zoo's yunet.py:
 *   score = sqrt(clamp(cls) * clamp(obj)); cx = (col + dx) * s; w = exp(log w) * s; kp = (col + kx) * s.
 * The input is the frame (scaled, see below) in BGR 0..255, NCHW, padded right and bottom with zeros to a
 * multiple of 32. The graph's batch is fixed at 1 (constant reshapes), so each window is one call.
 * Keypoints: right eye, left eye, nose tip, right mouth corner, left mouth corner (subject's sides, as
 * BlazeFace's first four are).
 *
 * Scale: the frame is scaled by min(maxUpscale, faceInputPx / minFaceSize), so a `minFaceSize` face measures
 * about `faceInputPx` input pixels, and never beyond `maxInputSide` on its long side, nor shrunk below
 * `minInputSide` (a small photo is cheap at its own size, and halving a 160 px photo of one face lost 3 of
 * 23 such faces in the CLI's enrol/identify test where BlazeFace, which always enlarges to 192 px, found them). Region windows (faces
 * of an earlier frame) are squares of `regionScale` times the face, scaled the same way.
 */
import sharp from 'sharp';
import { FaceflowError } from '@faceflow/shared';
import { OnnxModel, type OnnxSessionOptions } from '../runtime/onnx.js';
import { type Box, type Point, type RgbImage, nms } from '../image/geometry.js';
import type { Detection } from './detector.js';

export interface YuNetConfig extends OnnxSessionOptions {
  /** the fixed ONNX file (registry 'yunet-2023mar') */
  modelPath: string;
  /** registry name, for messages (default 'yunet-2023mar') */
  name?: string;
  /** score above which a cell is a face (default 0.6: OpenCV's sample uses 0.9, which drops small faces) */
  scoreThreshold?: number;
  /** IoU above which two candidates are one face (default 0.3, OpenCV's) */
  nmsIou?: number;
  /** smallest face side in frame pixels to find (default 40); drives the input scale */
  minFaceSize?: number;
  /** input pixels a minFaceSize face should measure (default 20) */
  faceInputPx?: number;
  /** never enlarge the frame more than this (default 1: YuNet's stride-8 head is made for small faces, and the check found upscaling did not pay) */
  maxUpscale?: number;
  /** long side of the model input at most (default 1920) */
  maxInputSide?: number;
  /** never shrink a window whose long side is above this below it, nor a smaller one at all (default 320, the input side of OpenCV's YuNet samples) */
  minInputSide?: number;
  /** side of a region window as a multiple of the face it follows (default 3, as BlazeFace's) */
  regionScale?: number;
  /** score threshold in region windows (default 0.5) */
  regionScoreThreshold?: number;
}

const STRIDES = [8, 16, 32] as const;
const DIVISOR = 32;

interface Window {
  x0: number;
  y0: number;
  /** image px per input px */
  scale: number;
  data: Float32Array;
  width: number;
  height: number;
}

export class YuNetDetector {
  private constructor(
    private model: OnnxModel | undefined,
    private readonly cfg: Required<Omit<YuNetConfig, 'modelPath' | 'name' | 'provider' | 'threads'>>,
  ) {}

  static async load(config: YuNetConfig): Promise<YuNetDetector> {
    const cfg = {
      scoreThreshold: config.scoreThreshold ?? 0.6,
      nmsIou: config.nmsIou ?? 0.3,
      minFaceSize: config.minFaceSize ?? 40,
      faceInputPx: config.faceInputPx ?? 20,
      maxUpscale: config.maxUpscale ?? 1,
      maxInputSide: config.maxInputSide ?? 1920,
      minInputSide: config.minInputSide ?? 320,
      regionScale: config.regionScale ?? 3,
      regionScoreThreshold: config.regionScoreThreshold ?? 0.5,
    };
    for (const k of ['scoreThreshold', 'regionScoreThreshold', 'nmsIou'] as const) {
      if (!(cfg[k] > 0 && cfg[k] < 1)) throw new FaceflowError('INVALID_CONFIG', `detector.${k} must be in (0,1), got ${cfg[k]}`);
    }
    if (!(cfg.minFaceSize >= 8)) throw new FaceflowError('INVALID_CONFIG', `detector.minFaceSize must be >= 8, got ${cfg.minFaceSize}`);
    if (!(cfg.faceInputPx >= 8 && cfg.faceInputPx <= 256)) throw new FaceflowError('INVALID_CONFIG', `detector.faceInputPx must be in [8, 256], got ${cfg.faceInputPx}`);
    if (!(cfg.maxUpscale >= 1 && cfg.maxUpscale <= 4)) throw new FaceflowError('INVALID_CONFIG', `detector.maxUpscale must be in [1, 4], got ${cfg.maxUpscale}`);
    if (!(cfg.maxInputSide >= 64)) throw new FaceflowError('INVALID_CONFIG', `detector.maxInputSide must be >= 64, got ${cfg.maxInputSide}`);
    if (!(cfg.minInputSide >= 32 && cfg.minInputSide <= cfg.maxInputSide)) throw new FaceflowError('INVALID_CONFIG', `detector.minInputSide must be in [32, maxInputSide], got ${cfg.minInputSide}`);
    if (!(cfg.regionScale >= 1.5 && cfg.regionScale <= 8)) throw new FaceflowError('INVALID_CONFIG', `detector.regionScale must be in [1.5, 8], got ${cfg.regionScale}`);
    const opts: OnnxSessionOptions = {
      ...(config.provider ? { provider: config.provider } : {}),
      ...(config.threads !== undefined ? { threads: config.threads } : {}),
    };
    const model = await OnnxModel.load(config.modelPath, config.name ?? 'yunet-2023mar', { channels: 3, symbolicSpatial: true }, opts);
    return new YuNetDetector(model, cfg);
  }

  /**
   * Faces of each image, best score first; `regions[i]` restricts image i to windows around those boxes
   * (same contract as BlazeFaceDetector.run).
   */
  async run(images: RgbImage[], regions?: ReadonlyArray<readonly Box[] | undefined>, override: { scoreThreshold?: number } = {}): Promise<Detection[][]> {
    if (!this.model) throw new FaceflowError('INTERNAL', 'detector used after dispose()');
    const threshold = override.scoreThreshold ?? this.cfg.scoreThreshold;
    if (!(threshold > 0 && threshold < 1)) throw new FaceflowError('INVALID_ARGUMENT', `detector score threshold must be in (0,1), got ${threshold}`);
    const out: Detection[][] = [];
    for (let i = 0; i < images.length; i++) {
      const img = images[i]!;
      const r = regions?.[i];
      const candidates: Detection[] = [];
      if (r) {
        for (const b of r) {
          const face = Math.max(b.width, b.height);
          if (!(face > 0) || !Number.isFinite(b.x) || !Number.isFinite(b.y)) continue;
          const side = face * this.cfg.regionScale;
          const w = await this.window(img, b.x + b.width / 2 - side / 2, b.y + b.height / 2 - side / 2, side, side);
          if (w) candidates.push(...(await this.detect(w, this.cfg.regionScoreThreshold)));
        }
      } else {
        const w = await this.window(img, 0, 0, img.width, img.height);
        if (w) candidates.push(...(await this.detect(w, threshold)));
      }
      out.push(
        nms(candidates, this.cfg.nmsIou)
          .filter((d) => d.box.width >= 4 && d.box.x + d.box.width > 0 && d.box.y + d.box.height > 0 && d.box.x < img.width && d.box.y < img.height)
          .sort((a, b) => b.score - a.score),
      );
    }
    return out;
  }

  /** The input for the part [x0, x0+w) x [y0, y0+h) of the image (clipped to it), scaled, BGR, padded. */
  private async window(img: RgbImage, x0: number, y0: number, w: number, h: number): Promise<Window | undefined> {
    const left = Math.max(0, Math.floor(x0));
    const top = Math.max(0, Math.floor(y0));
    const right = Math.min(img.width, Math.ceil(x0 + w));
    const bottom = Math.min(img.height, Math.ceil(y0 + h));
    const cw = right - left;
    const ch = bottom - top;
    if (cw < 8 || ch < 8) return undefined;
    let s = Math.min(this.cfg.maxUpscale, this.cfg.faceInputPx / this.cfg.minFaceSize);
    s = Math.max(s, Math.min(1, this.cfg.minInputSide / Math.max(cw, ch)));
    s = Math.min(s, this.cfg.maxInputSide / Math.max(cw, ch));
    const outW = Math.max(1, Math.round(cw * s));
    const outH = Math.max(1, Math.round(ch * s));
    let pixels: Buffer;
    if (outW === img.width && outH === img.height && cw === img.width && ch === img.height) {
      pixels = Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength);
    } else {
      // sharp filters before it subsamples, so a large downscale does not alias
      pixels = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
        .extract({ left, top, width: cw, height: ch })
        .resize(outW, outH, { fit: 'fill', kernel: 'linear' })
        .raw()
        .toBuffer();
    }
    const padW = Math.ceil(outW / DIVISOR) * DIVISOR;
    const padH = Math.ceil(outH / DIVISOR) * DIVISOR;
    const plane = padW * padH;
    const data = new Float32Array(3 * plane);
    for (let y = 0; y < outH; y++) {
      for (let x = 0; x < outW; x++) {
        const src = (y * outW + x) * 3;
        const dst = y * padW + x;
        data[dst] = pixels[src + 2]!; // B
        data[plane + dst] = pixels[src + 1]!; // G
        data[2 * plane + dst] = pixels[src]!; // R
      }
    }
    return { x0: left, y0: top, scale: cw / outW, data, width: padW, height: padH };
  }

  private async detect(w: Window, threshold: number): Promise<Detection[]> {
    const out = await this.model!.run(w.data, [1, 3, w.height, w.width]);
    const found: Detection[] = [];
    const clamp = (v: number) => Math.min(1, Math.max(0, v));
    for (const s of STRIDES) {
      const cols = w.width / s;
      const rows = w.height / s;
      const cls = out[`cls_${s}`]?.data;
      const obj = out[`obj_${s}`]?.data;
      const bbox = out[`bbox_${s}`]?.data;
      const kps = out[`kps_${s}`]?.data;
      if (!cls || !obj || !bbox || !kps || cls.length !== rows * cols) {
        throw new FaceflowError('MODEL_LOAD', `YuNet model ${this.model!.path} lacks the cls/obj/bbox/kps outputs of stride ${s} for a ${w.width}x${w.height} input`);
      }
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) {
          const i = r * cols + c;
          const score = Math.sqrt(clamp(cls[i]!) * clamp(obj[i]!));
          if (score < threshold) continue;
          const cx = (c + bbox[4 * i]!) * s;
          const cy = (r + bbox[4 * i + 1]!) * s;
          const bw = Math.exp(bbox[4 * i + 2]!) * s;
          const bh = Math.exp(bbox[4 * i + 3]!) * s;
          const keypoints: Point[] = [];
          for (let k = 0; k < 5; k++) {
            keypoints.push({ x: w.x0 + (kps[10 * i + 2 * k]! + c) * s * w.scale, y: w.y0 + (kps[10 * i + 2 * k + 1]! + r) * s * w.scale });
          }
          found.push({
            box: { x: w.x0 + (cx - bw / 2) * w.scale, y: w.y0 + (cy - bh / 2) * w.scale, width: bw * w.scale, height: bh * w.scale },
            score,
            keypoints,
          });
        }
      }
    }
    return found;
  }

  async dispose(): Promise<void> {
    const m = this.model;
    this.model = undefined;
    await m?.dispose();
  }
}
