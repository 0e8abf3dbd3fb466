/**
 * Redaction of whole images and videos (issue 13 step 2: the algorithm out of the CLI). It knows nothing of
 * ffmpeg or files: a video is an async iterable of RGB frames and a sink for the redacted ones, so that the
 * CLI (through @faceflow/shared/media) or anyone else supplies the decoding and encoding.
 *
 * A video is redacted in two passes (a file's future is known): the first analyses every frame and tracks its
 * faces (box IoU, every track ended at a shot cut), spooling their masks to a temporary file (mask-spool.ts)
 * so that memory stays flat; each track is then decided once, from the mean of all its faces' embeddings
 * (RedactionTracker's whole-track mode), at the same threshold and margin as a single image's faces; the
 * second pass reads the frames again and redacts. A track is also hidden in the `hold` frames before its first
 * detection (a face the detector picks up a frame late). After hiding, the detector looks again
 * (redactVerified): any face it still finds that is not a kept one is hidden too.
 */
import { FaceflowError } from '@faceflow/shared';
import type { FaceEngine } from '../recognize/engine.js';
import type { Box, RgbImage } from '../image/geometry.js';
import type { FaceMask } from '../segment/mask.js';
import type { TrackGallery, TrackRule } from '../match/track-identity.js';
import { decideRedaction, faceRedactionMask, RedactionTracker, redactVerified, type KeepOptions, type RedactStyle } from './redact.js';
import type { FaceSegmenter } from '../segment/segment.js';
import { DEFAULT_SHOT_CUT_THRESHOLD, frameSignature, signatureChange } from './shot-cut.js';
import { MaskSpool, type SpoolEntry } from './mask-spool.js';

/**
 * The detector score at which the verification pass hides a face (the engine finds faces at its detector's
 * threshold, 0.6 for YuNet, 0.65 for BlazeFace): a face just
 * under the threshold in the redacted frame can be tipped over it by the output's own encoding (seen on the
 * sitcom clip: a profile in the H.264 output that the raw frame did not give), so hide what is nearly a face.
 */
export const REDACT_VERIFY_MIN_SCORE = 0.5;

/** One face of a frame as redaction sees it: where it is, what to hide, and this frame's decision. */
export interface RedactionFace {
  box: Box;
  /** everything of the face to hide (faceRedactionMask: segmentation, landmarks outline, box ellipse) */
  mask: FaceMask;
  /** the identity that keeps it visible, or null (hidden) */
  identity: string | null;
  hide: boolean;
  embedding?: Float32Array;
}

/** What redaction asks of the models: the analysed faces of a frame, and the detector of the verification. */
export interface RedactionAnalyser {
  analyse(image: RgbImage): Promise<RedactionFace[]>;
  detect(image: RgbImage): Promise<Array<{ box: Box }>>;
  /**
   * A video's track decided from the mean of its faces' embeddings: the identity that keeps it visible, or
   * null. Absent: every track is hidden.
   */
  decideTrack?(mean: Float32Array): string | null;
  /** The same, by the engine's one track-identity rule (match/track-identity.ts, the matcher's too); wins over decideTrack. */
  trackRule?: TrackRule & { gallery: TrackGallery };
}

/**
 * The analyser over a face engine and a segmenter: detect (embedding the faces when keeping the enrolled),
 * segment with growth (the segmenter's default classifier), decide each face (decideRedaction), and the mask
 * to hide (faceRedactionMask). Verification detects at REDACT_VERIFY_MIN_SCORE. A video's track is decided
 * from its mean embedding by identify, at the same threshold and margin as a single face.
 */
export function redactionAnalyser(engine: Pick<FaceEngine, 'run'>, segmenter: Pick<FaceSegmenter, 'run'>, keep: KeepOptions): RedactionAnalyser {
  return {
    async analyse(image) {
      const [faces] = await engine.run([image], { embed: keep.keep === 'enrolled' });
      const [segs] = await segmenter.run([image], [faces!], { grow: true });
      const decisions = decideRedaction(faces!, keep);
      return faces!.map((f, i) => ({
        box: f.box,
        mask: faceRedactionMask(image, f, segs![i]!.mask),
        identity: decisions[i]!.identity,
        hide: decisions[i]!.hide,
        ...(f.embedding ? { embedding: f.embedding } : {}),
      }));
    },
    async detect(image) {
      return (await engine.run([image], { embed: false, minScore: REDACT_VERIFY_MIN_SCORE }))[0]!;
    },
    ...(keep.keep === 'enrolled' ? { trackRule: { gallery: keep.gallery!, ...keep.identify! } } : {}),
  };
}

export interface ImageRedaction {
  image: RgbImage;
  faces: RedactionFace[];
  /** the faces left visible (identified in the gallery) */
  kept: RedactionFace[];
  hidden: number;
  /** verification passes beyond the first redaction, and detections left after them */
  extraPasses: number;
  residual: number;
}

/** Redacts one image: every face, or every face but the enrolled (as the analyser decides). */
export async function redactFaces(image: RgbImage, analyser: RedactionAnalyser, options: { style?: RedactStyle } = {}): Promise<ImageRedaction> {
  const faces = await analyser.analyse(image);
  const hidden = faces.filter((f) => f.hide);
  const kept = faces.filter((f) => !f.hide);
  const r = await redactVerified(image, hidden.map((f) => f.mask), (img) => analyser.detect(img), { style: options.style ?? 'blur' }, { kept: kept.map((f) => f.box) });
  return { image: r.image, faces, kept, hidden: hidden.length, extraPasses: r.passes, residual: r.residual };
}

/** Where the redacted frames go (an encoder). Opened after the first pass, so a video that fails it writes nothing. */
export interface FrameSink {
  write(frame: RgbImage): Promise<void>;
  /** every frame written: finish (throws when the output failed) */
  close(): Promise<void>;
  /** a failure: drop the output */
  abort(): void;
}

export interface VideoProgress {
  tick(): void;
  done(): void;
}

export interface VideoRedactionOptions {
  style?: RedactStyle;
  /** frames a track stays hidden after its face is last detected, and before it is first detected (default 2) */
  hold?: number;
  /** the frame-signature change that starts a new shot, ending every track (default DEFAULT_SHOT_CUT_THRESHOLD; 0: never) */
  shotCut?: number;
  /** stop after this many frames */
  maxFrames?: number;
  /** a progress bar per pass: 'analysing' (total: the frames expected, 0 when unknown) and 'redacting' */
  progress?: (phase: 'analysing' | 'redacting', total: number) => VideoProgress;
  /** the frames the source is expected to give (for the progress bar of the first pass) */
  expectedFrames?: number;
  /** what the video is called in errors (e.g. its file name; default "the video") */
  label?: string;
}

export interface VideoRedaction {
  frames: number;
  /** face detections over all frames */
  faces: number;
  /** detections hidden, and held masks hidden over frames where their face was missed */
  hidden: number;
  held: number;
  shotCuts: number;
  /** per identity kept visible, the frames it was kept in */
  kept: Record<string, number>;
  extraPasses: number;
  residual: number;
}

const NO_BOX: Box = { x: 0, y: 0, width: 0, height: 0 };

const noProgress = (): VideoProgress => ({ tick: () => undefined, done: () => undefined });

/**
 * Redacts a video read twice from `frames` (see the module comment), writing every redacted frame to the sink
 * `openSink` gives after the first pass. `frames` must be re-iterable: each iteration reads the video from its
 * first frame again (a decoder over a file is; a one-shot generator is refused).
 */
export async function redactVideo(
  frames: AsyncIterable<RgbImage>,
  analyser: RedactionAnalyser,
  openSink: () => FrameSink | Promise<FrameSink>,
  options: VideoRedactionOptions = {},
): Promise<VideoRedaction> {
  if ((frames[Symbol.asyncIterator]() as unknown) === frames) {
    throw new FaceflowError('INVALID_ARGUMENT', 'redactVideo reads the frames twice: pass an iterable that restarts from the first frame (not a generator)');
  }
  const hold = options.hold ?? 2;
  const cutAt = options.shotCut ?? DEFAULT_SHOT_CUT_THRESHOLD;
  const style = options.style ?? 'blur';
  const progress = options.progress ?? noProgress;
  const label = options.label ?? 'the video';
  const decide = analyser.decideTrack?.bind(analyser);
  const tracker = new RedactionTracker({ hold, ...(analyser.trackRule ? { match: analyser.trackRule } : decide ? { decide } : {}) });
  const summary: VideoRedaction = { frames: 0, faces: 0, hidden: 0, held: 0, shotCuts: 0, kept: {}, extraPasses: 0, residual: 0 };
  let spool: MaskSpool | undefined;
  try {
    // ---- pass 1: analyse and track, spooling each frame's masks; a frame waits `hold` frames in `pending`
    // for the backwards hold of a track that starts after it
    const pending: SpoolEntry[][] = [];
    let lastSignature: Float32Array | null = null;
    let width = 0, height = 0;
    const scan = progress('analysing', options.maxFrames ?? options.expectedFrames ?? 0);
    try {
      for await (const image of frames) {
        if (!spool) {
          ({ width, height } = image);
          spool = await MaskSpool.create(width, height);
        } else if (image.width !== width || image.height !== height) {
          throw new FaceflowError('INVALID_ARGUMENT', `${label}: frame ${summary.frames} is ${image.width}x${image.height}, the first was ${width}x${height}`);
        }
        const faces = await analyser.analyse(image);
        const signature = frameSignature(image);
        const cut = cutAt > 0 && lastSignature !== null && signatureChange(lastSignature, signature) >= cutAt;
        lastSignature = signature;
        if (cut) {
          summary.shotCuts++;
          // the frames before a cut are another shot: nothing of this shot's tracks is held back into them
          for (const p of pending) await spool.append(p);
          pending.length = 0;
        }
        const seen = tracker.observe(faces.map((f) => ({ box: f.box, mask: f.mask, identity: f.identity, ...(f.embedding ? { embedding: f.embedding } : {}) })), { cut });
        const entries: SpoolEntry[] = faces.map((f, i) => ({ track: seen.faces[i]!.track, kind: 'face', box: f.box, mask: f.mask }));
        for (const h of seen.held) entries.push({ track: h.track, kind: 'held', box: NO_BOX, mask: h.mask });
        seen.faces.forEach((t, i) => {
          if (!t.fresh) return;
          // backwards hold: the frames before this track's first detection, newest first
          for (let k = 1; k <= pending.length; k++) {
            pending[pending.length - k]!.push({ track: t.track, kind: 'held', box: NO_BOX, mask: tracker.heldMask(faces[i]!.mask, k) });
          }
        });
        pending.push(entries);
        if (pending.length > hold) await spool.append(pending.shift()!);
        summary.frames++;
        summary.faces += faces.length;
        scan.tick();
        if (options.maxFrames !== undefined && summary.frames >= options.maxFrames) break;
      }
      if (spool) for (const p of pending) await spool.append(p);
    } finally {
      scan.done();
    }
    if (!spool || summary.frames === 0) throw new FaceflowError('INVALID_ARGUMENT', `${label} has no video frames`);

    // ---- pass 2: each track decided once (identityOf), the frames read again and redacted
    const sink = await openSink();
    const bar = progress('redacting', summary.frames);
    const kept = new Map<string, number>();
    try {
      const records = spool.frames();
      let written = 0;
      for await (const image of frames) {
        if (written >= summary.frames) break;
        const next = await records.next();
        if (next.done) throw new FaceflowError('INTERNAL', `${label}: the second pass decoded more frames than the first`);
        const hide: FaceMask[] = [];
        const keptBoxes: Box[] = [];
        for (const e of next.value) {
          const identity = tracker.identityOf(e.track);
          if (identity === null) {
            hide.push(e.mask);
            if (e.kind === 'face') summary.hidden++;
            else summary.held++;
          } else if (e.kind === 'face') {
            keptBoxes.push(e.box);
            kept.set(identity, (kept.get(identity) ?? 0) + 1);
          }
        }
        const red = await redactVerified(image, hide, (img) => analyser.detect(img), { style }, { kept: keptBoxes });
        summary.extraPasses += red.passes;
        summary.residual += red.residual;
        await sink.write(red.image);
        written++;
        bar.tick();
      }
      if (written !== summary.frames) throw new FaceflowError('INTERNAL', `${label}: the second pass decoded ${written} frames, the first ${summary.frames}`);
      await records.return(undefined);
      await sink.close();
    } catch (e) {
      sink.abort();
      throw e;
    } finally {
      bar.done();
    }
    summary.kept = Object.fromEntries(kept);
    return summary;
  } finally {
    await spool?.dispose();
  }
}
