/**
 * Privacy redaction: hide faces along their masks (not their boxes, which leak hair, ears and jaw lines, nor
 * blur whole frames). Pure functions over RgbImage and masks, so a pipeline stage (alerts' thumbnails) can call
 * them per frame; plus a small IoU tracker for video, so that a face the detector misses for a frame or two
 * stays hidden where it was.
 *
 * Which faces: all of them (`keep: 'none'`), or all but the enrolled ones (`keep: 'enrolled'`), decided with
 * `identify` against a gallery at a threshold; "unknown" and "ambiguous" are redacted (when in doubt, hide).
 */
import { FaceflowError } from '@faceflow/shared';
import { identify, type IdentifyOptions } from '../match/decide.js';
import type { Gallery } from '../match/gallery.js';
import { decideTrackIdentity, trackMean, type TrackGallery, type TrackRule } from '../match/track-identity.js';
import { iou, type Box, type Point, type RgbImage } from '../image/geometry.js';
import { type FaceMask, dilateMask, emptyMask, rasterizePolygon, unionMasks } from '../segment/mask.js';
import { landmarkPolygon } from '../segment/outline.js';

export type RedactStyle = 'blur' | 'pixelate' | 'fill';
export const REDACT_STYLES: readonly RedactStyle[] = ['blur', 'pixelate', 'fill'];

export interface RedactOptions {
  /** default 'blur' */
  style?: RedactStyle;
  /** grow each mask by this fraction of its own width before hiding (default 0.06) */
  dilate?: number;
  /** colour for 'fill' (default mid grey) */
  fill?: [number, number, number];
  /** blur radius, or pixel block size, as a fraction of the mask's width (default 0.5 blur, 0.34 pixelate: about 3 blocks across a face) */
  strength?: number;
}

/** Grows a mask by `fraction` of its width (at least 2 px), so edges and a slightly moved face stay covered. */
export function redactionMask(mask: FaceMask, fraction = 0.06): FaceMask {
  if (mask.w === 0) return mask;
  return dilateMask(mask, Math.max(2, Math.round(fraction * Math.max(mask.w, mask.h))));
}

/** A copy of `image` with every pixel under any of `masks` hidden. */
export function redactImage(image: RgbImage, masks: FaceMask[], options: RedactOptions = {}): RgbImage {
  const style = options.style ?? 'blur';
  if (!REDACT_STYLES.includes(style)) throw new FaceflowError('INVALID_ARGUMENT', `redaction style must be one of ${REDACT_STYLES.join(', ')}, got "${String(style)}"`);
  const out: RgbImage = { width: image.width, height: image.height, data: new Uint8Array(image.data) };
  for (const raw of masks) {
    if (raw.width !== image.width || raw.height !== image.height) {
      throw new FaceflowError('INVALID_ARGUMENT', `mask is for a ${raw.width}x${raw.height} frame, the image is ${image.width}x${image.height}`);
    }
    const m = redactionMask(raw, options.dilate ?? 0.06);
    if (m.w === 0) continue;
    const side = Math.max(m.w, m.h);
    if (style === 'fill') {
      const [r, g, b] = options.fill ?? [128, 128, 128];
      forEachMasked(m, (o) => {
        out.data[o] = r; out.data[o + 1] = g; out.data[o + 2] = b;
      }, image.width);
    } else if (style === 'pixelate') {
      const block = Math.max(4, Math.round(side * (options.strength ?? 0.34)));
      pixelate(out, m, block);
      // soften the block edges: a hard-edged 3x4 mosaic of light and dark still reads as a face to detectors
      blur(out, m, Math.max(2, Math.round(block / 2)));
    } else {
      const radius = Math.max(3, Math.round(side * (options.strength ?? 0.5)));
      blur(out, m, radius);
    }
  }
  return out;
}

export interface VerifiedRedaction {
  image: RgbImage;
  /** extra passes it took (0: the first redaction already hid every face from the detector) */
  passes: number;
  /** detections other than the kept faces still there after the last pass (0 unless `maxPasses` ran out) */
  residual: number;
}

export interface VerifyOptions {
  /** boxes of the faces left visible on purpose (the enrolled): the only detections verification leaves alone */
  kept?: Box[];
  /** extra passes at most (default 2) */
  maxPasses?: number;
}

/**
 * Redacts, then asks the detector whether it still finds a face that is not one of the `kept` ones: a hidden
 * head can still read as a face to a detector (a smooth skin-coloured blob under a fringe of hair), and
 * blurring one region can tip a near-threshold detection elsewhere in the frame over the threshold. Every such
 * detection is hidden too (the ellipse in its box, widened by 20%), with the masks widened and the blur made
 * stronger, up to `maxPasses` more times. When in doubt, hide: a detection on a shirt button gets blurred too.
 */
export async function redactVerified(
  image: RgbImage,
  masks: FaceMask[],
  detect: (image: RgbImage) => Promise<Array<{ box: Box }>>,
  options: RedactOptions = {},
  verify: VerifyOptions = {},
): Promise<VerifiedRedaction> {
  let out = redactImage(image, masks, options);
  // nothing hidden: the output is the input, whose detections were all decided (kept) by the caller
  if (masks.length === 0) return { image: out, passes: 0, residual: 0 };
  const kept = verify.kept ?? [];
  const maxPasses = verify.maxPasses ?? 2;
  const extra: FaceMask[] = [];
  let dilate = options.dilate ?? 0.06;
  let strength = options.strength;
  for (let pass = 0; ; pass++) {
    const hits = (await detect(out)).filter((d) => !kept.some((k) => iou(d.box, k) > 0.3 || centredInBox(d.box, k)));
    if (hits.length === 0) return { image: out, passes: pass, residual: 0 };
    if (pass >= maxPasses) return { image: out, passes: pass, residual: hits.length };
    for (const d of hits) extra.push(boxEllipse(d.box, 1.2, image.width, image.height));
    dilate += 0.1;
    strength = (strength ?? (options.style === 'pixelate' ? 0.34 : 0.5)) * 1.5;
    out = redactImage(image, [...masks, ...extra], { ...options, dilate, strength });
  }
}

function centredInBox(b: Box, k: Box): boolean {
  const cx = b.x + b.width / 2, cy = b.y + b.height / 2;
  return cx > k.x && cx < k.x + k.width && cy > k.y && cy < k.y + k.height;
}

function boxEllipse(b: Box, scale: number, width: number, height: number): FaceMask {
  const pts: Point[] = [];
  for (let k = 0; k < 32; k++) {
    const t = (2 * Math.PI * k) / 32;
    pts.push({ x: b.x + b.width / 2 + ((b.width * scale) / 2) * Math.cos(t), y: b.y + b.height / 2 + ((b.height * scale) / 2) * Math.sin(t) });
  }
  return rasterizePolygon(pts, width, height);
}

function forEachMasked(m: FaceMask, fn: (offset: number) => void, width: number): void {
  for (let j = 0; j < m.h; j++) {
    for (let i = 0; i < m.w; i++) if (m.data[j * m.w + i]) fn(((m.y + j) * width + m.x + i) * 3);
  }
}

/** Pixelates masked pixels: each block of the frame's grid gets the mean colour of its masked pixels. */
function pixelate(img: RgbImage, m: FaceMask, block: number): void {
  const bx0 = Math.floor(m.x / block), by0 = Math.floor(m.y / block);
  const bx1 = Math.floor((m.x + m.w - 1) / block), by1 = Math.floor((m.y + m.h - 1) / block);
  for (let by = by0; by <= by1; by++) {
    for (let bx = bx0; bx <= bx1; bx++) {
      let n = 0, r = 0, g = 0, b = 0;
      const ys = Math.max(m.y, by * block), ye = Math.min(m.y + m.h, (by + 1) * block);
      const xs = Math.max(m.x, bx * block), xe = Math.min(m.x + m.w, (bx + 1) * block);
      for (let y = ys; y < ye; y++) {
        for (let x = xs; x < xe; x++) {
          if (!m.data[(y - m.y) * m.w + (x - m.x)]) continue;
          const o = (y * img.width + x) * 3;
          r += img.data[o]!; g += img.data[o + 1]!; b += img.data[o + 2]!; n++;
        }
      }
      if (n === 0) continue;
      r = Math.round(r / n); g = Math.round(g / n); b = Math.round(b / n);
      for (let y = ys; y < ye; y++) {
        for (let x = xs; x < xe; x++) {
          if (!m.data[(y - m.y) * m.w + (x - m.x)]) continue;
          const o = (y * img.width + x) * 3;
          img.data[o] = r; img.data[o + 1] = g; img.data[o + 2] = b;
        }
      }
    }
  }
}

/**
 * Blurs masked pixels: three box blurs (close to a Gaussian of sigma ~ radius) over the mask's rectangle grown
 * by the radius, in which only the masked pixels' colours are averaged (a normalised, masked convolution), so
 * the background does not bleed in and nothing of the face's detail survives at the mask's edge.
 */
function blur(img: RgbImage, m: FaceMask, radius: number): void {
  const W = img.width, H = img.height;
  const x0 = Math.max(0, m.x - radius), y0 = Math.max(0, m.y - radius);
  const x1 = Math.min(W, m.x + m.w + radius), y1 = Math.min(H, m.y + m.h + radius);
  const w = x1 - x0, h = y1 - y0;
  // channels r, g, b, weight
  const buf = new Float32Array(w * h * 4);
  for (let j = 0; j < h; j++) {
    for (let i = 0; i < w; i++) {
      const px = x0 + i, py = y0 + j;
      const inside = px >= m.x && py >= m.y && px < m.x + m.w && py < m.y + m.h && m.data[(py - m.y) * m.w + (px - m.x)];
      if (!inside) continue;
      const o = (py * W + px) * 3;
      const k = (j * w + i) * 4;
      buf[k] = img.data[o]!; buf[k + 1] = img.data[o + 1]!; buf[k + 2] = img.data[o + 2]!; buf[k + 3] = 1;
    }
  }
  const r = Math.max(1, Math.round(radius / Math.sqrt(3)));
  const tmp = new Float32Array(buf.length);
  for (let pass = 0; pass < 3; pass++) {
    boxBlur1d(buf, tmp, w, h, r, true);
    boxBlur1d(tmp, buf, w, h, r, false);
  }
  forEachMasked(m, (o) => {
    const p = o / 3;
    const px = p % W, py = (p - px) / W;
    const k = ((py - y0) * w + (px - x0)) * 4;
    const wt = buf[k + 3]! || 1;
    img.data[o] = Math.round(buf[k]! / wt);
    img.data[o + 1] = Math.round(buf[k + 1]! / wt);
    img.data[o + 2] = Math.round(buf[k + 2]! / wt);
  }, W);
}

/** One running-sum box blur of radius r along rows (horizontal) or columns, 4 channels. */
function boxBlur1d(src: Float32Array, dst: Float32Array, w: number, h: number, r: number, horizontal: boolean): void {
  const lines = horizontal ? h : w;
  const len = horizontal ? w : h;
  const step = horizontal ? 4 : w * 4;
  const acc = [0, 0, 0, 0];
  for (let l = 0; l < lines; l++) {
    const base = horizontal ? l * w * 4 : l * 4;
    acc[0] = acc[1] = acc[2] = acc[3] = 0;
    for (let t = 0; t <= Math.min(r, len - 1); t++) for (let c = 0; c < 4; c++) acc[c]! += src[base + t * step + c]!;
    for (let t = 0; t < len; t++) {
      for (let c = 0; c < 4; c++) dst[base + t * step + c] = acc[c]!;
      const add = t + r + 1, sub = t - r;
      if (add < len) for (let c = 0; c < 4; c++) acc[c]! += src[base + add * step + c]!;
      if (sub >= 0) for (let c = 0; c < 4; c++) acc[c]! -= src[base + sub * step + c]!;
    }
  }
}

// --------------------------------------------------------------------------------------- which faces

export interface KeepOptions {
  /** 'enrolled': leave faces identified in the gallery visible; 'none': hide every face (default) */
  keep?: 'enrolled' | 'none';
  gallery?: Gallery;
  /** identify's threshold and margin */
  identify?: IdentifyOptions;
}

export interface FaceDecision {
  /** the identity that keeps this face visible, or null when it is hidden */
  identity: string | null;
  hide: boolean;
  reason: 'all' | 'match' | 'above-threshold' | 'ambiguous' | 'no-embedding' | 'empty-gallery';
}

/** Decides per face whether it is hidden. A face without an embedding is hidden when keeping the enrolled. */
export function decideRedaction(faces: Array<{ embedding?: Float32Array }>, options: KeepOptions = {}): FaceDecision[] {
  const keep = options.keep ?? 'none';
  if (keep === 'none') return faces.map(() => ({ identity: null, hide: true, reason: 'all' }));
  if (keep !== 'enrolled') throw new FaceflowError('INVALID_ARGUMENT', `keep must be 'enrolled' or 'none', got "${String(keep)}"`);
  if (!options.gallery || !options.identify) throw new FaceflowError('INVALID_ARGUMENT', "keep: 'enrolled' needs a gallery and identify options (threshold)");
  const gallery = options.gallery;
  if (gallery.size === 0) return faces.map(() => ({ identity: null, hide: true, reason: 'empty-gallery' }));
  return faces.map((f) => {
    if (!f.embedding) return { identity: null, hide: true, reason: 'no-embedding' };
    const r = identify(f.embedding, gallery, options.identify!);
    return { identity: r.identity, hide: r.identity === null, reason: r.reason };
  });
}

// ------------------------------------------------------------------------------------------ tracking

export interface TrackedFace {
  box: Box;
  mask: FaceMask;
  /** this frame's decision for the face (identity null = not enrolled) */
  identity: string | null;
  /** the face's embedding, for a tracker that decides a track from its mean embedding (`decide`) */
  embedding?: Float32Array;
}

interface Track {
  id: number;
  box: Box;
  mask: FaceMask;
  missed: number;
  /** per identity, the frames it was named in */
  votes: Map<string | null, number>;
  frames: number;
  /** sum of the track's embeddings (when faces carry them) */
  sum: Float32Array | null;
}

export interface TrackerOptions {
  /** IoU of boxes above which a detection continues a track (default 0.3) */
  iou?: number;
  /** frames a track's last mask stays hidden after its face is no longer detected (default 2) */
  hold?: number;
  /** extra dilation of a held mask, per missed frame, as a fraction of its width (default 0.1) */
  holdDilate?: number;
  /** a track is shown only after its identity was named in at least this many frames (default 2) */
  minMatches?: number;
  /** ...and in more than this share of the track's frames (default 0.5: a majority) */
  minShare?: number;
  /**
   * Decide a track from the mean of its faces' embeddings (L2-normalised) instead of per-frame votes: averaging
   * over a track's frames cancels much of the pose and blur noise of single frames, so that the enrolled are
   * named on tracks where single frames rarely pass a strict threshold, and a strict threshold can be used.
   * Returns the identity or null. minMatches and minShare do not apply then.
   */
  decide?: (mean: Float32Array) => string | null;
  /**
   * Decide a track by the engine's one track-identity rule (match/track-identity.ts, the matcher's too): its
   * mean embedding identified against `gallery` at `threshold` and `margin`. Takes the place of `decide`.
   */
  match?: TrackRule & { gallery: TrackGallery };
}

export interface TrackerFrameResult {
  /** masks to hide in this frame: the faces decided hidden, plus held masks of recently missed ones */
  hide: FaceMask[];
  /** per face of this frame, its track id and whether it is hidden */
  faces: Array<{ track: number; hide: boolean; identity: string | null }>;
  held: number;
}

/** What one frame adds to the tracks, before any decision: for the two-pass (whole-track) redaction of files. */
export interface TrackObservation {
  /** per face of this frame: its track, and whether the track starts here */
  faces: Array<{ track: number; fresh: boolean }>;
  /** tracks whose face was not detected in this frame but which are still held: their last mask, widened */
  held: Array<{ track: number; mask: FaceMask }>;
}

/**
 * Greedy IoU tracker for redaction. Identity is decided per track (see trackIdentity), so a single frame that
 * names a stranger as someone enrolled does not unveil them. Two ways to use it:
 * - online, `update()`: each frame is decided from the track's frames so far; a track not yet decided as
 *   enrolled is hidden (for a stream, where the future is not known);
 * - whole-track, `observe()` every frame first and then `identityOf(track)`: each track is decided once from
 *   all its frames (for a file: a stranger the matcher names as someone enrolled in the first frames of his
 *   track, as on the sitcom clip in BENCHMARKS.md, stays hidden, and an enrolled person is visible from the
 *   track's first frame, not from its second named one).
 */
export class RedactionTracker {
  private tracks: Track[] = [];
  /** every track's votes, kept after it ends (a few numbers per track), for identityOf */
  private readonly history = new Map<number, Track>();
  private nextId = 1;
  private readonly cfg: Required<Omit<TrackerOptions, 'decide' | 'match'>>;
  private readonly decide: ((mean: Float32Array) => string | null) | undefined;
  /** decisions of `decide` by track, dropped when the track changes */
  private readonly decided = new Map<number, string | null>();

  constructor(options: TrackerOptions = {}) {
    this.cfg = {
      iou: options.iou ?? 0.3,
      hold: options.hold ?? 2,
      holdDilate: options.holdDilate ?? 0.1,
      minMatches: options.minMatches ?? 2,
      minShare: options.minShare ?? 0.5,
    };
    const match = options.match;
    this.decide = match ? (mean) => decideTrackIdentity(mean, match.gallery, match).identity : options.decide;
  }

  /** The track's identity from its frames so far (after the last observe: all of them), or null (hidden). */
  identityOf(track: number): string | null {
    const t = this.history.get(track);
    if (!t) return null;
    if (!this.decide) return trackIdentity(t, this.cfg.minMatches, this.cfg.minShare);
    if (this.decided.has(track)) return this.decided.get(track)!;
    // the track's mean embedding (the track-identity rule's); a track whose faces cancel out has none: hidden
    const mean = t.sum ? trackMean(t.sum) : null;
    const identity = mean ? this.decide(mean) : null;
    this.decided.set(track, identity);
    return identity;
  }

  /** The mask a missed track is held with, `missed` frames away from its last (or, backwards, first) detection. */
  heldMask(mask: FaceMask, missed: number): FaceMask {
    return dilateMask(mask, Math.max(2, Math.round(this.cfg.holdDilate * missed * mask.w)));
  }

  /**
   * Adds one frame. `cut`: the frame starts a new shot (see shot-cut.ts): every track ends there, and nothing
   * is held over from the last shot, so a track never runs from one person's shot into another's face at the
   * same place.
   */
  observe(faces: TrackedFace[], frame: { cut?: boolean } = {}): TrackObservation {
    if (frame.cut) {
      for (const t of this.tracks) forget(t);
      this.tracks = [];
    }
    const pairs: Array<{ t: number; f: number; v: number }> = [];
    this.tracks.forEach((t, ti) => faces.forEach((f, fi) => {
      const v = iou(t.box, f.box);
      if (v > this.cfg.iou) pairs.push({ t: ti, f: fi, v });
    }));
    pairs.sort((a, b) => b.v - a.v);
    const trackOf = new Array<number>(faces.length).fill(-1);
    const usedT = new Set<number>();
    for (const p of pairs) {
      if (usedT.has(p.t) || trackOf[p.f] !== -1) continue;
      usedT.add(p.t);
      trackOf[p.f] = p.t;
    }
    const result: TrackObservation = { faces: [], held: [] };
    const next: Track[] = [];
    faces.forEach((f, fi) => {
      let t: Track;
      const fresh = trackOf[fi]! < 0;
      if (!fresh) {
        t = this.tracks[trackOf[fi]!]!;
        t.box = f.box;
        t.mask = f.mask;
        t.missed = 0;
      } else {
        t = { id: this.nextId++, box: f.box, mask: f.mask, missed: 0, votes: new Map(), frames: 0, sum: null };
        this.history.set(t.id, t);
      }
      t.frames++;
      t.votes.set(f.identity, (t.votes.get(f.identity) ?? 0) + 1);
      if (f.embedding) {
        if (!t.sum) t.sum = new Float32Array(f.embedding.length);
        if (t.sum.length === f.embedding.length) for (let k = 0; k < t.sum.length; k++) t.sum[k]! += f.embedding[k]!;
      }
      this.decided.delete(t.id);
      result.faces.push({ track: t.id, fresh });
      next.push(t);
    });
    this.tracks.forEach((t, ti) => {
      if (usedT.has(ti)) return;
      t.missed++;
      if (t.missed > this.cfg.hold) return forget(t);
      next.push(t);
      result.held.push({ track: t.id, mask: this.heldMask(t.mask, t.missed) });
    });
    this.tracks = next;
    return result;
  }

  update(faces: TrackedFace[], frame: { cut?: boolean } = {}): TrackerFrameResult {
    const seen = this.observe(faces, frame);
    const result: TrackerFrameResult = { hide: [], faces: [], held: 0 };
    seen.faces.forEach(({ track }, fi) => {
      const identity = this.identityOf(track);
      const hide = identity === null;
      if (hide) result.hide.push(faces[fi]!.mask);
      result.faces.push({ track, hide, identity });
    });
    for (const h of seen.held) {
      if (this.identityOf(h.track) !== null) continue;
      result.hide.push(h.mask);
      result.held++;
    }
    return result;
  }
}

/** An ended track keeps only what identityOf needs (its votes and embedding sum), not its last mask. */
function forget(t: Track): void {
  t.mask = emptyMask(t.mask.width, t.mask.height);
}

/**
 * The identity named most often in the track, when it was named in at least `minMatches` frames and in more
 * than `minShare` of them; else null (hidden). A lower share shows more of the enrolled (whom a strict
 * per-frame threshold often fails to name: pose, blur, one reference photo) and also more strangers who look
 * like them: on the sitcom clip of BENCHMARKS.md, 0.3 unveiled a son whose distance to his enrolled father
 * hovers at the threshold. The default keeps privacy first.
 */
function trackIdentity(t: Pick<Track, 'votes' | 'frames'>, minMatches: number, minShare: number): string | null {
  let best: string | null = null;
  let bestVotes = 0;
  for (const [name, votes] of t.votes) {
    if (name !== null && votes > bestVotes) {
      best = name;
      bestVotes = votes;
    }
  }
  return best !== null && bestVotes >= minMatches && bestVotes > minShare * t.frames ? best : null;
}

/**
 * Everything of a face that redaction should cover: its segmentation mask (when there is one), the outline of
 * its 68 landmarks with the forehead, and the ellipse inscribed in its detector box (10% taller), united.
 * Each covers for the others' failures (a mesh on a profile, landmarks on a tiny face).
 */
export function faceRedactionMask(
  frame: { width: number; height: number },
  face: { box: Box; landmarks: Point[] },
  segmentMask?: FaceMask,
): FaceMask {
  const { width, height } = frame;
  const b = face.box;
  const ellipse: Point[] = [];
  for (let k = 0; k < 32; k++) {
    const t = (2 * Math.PI * k) / 32;
    ellipse.push({ x: b.x + b.width / 2 + (b.width / 2) * Math.cos(t), y: b.y + b.height / 2 + (b.height / 2) * 1.1 * Math.sin(t) });
  }
  const parts = [rasterizePolygon(ellipse, width, height)];
  if (segmentMask) parts.push(segmentMask);
  if (face.landmarks.length === 68) parts.push(rasterizePolygon(landmarkPolygon(face.landmarks), width, height));
  return unionMasks(parts, width, height);
}
