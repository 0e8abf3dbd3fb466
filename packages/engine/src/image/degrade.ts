/**
 * Fixed image degradations that mimic CCTV: grayscale (night-time / infrared footage), lowres (a face far from
 * the lens: shrunk until the face is N px across, area average, and scaled back up, bilinear), blur (focus and
 * motion, Gaussian), brightness (exposure and gain), jpeg (a low-bitrate stream's artefacts). The image layer
 * holds them because both the training augmentations (train/augment.ts, random, on aligned chips) and the
 * evaluations (`faceflow eval lfw --degrade`, eval/lfw-run.ts, fixed, on whole images) apply them (issue 13).
 * Deterministic: pure integer/float code, plus libjpeg through sharp for the JPEG round trip.
 */
import sharp from 'sharp';
import { FaceflowError } from '@faceflow/shared';
import type { RgbImage } from './geometry.js';
/** A fixed degradation step. */
export type DegradeOp =
  | { op: 'grayscale' }
  | { op: 'lowres'; face: number }
  | { op: 'blur'; sigma: number }
  | { op: 'brightness'; gain: number; offset: number }
  | { op: 'jpeg'; quality: number };

/**
 * A fixed degradation: comma-separated `grayscale`, `lowres<N>` (face N px across), `blur<sigma>`,
 * `brightness<gain>`, `jpeg<quality>`, applied in the order given. E.g. "grayscale,lowres32".
 */
export function parseDegrade(spec: string): DegradeOp[] {
  const out: DegradeOp[] = [];
  for (const raw of spec.split(',').map((s) => s.trim()).filter((s) => s.length > 0)) {
    const m = /^([a-z]+)([0-9.]*)$/.exec(raw);
    const value = m && m[2] ? Number(m[2]) : undefined;
    const bad = (why: string): never => {
      throw new FaceflowError('INVALID_ARGUMENT', `degradation "${raw}": ${why} (e.g. grayscale,lowres32,blur1.5,brightness0.6,jpeg20)`);
    };
    if (!m) bad('not understood');
    if (value !== undefined && !Number.isFinite(value)) bad('its number is not a number');
    switch (m![1]) {
      case 'grayscale':
      case 'gray':
        if (value !== undefined) bad('grayscale takes no number');
        out.push({ op: 'grayscale' });
        break;
      case 'lowres':
        if (value === undefined || value < 4 || value > 1000) bad('lowres needs a face size in pixels in [4, 1000]');
        out.push({ op: 'lowres', face: value! });
        break;
      case 'blur':
        if (value === undefined || value <= 0 || value > 20) bad('blur needs a sigma in (0, 20]');
        out.push({ op: 'blur', sigma: value! });
        break;
      case 'brightness':
        if (value === undefined || value <= 0 || value > 5) bad('brightness needs a gain in (0, 5]');
        out.push({ op: 'brightness', gain: value!, offset: 0 });
        break;
      case 'jpeg':
        if (value === undefined || value < 1 || value > 100 || !Number.isInteger(value)) bad('jpeg needs an integer quality in [1, 100]');
        out.push({ op: 'jpeg', quality: value! });
        break;
      default:
        bad('unknown; choose from grayscale, lowres<N>, blur<S>, brightness<G>, jpeg<Q>');
    }
  }
  return out;
}

export function degradeLabel(ops: DegradeOp[]): string {
  return ops
    .map((o) => (o.op === 'grayscale' ? 'grayscale' : o.op === 'lowres' ? `lowres${o.face}` : o.op === 'blur' ? `blur${o.sigma}` : o.op === 'brightness' ? `brightness${o.gain}` : `jpeg${o.quality}`))
    .join(',');
}

const clamp8 = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

export function toGrayscale(px: Uint8Array): Uint8Array {
  const out = new Uint8Array(px.length);
  for (let i = 0; i < px.length; i += 3) {
    const y = clamp8(0.299 * px[i]! + 0.587 * px[i + 1]! + 0.114 * px[i + 2]!);
    out[i] = y;
    out[i + 1] = y;
    out[i + 2] = y;
  }
  return out;
}

export function adjustBrightness(px: Uint8Array, gain: number, offset: number): Uint8Array {
  const out = new Uint8Array(px.length);
  for (let i = 0; i < px.length; i++) out[i] = clamp8(px[i]! * gain + offset);
  return out;
}

/** 1-D resampling weights: box (area) filter when shrinking, linear interpolation when enlarging. */
function weights1d(src: number, dst: number): Array<{ start: number; w: number[] }> {
  const scale = dst / src;
  const rows: Array<{ start: number; w: number[] }> = [];
  for (let o = 0; o < dst; o++) {
    if (scale < 1) {
      const a = o / scale;
      const b = (o + 1) / scale;
      const start = Math.floor(a);
      const w: number[] = [];
      for (let i = start; i < Math.min(src, Math.ceil(b)); i++) w.push(Math.min(b, i + 1) - Math.max(a, i));
      const s = w.reduce((x, y) => x + y, 0);
      rows.push({ start, w: w.map((v) => v / s) });
    } else {
      const c = Math.min(src - 1, Math.max(0, (o + 0.5) / scale - 0.5));
      const i0 = Math.floor(c);
      const f = c - i0;
      rows.push(i0 + 1 < src ? { start: i0, w: [1 - f, f] } : { start: i0, w: [1] });
    }
  }
  return rows;
}

/** Resizes RGB pixels (area average down, bilinear up), separably. */
export function resizeRgb(px: Uint8Array, width: number, height: number, toWidth: number, toHeight: number): Uint8Array {
  const wx = weights1d(width, toWidth);
  const wy = weights1d(height, toHeight);
  const tmp = new Float32Array(toWidth * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < toWidth; x++) {
      const { start, w } = wx[x]!;
      let r = 0, g = 0, b = 0;
      for (let k = 0; k < w.length; k++) {
        const s = (y * width + start + k) * 3;
        r += w[k]! * px[s]!;
        g += w[k]! * px[s + 1]!;
        b += w[k]! * px[s + 2]!;
      }
      const d = (y * toWidth + x) * 3;
      tmp[d] = r;
      tmp[d + 1] = g;
      tmp[d + 2] = b;
    }
  }
  const out = new Uint8Array(toWidth * toHeight * 3);
  for (let y = 0; y < toHeight; y++) {
    const { start, w } = wy[y]!;
    for (let x = 0; x < toWidth; x++) {
      let r = 0, g = 0, b = 0;
      for (let k = 0; k < w.length; k++) {
        const s = ((start + k) * toWidth + x) * 3;
        r += w[k]! * tmp[s]!;
        g += w[k]! * tmp[s + 1]!;
        b += w[k]! * tmp[s + 2]!;
      }
      const d = (y * toWidth + x) * 3;
      out[d] = clamp8(r);
      out[d + 1] = clamp8(g);
      out[d + 2] = clamp8(b);
    }
  }
  return out;
}

/** Shrinks by `scale` (< 1) and enlarges back to the original size. */
export function lowResolution(px: Uint8Array, width: number, height: number, scale: number): Uint8Array {
  if (!(scale > 0) || scale >= 1) return px.slice();
  const w = Math.max(2, Math.round(width * scale));
  const h = Math.max(2, Math.round(height * scale));
  return resizeRgb(resizeRgb(px, width, height, w, h), w, h, width, height);
}

export function gaussianBlur(px: Uint8Array, width: number, height: number, sigma: number): Uint8Array {
  const r = Math.max(1, Math.ceil(3 * sigma));
  const k: number[] = [];
  for (let i = -r; i <= r; i++) k.push(Math.exp(-(i * i) / (2 * sigma * sigma)));
  const ks = k.reduce((a, b) => a + b, 0);
  const kn = k.map((v) => v / ks);
  const tmp = new Float32Array(px.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let i = -r; i <= r; i++) {
          const xx = Math.min(width - 1, Math.max(0, x + i));
          s += kn[i + r]! * px[(y * width + xx) * 3 + c]!;
        }
        tmp[(y * width + x) * 3 + c] = s;
      }
    }
  }
  const out = new Uint8Array(px.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let i = -r; i <= r; i++) {
          const yy = Math.min(height - 1, Math.max(0, y + i));
          s += kn[i + r]! * tmp[(yy * width + x) * 3 + c]!;
        }
        out[(y * width + x) * 3 + c] = clamp8(s);
      }
    }
  }
  return out;
}

export async function jpegRoundTrip(px: Uint8Array, width: number, height: number, quality: number): Promise<Uint8Array> {
  const raw = { width, height, channels: 3 as const };
  const jpg = await sharp(Buffer.from(px.buffer, px.byteOffset, px.byteLength), { raw }).jpeg({ quality: Math.round(quality) }).toBuffer();
  const { data } = await sharp(jpg).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (data.length !== px.length) {
    // a grey JPEG decodes to one channel: promote it
    const out = new Uint8Array(px.length);
    for (let i = 0; i < width * height; i++) out.fill(data[i]!, i * 3, i * 3 + 3);
    return out;
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Applies fixed degradation steps, in order, to RGB pixels whose face is `faceSize` pixels across
 * (used by `lowres`; the other steps do not need it).
 */
export async function degradePixels(px: Uint8Array, width: number, height: number, ops: DegradeOp[], faceSize: number): Promise<Uint8Array> {
  let out = px;
  for (const o of ops) {
    if (o.op === 'grayscale') out = toGrayscale(out);
    else if (o.op === 'lowres') out = lowResolution(out, width, height, o.face / faceSize);
    else if (o.op === 'blur') out = gaussianBlur(out, width, height, o.sigma);
    else if (o.op === 'brightness') out = adjustBrightness(out, o.gain, o.offset);
    else out = await jpegRoundTrip(out, width, height, o.quality);
  }
  return out === px ? px.slice() : out;
}

/** A degraded copy of a whole image whose face is about `faceSize` pixels across. */
export async function degradeImage(image: RgbImage, ops: DegradeOp[], faceSize: number): Promise<RgbImage> {
  return { width: image.width, height: image.height, data: await degradePixels(image.data, image.width, image.height, ops, faceSize) };
}
