/** segment, redact and eval seg: face masks, privacy redaction of images and videos, and their measurement. */
import { access, constants, open, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { decodeImage, FaceEngine, FaceSegmenter, Gallery, resolveModel, type Point, type RgbImage } from '@faceflow/engine';
import { runSegmentationEval, SEG_VARIANTS, segmentVariant, variantBase, type SegVariant } from '@faceflow/engine/eval';
import { sniffImageFormat } from '@faceflow/engine/image';
import { faceQuality } from '@faceflow/engine/recognize';
import { DEFAULT_SHOT_CUT_THRESHOLD, redactFaces, redactionAnalyser, redactVideo, type KeepOptions, type RedactStyle } from '@faceflow/engine/redact';
import { loadSkinClassifier, GROW_CLASSIFIERS, type GrowClassifier, maskToPng, maskToRle, rleCountsToString, unionMasks, type FaceSegment } from '@faceflow/engine/segment';
import { FaceflowError } from '@faceflow/shared';
import { decodeRgbFrames, encodeRgbFrames, probeVideo, type VideoInfo } from '@faceflow/shared/media';
import { type CommandContext, type CommandSpec, num, str, UsageError } from '../cli.js';
import { galleryKeyOption } from '../gallery-key.js';
import { ENGINE_FLAGS, ENGINE_HELP, boxJson, engineConfig, galleryModelMismatch, precheckGalleryHead, round, threshold } from '../engine-setup.js';
import { parseSplit } from './train-seg.js';

// ------------------------------------------------------------------------------------------ shared

function parseVariant(v: string): SegVariant {
  if (!(SEG_VARIANTS as readonly string[]).includes(v)) throw new UsageError(`--method must be one of ${SEG_VARIANTS.join(', ')}, got "${v}"`);
  return v as SegVariant;
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

/** --classifier, or undefined: the segmenter's default (learned on mesh outlines, contrast on landmark ones) */
function parseClassifier(ctx: CommandContext): GrowClassifier | undefined {
  const c = str(ctx, 'classifier');
  if (c === undefined) return undefined;
  if (!(GROW_CLASSIFIERS as readonly string[]).includes(c)) throw new UsageError(`--classifier must be one of ${GROW_CLASSIFIERS.join(', ')}, got "${c}"`);
  return c as GrowClassifier;
}

const CLASSIFIER_HELP = [
  '  --classifier C     +grow methods: learned (the default with mesh: boosted trees on each pixel\'s place in',
  '                     the face and its colour, fitted on LFW Part Labels by faceflow train seg; --skin-classifier',
  '                     FILE for other trees than the bundled), contrast (the default with landmarks: skin vs the',
  '                     colours around the head, trims hair off the outline\'s edge) or skin-only (chroma and luma',
  '                     bounds around the face\'s own skin)',
];

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
    const tools = await loadTools(ctx, variantBase(variant) === 'mesh');
    try {
      const [faces] = await tools.engine.run([image], { embed: false, wholeImageIsFace: ctx.values['whole-image'] === true });
      const segments = await segmentVariant(tools, variant, image, faces!, classifier);
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

/** A file that is not an image, probed as a video: one that is neither is called so. */
async function probeInput(input: string): Promise<VideoInfo> {
  try {
    return await probeVideo(input);
  } catch (e) {
    if (e instanceof FaceflowError && e.code === 'INVALID_ARGUMENT') {
      throw new FaceflowError('INVALID_ARGUMENT', `${input} is neither an image (JPEG, PNG, WebP) nor a video: ${e.message}`, { cause: e });
    }
    throw e;
  }
}

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
    const video = isImage ? undefined : await probeInput(input);
    if (video && !/\.(mp4|mkv|mov|m4v)$/i.test(out)) throw new UsageError(`a video's output must end in .mp4, .mkv, .mov or .m4v, got ${out}`);
    if (!video && !/\.(png|jpe?g|webp)$/i.test(out)) throw new UsageError(`an image's output must end in .png, .jpg or .webp, got ${out}`);

    const gallery = galleryFile ? await Gallery.load(galleryFile, galleryKeyOption()) : undefined;
    if (gallery) await precheckGalleryHead(ctx, galleryFile!, gallery.model);
    const tools = await loadTools(ctx, true);
    try {
      if (gallery && (gallery.model !== tools.engine.embedderInfo.name || gallery.dim !== tools.engine.embedderInfo.dim)) {
        throw galleryModelMismatch(galleryFile!, gallery.model, tools.engine.embedderInfo.name, str(ctx, 'head'));
      }
      // who stays visible is an identify (1:N) decision: the distance at FAR 1e-4 (a head's own with --head)
      const keep: KeepOptions = gallery
        ? { keep: 'enrolled', gallery, identify: { threshold: threshold(ctx, gallery.model, 'redact', tools.engine.embedderInfo), margin } }
        : { keep: 'none' };
      const analyser = redactionAnalyser(tools.engine, tools.mesh!, keep);

      if (!video) {
        const r = await redactFaces(await decodeImage(input), analyser, { style });
        await writeImage(r.image, out);
        ctx.out(`${out}: hid ${r.hidden} of ${r.faces.length} face(s)${r.kept.length ? `; kept ${r.kept.map((f) => f.identity).join(', ')}` : ''}`, {
          input,
          output: out,
          faces: r.faces.length,
          hidden: r.hidden,
          kept: r.kept.map((f) => ({ identity: f.identity, box: boxJson(f.box) })),
          extraPasses: r.extraPasses,
          residual: r.residual,
        });
        return;
      }

      const r = await redactVideo(decodeRgbFrames(input, video), analyser, () => encodeRgbFrames(out, video, { audioFrom: input }), {
        style,
        hold,
        shotCut: num(ctx, 'shot-cut', { min: 0 }) ?? DEFAULT_SHOT_CUT_THRESHOLD,
        ...(maxFrames !== undefined ? { maxFrames } : {}),
        ...(video.frames !== undefined ? { expectedFrames: video.frames } : {}),
        progress: (phase, total) => ctx.progress(phase, total),
        label: input,
      });
      const kept = Object.keys(r.kept);
      ctx.out(`${out}: ${r.frames} frame(s), ${r.faces} face detection(s), ${r.hidden} hidden, ${r.held} held over missed frames${kept.length ? `; kept ${kept.join(', ')}` : ''}${video.hasAudio ? '; audio kept' : ''}`, {
        input,
        output: out,
        frames: r.frames,
        faces: r.faces,
        hidden: r.hidden,
        held: r.held,
        shotCuts: r.shotCuts,
        kept: r.kept,
        audio: video.hasAudio,
        extraPasses: r.extraPasses,
        residual: r.residual,
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
    `  --method LIST      comma-separated, any of ${SEG_VARIANTS.join(', ')} (default mesh+grow)`,
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
    const variants = (str(ctx, 'method') ?? 'mesh+grow').split(',').map((s) => parseVariant(s.trim()));
    const classifier = parseClassifier(ctx);
    const split = parseSplit(str(ctx, 'split'), 'all');
    const limit = num(ctx, 'limit', { min: 1, integer: true });
    let engineInfo: { embedder: string; backend: string } | undefined;
    const report = await runSegmentationEval(
      async () => {
        const tools = await loadTools(ctx, variants.some((v) => variantBase(v) === 'mesh'));
        engineInfo = { embedder: tools.engine.embedderInfo.name, backend: tools.engine.runtime.backend };
        return tools;
      },
      {
        imagesDir: str(ctx, 'images', true),
        masksDir: str(ctx, 'masks', true),
        methods: variants,
        ...(classifier ? { classifier } : {}),
        split,
        ...(limit !== undefined ? { limit } : {}),
        scale: num(ctx, 'scale', { min: 1, max: 4 }) ?? 1,
        warmup: num(ctx, 'warmup', { min: 1, max: 1000, integer: true }) ?? 10,
        perImage: ctx.values['per-image'] === true,
        progress: (label, total) => ctx.progress(label, total),
      },
    );
    const roundAll = (o: object): Record<string, number> => Object.fromEntries(Object.entries(o).map(([k, x]) => [k, round(x as number)]));
    const embedPerFace = report.embedMsPerFace;
    const methods = report.methods.map(({ method, summary: s, msPerFace, cpuMsPerFace }) => {
      const m = {
        method,
        meanIou: round(s.meanIou),
        meanPrecision: round(s.meanPrecision),
        meanRecall: round(s.meanRecall),
        meanIouFace: round(s.meanIouFace),
        meanPrecisionFace: round(s.meanPrecisionFace),
        meanRecallFace: round(s.meanRecallFace),
        meanOnHair: round(s.meanOnHair),
        failures: s.failures,
        msPerFace: round(msPerFace, 2),
        cpuMsPerFace: round(cpuMsPerFace, 2),
      };
      return { ...m, costVsEmbedder: round(m.msPerFace / embedPerFace, 3), cpuCostVsEmbedder: round(m.cpuMsPerFace / report.embedCpuMsPerFace, 3) };
    });
    const result = {
      images: report.images,
      split,
      scale: report.scale,
      fallbacks: report.fallbacks,
      classifier: classifier ?? 'default (mesh: learned, landmarks: contrast)',
      skinLabel: 'green (0,255,0), face and neck',
      embedder: engineInfo!.embedder,
      embedMsPerFace: round(embedPerFace, 2),
      embedCpuMsPerFace: round(report.embedCpuMsPerFace, 2),
      backend: engineInfo!.backend,
      methods,
      ...(report.perImage ? { perImage: report.perImage.map((r) => ({ image: r.image, ...Object.fromEntries(Object.entries(r.scores).map(([v, sc]) => [v, roundAll(sc)])) })) } : {}),
    };
    ctx.out(
      [
        `${report.images} images (${report.fallbacks} with no detection: centred box), embedder ${round(embedPerFace, 1)} ms/face`,
        ...methods.map(
          (m) =>
            `  ${m.method.padEnd(15)} IoU ${m.meanIou.toFixed(3)} precision ${m.meanPrecision.toFixed(3)} | face only (above the jaw): IoU ${m.meanIouFace.toFixed(3)} precision ${m.meanPrecisionFace.toFixed(3)} | ${m.msPerFace} ms/face (${(m.costVsEmbedder * 100).toFixed(0)}% of the embedder)`,
        ),
      ].join('\n'),
      result,
    );
  },
};
