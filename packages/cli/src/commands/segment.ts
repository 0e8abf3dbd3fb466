/** segment, redact and eval seg: face masks, privacy redaction of images and videos, and their measurement. */
import { access, constants, open, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import {
  decodeImage,
  loadSkinClassifier,
  GROW_CLASSIFIERS,
  type GrowClassifier,
  sniffImageFormat,
  FaceEngine,
  FaceSegmenter,
  Gallery,
  RedactionTracker,
  decideRedaction,
  DEFAULT_SHOT_CUT_THRESHOLD,
  frameSignature,
  signatureChange,
  faceQuality,
  faceRedactionMask,
  maskToPng,
  maskToRle,
  readPartLabels,
  type PartLabels,
  redactVerified,
  resolveModel,
  rleCountsToString,
  scoreSegmentation,
  summariseSegmentation,
  toDenseMask,
  unionMasks,
  type Box,
  type Face,
  type FaceMask,
  type FaceSegment,
  type KeepOptions,
  type Point,
  type RedactStyle,
  type RgbImage,
  type SegScore,
  type SegmentMethod,
} from '@faceflow/engine';
import { FaceflowError } from '@faceflow/shared';
import { type CommandContext, type CommandSpec, num, str, UsageError } from '../cli.js';
import { galleryKeyOption } from '../gallery-key.js';
import { MaskSpool, type SpoolEntry } from '../mask-spool.js';
import { ENGINE_FLAGS, ENGINE_HELP, boxJson, centreFace, engineConfig, galleryModelMismatch, precheckGalleryHead, round, threshold } from '../engine-setup.js';
import { decodeFrames, encodeFrames, probeVideo } from '../video.js';
import { parseSplit, splitNames } from './train-seg.js';

// ------------------------------------------------------------------------------------------ shared

const METHODS = ['mesh', 'mesh+grow', 'landmarks', 'landmarks+grow'] as const;
type Variant = (typeof METHODS)[number];

function parseVariant(v: string): Variant {
  if (!(METHODS as readonly string[]).includes(v)) throw new UsageError(`--method must be one of ${METHODS.join(', ')}, got "${v}"`);
  return v as Variant;
}

function baseMethod(v: Variant): SegmentMethod {
  return v.startsWith('mesh') ? 'mesh' : 'landmarks';
}

/** Loads the engine and, for mesh variants, the face mesh; both are disposed by the returned close(). */
async function loadTools(ctx: CommandContext, needMesh: boolean): Promise<{ engine: FaceEngine; mesh?: FaceSegmenter; landmarks: FaceSegmenter; close: () => void }> {
  // the learned classifier's trees: --skin-classifier FILE, else the bundled ones (read before any model loads)
  const skinFile = typeof ctx.values['skin-classifier'] === 'string' ? ctx.values['skin-classifier'] : undefined;
  const skinClassifier = await loadSkinClassifier(skinFile);
  const engine = await FaceEngine.load(engineConfig(ctx));
  try {
    const landmarks = await FaceSegmenter.load({ method: 'landmarks', skinClassifier });
    const mesh = needMesh ? await FaceSegmenter.load({ method: 'mesh', meshModelPath: (await resolveModel('facemesh')).main, skinClassifier }) : undefined;
    return {
      engine,
      landmarks,
      ...(mesh ? { mesh } : {}),
      close: () => {
        mesh?.dispose();
        landmarks.dispose();
        engine.dispose();
      },
    };
  } catch (e) {
    engine.dispose();
    throw e;
  }
}

type Classifier = GrowClassifier;

/** --classifier, or undefined: the segmenter's default (learned on mesh outlines, contrast on landmark ones) */
function parseClassifier(ctx: CommandContext): Classifier | undefined {
  const c = str(ctx, 'classifier');
  if (c === undefined) return undefined;
  if (!(GROW_CLASSIFIERS as readonly string[]).includes(c)) throw new UsageError(`--classifier must be one of ${GROW_CLASSIFIERS.join(', ')}, got "${c}"`);
  return c as Classifier;
}

const CLASSIFIER_HELP = [
  '  --classifier C     +grow methods: learned (the default with mesh: boosted trees on each pixel\'s place in',
  '                     the face and its colour, fitted on LFW Part Labels by faceflow train seg; --skin-classifier',
  '                     FILE for other trees than the bundled), contrast (the default with landmarks: skin vs the',
  '                     colours around the head, trims hair off the outline\'s edge) or skin-only (chroma and luma',
  '                     bounds around the face\'s own skin)',
];

async function segmentWith(tools: { mesh?: FaceSegmenter; landmarks: FaceSegmenter }, v: Variant, image: RgbImage, faces: Face[], classifier?: Classifier): Promise<FaceSegment[]> {
  const seg = baseMethod(v) === 'mesh' ? tools.mesh! : tools.landmarks;
  const [out] = await seg.run([image], [faces], { grow: v.endsWith('+grow') ? (classifier ? { classifier } : true) : false });
  return out!;
}

/** Fails early (before any model loads) when `file` cannot be written. */
async function checkWritable(file: string, what: string): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  try {
    const st = await stat(file).catch(() => undefined);
    if (st?.isDirectory()) throw new Error('it is a directory');
    const d = await stat(dir);
    if (!d.isDirectory()) throw new Error(`${dir} is not a directory`);
    await access(dir, constants.W_OK);
    if (st) await access(file, constants.W_OK);
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code === 'ENOENT' ? `folder ${dir} does not exist` : (e as Error).message;
    throw new FaceflowError('INVALID_ARGUMENT', `cannot write ${what} ${file}: ${reason}`, { cause: e });
  }
}

async function writeImage(image: RgbImage, out: string): Promise<void> {
  try {
    await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).toFile(out);
  } catch (e) {
    throw new FaceflowError('INVALID_ARGUMENT', `cannot write ${out}: ${(e as Error).message}`, { cause: e });
  }
}

function polygonJson(p: Point[]): number[][] {
  return p.map((q) => [round(q.x, 1), round(q.y, 1)]);
}

// ---------------------------------------------------------------------------------------- segment

async function drawOverlay(image: RgbImage, segments: FaceSegment[], out: string): Promise<void> {
  const tinted = new Uint8Array(image.data);
  const all = unionMasks(segments.map((s) => s.mask), image.width, image.height);
  for (let j = 0; j < all.h; j++) {
    for (let i = 0; i < all.w; i++) {
      if (!all.data[j * all.w + i]) continue;
      const o = ((all.y + j) * image.width + all.x + i) * 3;
      tinted[o] = (tinted[o]! + 0) >> 1;
      tinted[o + 1] = (tinted[o + 1]! + 255) >> 1;
      tinted[o + 2] = (tinted[o + 2]! + 102) >> 1;
    }
  }
  const stroke = Math.max(1, Math.round(Math.max(image.width, image.height) / 500));
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${image.width}" height="${image.height}">${segments
    .map((s) => `<polygon points="${s.polygon.map((p) => `${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ')}" fill="none" stroke="#ffee00" stroke-width="${stroke}"/>`)
    .join('')}</svg>`;
  try {
    await sharp(tinted, { raw: { width: image.width, height: image.height, channels: 3 } }).composite([{ input: Buffer.from(svg), top: 0, left: 0 }]).toFile(out);
  } catch (e) {
    throw new FaceflowError('INVALID_ARGUMENT', `cannot write ${out}: ${(e as Error).message}`, { cause: e });
  }
}

export const segment: CommandSpec = {
  name: 'segment',
  summary: 'a mask for every face: polygon, binary mask (PNG, COCO RLE) and quality score',
  usage: 'faceflow segment <image> [-o overlay.png] [--mask mask.png] [--method mesh+grow] [--json]',
  flags: { ...ENGINE_FLAGS, output: { type: 'string', short: 'o' }, mask: { type: 'string' }, method: { type: 'string' }, classifier: { type: 'string' }, 'skin-classifier': { type: 'string' } },
  help: [
    '  -o, --output FILE  draw the masks and outlines onto a copy of the image (png, jpg or webp)',
    '  --mask FILE        the union of all face masks as a black-and-white PNG of the image\'s size',
    '  --method M         mesh+grow (default): the face mesh outline grown into the skin around it (forehead,',
    '                     ears, neck); mesh: the face mesh outline only; landmarks, landmarks+grow: from the',
    '                     68 landmarks, no extra model',
    ...CLASSIFIER_HELP,
    '  JSON per face: box, score, method, polygon [[x,y],...], rle {size:[h,w], counts: COCO compressed string},',
    '  area (pixels), quality {score, components, measures}.',
    ...ENGINE_HELP,
  ],
  minPositionals: 1,
  maxPositionals: 1,
  async run(ctx) {
    const file = ctx.positionals[0]!;
    const variant = parseVariant(str(ctx, 'method') ?? 'mesh+grow');
    const classifier = parseClassifier(ctx);
    const overlay = str(ctx, 'output');
    const maskOut = str(ctx, 'mask');
    if (overlay) await checkWritable(overlay, 'overlay');
    if (maskOut) await checkWritable(maskOut, 'mask');
    const image = await decodeImage(file);
    const tools = await loadTools(ctx, baseMethod(variant) === 'mesh');
    try {
      const [faces] = await tools.engine.run([image], { embed: false, wholeImageIsFace: ctx.values['whole-image'] === true });
      const segments = await segmentWith(tools, variant, image, faces!, classifier);
      if (overlay) await drawOverlay(image, segments, overlay);
      if (maskOut) {
        const png = await maskToPng(unionMasks(segments.map((s) => s.mask), image.width, image.height));
        try {
          await writeFile(maskOut, png);
        } catch (e) {
          throw new FaceflowError('INVALID_ARGUMENT', `cannot write ${maskOut}: ${(e as Error).message}`, { cause: e });
        }
      }
      const rows = faces!.map((f, i) => {
        const s = segments[i]!;
        const q = faceQuality(image, f, s.mesh ? { mesh: s.mesh } : {});
        const rle = maskToRle(s.mask);
        return {
          box: boxJson(f.box),
          score: round(f.score),
          method: variant,
          ...(s.meshScore !== undefined ? { meshScore: round(s.meshScore) } : {}),
          polygon: polygonJson(s.polygon),
          rle: { size: rle.size, counts: rleCountsToString(rle.counts) },
          area: s.mask.data.reduce((a, b) => a + b, 0),
          quality: {
            score: round(q.score),
            components: Object.fromEntries(Object.entries(q.components).map(([k, v]) => [k, round(v)])),
            measures: {
              interocularPx: round(q.measures.interocularPx, 1),
              laplacianVariance: round(q.measures.laplacianVariance, 1),
              yaw: round(q.measures.pose.yaw, 1),
              pitch: round(q.measures.pose.pitch, 1),
              roll: round(q.measures.pose.roll, 1),
              poseFrom: q.measures.pose.source,
              detectorScore: round(q.measures.detectorScore),
            },
          },
        };
      });
      ctx.out(
        [
          `${faces!.length} face(s) in ${file} (${image.width}x${image.height}), method ${variant}`,
          ...rows.map((r, i) => `  #${i} box ${JSON.stringify(r.box)} mask ${r.area} px, quality ${r.quality.score.toFixed(2)} (size ${r.quality.components.size}, sharpness ${r.quality.components.sharpness}, pose ${r.quality.components.pose}, detector ${r.quality.components.detector})`),
        ].join('\n'),
        { image: file, width: image.width, height: image.height, method: variant, faces: rows },
      );
    } finally {
      tools.close();
    }
  },
};

// ----------------------------------------------------------------------------------------- redact

const NO_BOX: Box = { x: 0, y: 0, width: 0, height: 0 };
/** the detector score at which redaction's verification pass hides a face (the engine finds faces at 0.65) */
const REDACT_VERIFY_MIN_SCORE = 0.5;

export const redact: CommandSpec = {
  name: 'redact',
  summary: 'hide faces along their masks in an image or a video (all, or all but the enrolled)',
  usage: 'faceflow redact <image|video> -o <out> [--gallery <file> --keep enrolled | --all] [--style blur|pixelate|fill]',
  flags: {
    ...ENGINE_FLAGS,
    output: { type: 'string', short: 'o' },
    gallery: { type: 'string' },
    keep: { type: 'string' },
    all: { type: 'boolean', default: false },
    style: { type: 'string' },
    threshold: { type: 'string' },
    margin: { type: 'string' },
    hold: { type: 'string' },
    'shot-cut': { type: 'string' },
    'max-frames': { type: 'string' },
  },
  help: [
    '  -o, --output FILE  the redacted image (png, jpg, webp) or video (mp4, mkv, mov: H.264, audio kept)',
    '  --all              hide every face (the default)',
    '  --gallery FILE --keep enrolled',
    '                     leave faces identified in the gallery visible; unknown or ambiguous faces are hidden',
    '  --threshold T      identification threshold (default: the calibrated distance at 1e-4 false accepts over',
    '                     all LFW pairs, stricter than identify\'s 1e-3: a false match leaves a stranger visible;',
    '                     with --head, the head\'s FAR-1e-3 distance, with a warning); --margin M (default 0.03)',
    '  --style S          blur (default), pixelate or fill',
    '  --hold N           video: keep hiding a face for N frames after the detector loses it (default 2)',
    '  --shot-cut C       video: a frame whose coarse colour grid changes by C or more (mean, 0-255) from the',
    '                     last starts a new shot, and every track ends there (default 14; 0: never)',
    '  --max-frames N     video: stop after N frames',
    '  Videos are decoded and encoded with ffmpeg (Debian package ffmpeg), twice: the first pass tracks the faces',
    '  across frames (box IoU, ended at shot cuts) and spools their masks to a temporary file; then each track is',
    '  decided once, by identifying the mean of all its faces\' embeddings; the second pass redacts (a track is',
    '  also hidden --hold frames before it is first detected). After hiding, the detector looks again; any face',
    '  it still finds that is not a kept one is hidden too, harder (up to 2 more passes; JSON "extraPasses", and',
    '  "residual": detections left after them).',
    ...ENGINE_HELP,
  ],
  minPositionals: 1,
  maxPositionals: 1,
  async run(ctx) {
    const input = ctx.positionals[0]!;
    const out = str(ctx, 'output', true);
    const style = (str(ctx, 'style') ?? 'blur') as RedactStyle;
    if (!['blur', 'pixelate', 'fill'].includes(style)) throw new UsageError(`--style must be blur, pixelate or fill, got "${style}"`);
    const galleryFile = str(ctx, 'gallery');
    const keepFlag = str(ctx, 'keep');
    if (ctx.values.all && (galleryFile || keepFlag)) throw new UsageError('--all excludes --gallery and --keep');
    if (keepFlag !== undefined && keepFlag !== 'enrolled') throw new UsageError(`--keep takes "enrolled", got "${keepFlag}"`);
    if ((keepFlag === 'enrolled') !== (galleryFile !== undefined)) throw new UsageError('--keep enrolled and --gallery go together');
    const hold = num(ctx, 'hold', { min: 0, max: 100, integer: true }) ?? 2;
    const maxFrames = num(ctx, 'max-frames', { min: 1, integer: true });
    const margin = num(ctx, 'margin', { min: 0, max: 2 }) ?? 0.03;

    // what the input is: an image by its magic bytes, else whatever ffprobe makes of it
    let head: Buffer;
    try {
      const fh = await open(input, 'r');
      try {
        head = Buffer.alloc(64);
        await fh.read(head, 0, 64, 0);
      } finally {
        await fh.close();
      }
    } catch (e) {
      throw new FaceflowError('NOT_FOUND', `cannot read ${input}: ${(e as Error).message}`, { cause: e });
    }
    const isImage = ['jpeg', 'png', 'webp'].includes(sniffImageFormat(head) ?? '');
    await checkWritable(out, 'output');
    const video = isImage ? undefined : await probeVideo(input);
    if (video && !/\.(mp4|mkv|mov|m4v)$/i.test(out)) throw new UsageError(`a video's output must end in .mp4, .mkv, .mov or .m4v, got ${out}`);
    if (!video && !/\.(png|jpe?g|webp)$/i.test(out)) throw new UsageError(`an image's output must end in .png, .jpg or .webp, got ${out}`);

    const gallery = galleryFile ? await Gallery.load(galleryFile, galleryKeyOption()) : undefined;
    if (gallery) await precheckGalleryHead(ctx, galleryFile!, gallery.model);
    const tools = await loadTools(ctx, true);
    try {
      if (gallery && (gallery.model !== tools.engine.embedderInfo.name || gallery.dim !== tools.engine.embedderInfo.dim)) {
        throw galleryModelMismatch(galleryFile!, gallery.model, tools.engine.embedderInfo.name, str(ctx, 'head'));
      }
      // who stays visible is an identify (1:N) decision: the distance at FAR 1e-3 (a head's own with --head)
      const keep: KeepOptions = gallery
        ? { keep: 'enrolled', gallery, identify: { threshold: threshold(ctx, gallery.model, 'redact', tools.engine.embedderInfo), margin } }
        : { keep: 'none' };
      // verification looks at a lower detector score than the analysis: a face just under the threshold in the
      // redacted frame can be tipped over it by the output's own encoding (seen on the sitcom clip: a profile
      // at 0.65 in the H.264 output that the raw frame did not give), so hide what is nearly a face, too
      const detect = async (img: RgbImage): Promise<Face[]> => (await tools.engine.run([img], { embed: false, minScore: REDACT_VERIFY_MIN_SCORE }))[0]!;
      const analyse = async (image: RgbImage): Promise<Array<{ face: Face; mask: FaceMask; identity: string | null; hide: boolean }>> => {
        const [faces] = await tools.engine.run([image], { embed: keep.keep === 'enrolled' });
        const segs = await segmentWith(tools, 'mesh+grow', image, faces!);
        const decisions = decideRedaction(faces!, keep);
        return faces!.map((f, i) => ({ face: f, mask: faceRedactionMask(image, f, segs[i]!.mask), identity: decisions[i]!.identity, hide: decisions[i]!.hide }));
      };

      if (!video) {
        const image = await decodeImage(input);
        const faces = await analyse(image);
        const hidden = faces.filter((f) => f.hide);
        const r = await redactVerified(image, hidden.map((f) => f.mask), detect, { style }, { kept: faces.filter((f) => !f.hide).map((f) => f.face.box) });
        await writeImage(r.image, out);
        ctx.out(`${out}: hid ${hidden.length} of ${faces.length} face(s)${faces.length > hidden.length ? `; kept ${faces.filter((f) => !f.hide).map((f) => f.identity).join(', ')}` : ''}`, {
          input,
          output: out,
          faces: faces.length,
          hidden: hidden.length,
          kept: faces.filter((f) => !f.hide).map((f) => ({ identity: f.identity, box: boxJson(f.face.box) })),
          extraPasses: r.passes,
          residual: r.residual,
        });
        return;
      }

      // Two passes (a file's future is known): analyse every frame and track its faces, spooling the masks to
      // disk; decide each track once from all its frames; then decode again and redact. A track is also hidden
      // in the `hold` frames before its first detection (a face the detector picks up a frame late).
      // A track is decided from the mean of its faces' embeddings (a file's whole track is known), at the same
      // threshold and margin as a single image's faces.
      const tracker = new RedactionTracker({
        hold,
        ...(keep.keep === 'enrolled' ? { match: { gallery: keep.gallery!, ...keep.identify! } } : {}),
      });
      const cutAt = num(ctx, 'shot-cut', { min: 0 }) ?? DEFAULT_SHOT_CUT_THRESHOLD;
      let lastSignature: Float32Array | null = null;
      let cuts = 0;
      const spool = await MaskSpool.create(video.width, video.height);
      let frames = 0, faceCount = 0, hiddenCount = 0, heldCount = 0, extraPasses = 0, residual = 0;
      const kept = new Map<string, number>();
      try {
        const pending: SpoolEntry[][] = [];
        const scan = ctx.progress('analysing', maxFrames ?? video.frames ?? 0);
        try {
          for await (const data of decodeFrames(input, video)) {
            const image: RgbImage = { data, width: video.width, height: video.height };
            const faces = await analyse(image);
            const signature = frameSignature(image);
            const cut = cutAt > 0 && lastSignature !== null && signatureChange(lastSignature, signature) >= cutAt;
            lastSignature = signature;
            if (cut) {
              cuts++;
              // the frames before a cut are another shot: nothing of this shot's tracks is held back into them
              for (const p of pending) await spool.append(p);
              pending.length = 0;
            }
            const seen = tracker.observe(faces.map((f) => ({ box: f.face.box, mask: f.mask, identity: f.identity, ...(f.face.embedding ? { embedding: f.face.embedding } : {}) })), { cut });
            const entries: SpoolEntry[] = faces.map((f, i) => ({ track: seen.faces[i]!.track, kind: 'face', box: f.face.box, mask: f.mask }));
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
            frames++;
            faceCount += faces.length;
            scan.tick();
            if (maxFrames !== undefined && frames >= maxFrames) break;
          }
          for (const p of pending) await spool.append(p);
        } finally {
          scan.done();
        }
        if (frames === 0) throw new FaceflowError('INVALID_ARGUMENT', `${input} has no video frames`);

        const writer = encodeFrames(out, video, input);
        const bar = ctx.progress('redacting', frames);
        try {
          const records = spool.frames();
          let written = 0;
          for await (const data of decodeFrames(input, video)) {
            if (written >= frames) break;
            const next = await records.next();
            if (next.done) throw new FaceflowError('INTERNAL', `${input}: the second pass decoded more frames than the first`);
            const image: RgbImage = { data, width: video.width, height: video.height };
            const hide: FaceMask[] = [];
            const keptBoxes: Box[] = [];
            for (const e of next.value) {
              const identity = tracker.identityOf(e.track);
              if (identity === null) {
                hide.push(e.mask);
                if (e.kind === 'face') hiddenCount++;
                else heldCount++;
              } else if (e.kind === 'face') {
                keptBoxes.push(e.box);
                kept.set(identity, (kept.get(identity) ?? 0) + 1);
              }
            }
            const red = await redactVerified(image, hide, detect, { style }, { kept: keptBoxes });
            extraPasses += red.passes;
            residual += red.residual;
            await writer.write(red.image.data);
            written++;
            bar.tick();
          }
          if (written !== frames) throw new FaceflowError('INTERNAL', `${input}: the second pass decoded ${written} frames, the first ${frames}`);
          await records.return(undefined);
          await writer.close();
        } catch (e) {
          writer.abort();
          throw e;
        } finally {
          bar.done();
        }
      } finally {
        await spool.dispose();
      }
      ctx.out(`${out}: ${frames} frame(s), ${faceCount} face detection(s), ${hiddenCount} hidden, ${heldCount} held over missed frames${kept.size ? `; kept ${[...kept.keys()].join(', ')}` : ''}${video.hasAudio ? '; audio kept' : ''}`, {
        input,
        output: out,
        frames,
        faces: faceCount,
        hidden: hiddenCount,
        held: heldCount,
        shotCuts: cuts,
        kept: Object.fromEntries(kept),
        audio: video.hasAudio,
        extraPasses,
        residual,
      });
    } finally {
      tools.close();
    }
  },
};

// ---------------------------------------------------------------------------------------- eval seg


export const evalSeg: CommandSpec = {
  name: 'eval seg',
  summary: 'face segmentation against LFW Part Labels: mean IoU and precision vs the skin label',
  usage: 'faceflow eval seg --images <dir> --masks <dir> [--method mesh+grow[,mesh,...]] [--limit N] [--scale S] [--json]',
  flags: {
    ...ENGINE_FLAGS,
    images: { type: 'string' },
    masks: { type: 'string' },
    method: { type: 'string' },
    classifier: { type: 'string' },
    'skin-classifier': { type: 'string' },
    split: { type: 'string' },
    limit: { type: 'string' },
    scale: { type: 'string' },
    'per-image': { type: 'boolean', default: false },
    warmup: { type: 'string' },
  },
  help: [
    '  --images DIR       photos (<name>.jpg)',
    '  --masks DIR        label PNGs of the same names (<name>.png): red hair, green skin, blue background',
    `  --method LIST      comma-separated, any of ${METHODS.join(', ')} (default mesh+grow)`,
    ...CLASSIFIER_HELP,
    '  --split S          all (default), or even / odd: the images at even / odd positions (0-based) sorted by',
    '                     name (faceflow train seg fits on the even ones by default; odd is the held-out check)',
    '  --limit N          only the first N images (sorted by name)',
    '  --warmup N         untimed runs of every method on the first N images before timing (default 10)',
    '  --scale S          enlarge every image (Lanczos) and its labels (nearest) S times first, 1..4 (default 1):',
    '                     the cost of segmenting large faces (LFW faces are ~100 px; x3 is a 300 px face)',
    '  --per-image        add every image\'s scores to the JSON',
    '  Scores the face nearest the image centre (if none is detected, the centred 45% box, counted in',
    '  "fallbacks"). The skin label includes the neck: "iou"/"precision" are against the whole skin label;',
    '  "iouFace"/"precisionFace" against the skin above the jaw line of the 68 landmarks (the face without',
    '  the neck; a model\'s estimate of the chin, not a human label). Also reports per-face time of each',
    '  method and of the embedder on the same faces, one face at a time, as wall clock (msPerFace) and as this',
    '  process\'s CPU time (cpuMsPerFace, steadier when other jobs share the cores).',
    ...ENGINE_HELP,
  ],
  maxPositionals: 0,
  async run(ctx) {
    const imagesDir = str(ctx, 'images', true);
    const masksDir = str(ctx, 'masks', true);
    const variants = (str(ctx, 'method') ?? 'mesh+grow').split(',').map((s) => parseVariant(s.trim()));
    const limit = num(ctx, 'limit', { min: 1, integer: true });
    const warmup = num(ctx, 'warmup', { min: 1, max: 1000, integer: true }) ?? 10;
    const scale = num(ctx, 'scale', { min: 1, max: 4 }) ?? 1;
    const classifier = parseClassifier(ctx);
    const split = parseSplit(str(ctx, 'split'), 'all');
    const loadImage = async (file: string): Promise<RgbImage> => {
      if (scale === 1) return decodeImage(file);
      const meta = await sharp(file).metadata();
      return decodeImage(await sharp(file).resize({ width: Math.round(meta.width! * scale), height: Math.round(meta.height! * scale), kernel: 'lanczos3', fit: 'fill' }).png().toBuffer());
    };
    const loadLabels = async (file: string): Promise<PartLabels> => {
      if (scale === 1) return readPartLabels(file);
      const meta = await sharp(file).metadata();
      return readPartLabels(await sharp(file).resize({ width: Math.round(meta.width! * scale), height: Math.round(meta.height! * scale), kernel: 'nearest', fit: 'fill' }).png().toBuffer());
    };
    let names: string[];
    try {
      names = (await readdir(imagesDir)).filter((f) => /\.(jpe?g|png|webp)$/i.test(f)).sort();
    } catch (e) {
      throw new FaceflowError('NOT_FOUND', `cannot read folder ${imagesDir}: ${(e as Error).message}`, { cause: e });
    }
    names = splitNames(names, split);
    if (limit !== undefined) names = names.slice(0, limit);
    if (names.length === 0) throw new FaceflowError('INVALID_ARGUMENT', `no images in ${imagesDir}`);
    const maskOf = (n: string): string => path.join(masksDir, n.replace(/\.[^.]+$/, '.png'));
    const missing: string[] = [];
    for (const n of names) {
      try {
        await access(maskOf(n));
      } catch {
        missing.push(maskOf(n));
      }
    }
    if (missing.length) throw new FaceflowError('NOT_FOUND', `${missing.length} mask(s) missing in ${masksDir}, e.g. ${missing[0]}`);
    const tools = await loadTools(ctx, variants.some((v) => baseMethod(v) === 'mesh'));
    const scores = new Map<Variant, SegScore[]>(variants.map((v) => [v, []]));
    const ms = new Map<Variant, number>(variants.map((v) => [v, 0]));
    const cpu = new Map<Variant, number>(variants.map((v) => [v, 0]));
    let embedCpu = 0;
    const cpuMs = (): number => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    };
    const perImage: Array<Record<string, unknown>> = [];
    let embedMs = 0;
    let fallbacks = 0;
    const bar = ctx.progress('segmenting', names.length);
    try {
      // untimed warm-up on the first --warmup images, so that the timed faces see the steady state of a
      // long-running process (the models' first calls and V8's optimisation of the pixel loops happen here,
      // not in the first timed faces); scores come from the timed loop only
      for (const name of names.slice(0, Math.max(1, warmup))) {
        const warm = await loadImage(path.join(imagesDir, name));
        const [wf] = await tools.engine.run([warm], { embed: false, fallbackCenterFraction: 0.45 });
        const face = centreFace(wf!, warm.width, warm.height)!;
        for (const v of variants) await segmentWith(tools, v, warm, [face], classifier);
        await tools.engine.embedChips([tools.engine.alignChip(warm, face.landmarks)]);
      }
      for (const name of names) {
        const image = await loadImage(path.join(imagesDir, name));
        const labels = await loadLabels(maskOf(name));
        if (labels.width !== image.width || labels.height !== image.height) {
          throw new FaceflowError('INVALID_ARGUMENT', `${maskOf(name)} is ${labels.width}x${labels.height}, its image is ${image.width}x${image.height}`);
        }
        const [faces] = await tools.engine.run([image], { embed: false, fallbackCenterFraction: 0.45 });
        const face = centreFace(faces!, image.width, image.height)!;
        if (face.score === 0) fallbacks++;
        const row: Record<string, unknown> = { image: name };
        for (const v of variants) {
          const t0 = performance.now();
          const c0 = cpuMs();
          const [s] = await segmentWith(tools, v, image, [face], classifier);
          cpu.set(v, cpu.get(v)! + cpuMs() - c0);
          ms.set(v, ms.get(v)! + performance.now() - t0);
          const sc = scoreSegmentation(toDenseMask(s!.mask), labels, face.landmarks);
          scores.get(v)!.push(sc);
          row[v] = Object.fromEntries(Object.entries(sc).map(([k, x]) => [k, round(x)]));
        }
        const t1 = performance.now();
        const c1 = cpuMs();
        await tools.engine.embedChips([tools.engine.alignChip(image, face.landmarks)]);
        embedCpu += cpuMs() - c1;
        embedMs += performance.now() - t1;
        if (ctx.values['per-image']) perImage.push(row);
        bar.tick();
      }
    } finally {
      bar.done();
      tools.close();
    }
    const n = names.length;
    const methods = variants.map((v) => {
      const s = summariseSegmentation(scores.get(v)!);
      return {
        method: v,
        meanIou: round(s.meanIou),
        meanPrecision: round(s.meanPrecision),
        meanRecall: round(s.meanRecall),
        meanIouFace: round(s.meanIouFace),
        meanPrecisionFace: round(s.meanPrecisionFace),
        meanRecallFace: round(s.meanRecallFace),
        meanOnHair: round(s.meanOnHair),
        failures: s.failures,
        msPerFace: round(ms.get(v)! / n, 2),
        cpuMsPerFace: round(cpu.get(v)! / n, 2),
      };
    });
    const embedPerFace = embedMs / n;
    const result = {
      images: n,
      split,
      scale,
      fallbacks,
      classifier: classifier ?? 'default (mesh: learned, landmarks: contrast)',
      skinLabel: 'green (0,255,0), face and neck',
      embedder: tools.engine.embedderInfo.name,
      embedMsPerFace: round(embedPerFace, 2),
      embedCpuMsPerFace: round(embedCpu / n, 2),
      backend: tools.engine.runtime.backend,
      methods: methods.map((m) => ({ ...m, costVsEmbedder: round(m.msPerFace / embedPerFace, 3), cpuCostVsEmbedder: round(m.cpuMsPerFace / (embedCpu / n), 3) })),
      ...(ctx.values['per-image'] ? { perImage } : {}),
    };
    ctx.out(
      [
        `${n} images (${fallbacks} with no detection: centred box), embedder ${round(embedPerFace, 1)} ms/face`,
        ...result.methods.map(
          (m) =>
            `  ${m.method.padEnd(15)} IoU ${m.meanIou.toFixed(3)} precision ${m.meanPrecision.toFixed(3)} | face only (above the jaw): IoU ${m.meanIouFace.toFixed(3)} precision ${m.meanPrecisionFace.toFixed(3)} | ${m.msPerFace} ms/face (${(m.costVsEmbedder * 100).toFixed(0)}% of the embedder)`,
        ),
      ].join('\n'),
      result,
    );
  },
};
