/** segment, redact and eval seg: face masks, privacy redaction of images and videos, and their measurement. */
import { decodeImage, Gallery } from '@faceflow/engine';
import { checkWritable } from '@faceflow/engine/image';
import { assertGalleryFits } from '@faceflow/engine/match';
import { DEFAULT_SHOT_CUT_THRESHOLD, isImageFile, type KeepOptions, redactImageFile, redactionAnalyser, type RedactStyle, redactVideo, videoRedactionJson } from '@faceflow/engine/redact';
import { segmentImage, variantBase } from '@faceflow/engine/segment';
import { FaceflowError } from '@faceflow/shared';
import { decodeRgbFrames, encodeRgbFrames, probeVideo, type VideoInfo } from '@faceflow/shared/media';
import { type CommandSpec, num, str, UsageError } from '../cli.js';
import { galleryKeyOption } from '../gallery-key.js';
import { ENGINE_FLAGS, ENGINE_HELP, precheckGalleryHead, threshold } from '../engine-setup.js';
import { CLASSIFIER_HELP, loadTools, parseClassifier, parseVariant } from './seg-tools.js';

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
    const method = parseVariant(str(ctx, 'method') ?? 'mesh+grow');
    const classifier = parseClassifier(ctx);
    const overlay = str(ctx, 'output');
    const mask = str(ctx, 'mask');
    if (overlay) await checkWritable(overlay, 'overlay');
    if (mask) await checkWritable(mask, 'mask');
    const image = await decodeImage(file);
    const tools = await loadTools(ctx, variantBase(method) === 'mesh', classifier);
    try {
      const rows = await segmentImage(tools, image, { method, wholeImageIsFace: ctx.values['whole-image'] === true, ...(overlay ? { overlay } : {}), ...(mask ? { mask } : {}) });
      ctx.out(
        [
          `${rows.length} face(s) in ${file} (${image.width}x${image.height}), method ${method}`,
          ...rows.map((r, i) => `  #${i} box ${JSON.stringify(r.box)} mask ${r.area} px, quality ${r.quality.score.toFixed(2)} (size ${r.quality.components.size}, sharpness ${r.quality.components.sharpness}, pose ${r.quality.components.pose}, detector ${r.quality.components.detector})`),
        ].join('\n'),
        { image: file, width: image.width, height: image.height, method, faces: rows },
      );
    } finally {
      tools.close();
    }
  },
};

/** A file that is not an image, probed as a video: one that is neither is called so. */
async function probeInput(input: string): Promise<VideoInfo> {
  try {
    return await probeVideo(input);
  } catch (e) {
    if (e instanceof FaceflowError && e.code === 'INVALID_ARGUMENT') throw new FaceflowError('INVALID_ARGUMENT', `${input} is neither an image (JPEG, PNG, WebP) nor a video: ${e.message}`, { cause: e });
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
    const isImage = await isImageFile(input);
    await checkWritable(out, 'output');
    const video = isImage ? undefined : await probeInput(input);
    if (video && !/\.(mp4|mkv|mov|m4v)$/i.test(out)) throw new UsageError(`a video's output must end in .mp4, .mkv, .mov or .m4v, got ${out}`);
    if (!video && !/\.(png|jpe?g|webp)$/i.test(out)) throw new UsageError(`an image's output must end in .png, .jpg or .webp, got ${out}`);

    const gallery = galleryFile ? await Gallery.load(galleryFile, galleryKeyOption()) : undefined;
    if (gallery) await precheckGalleryHead(ctx, galleryFile!, gallery.model);
    const tools = await loadTools(ctx, true);
    try {
      if (gallery) assertGalleryFits(gallery, galleryFile!, tools.engine.embedderInfo, str(ctx, 'head'));
      // who stays visible is an identify (1:N) decision: the distance at FAR 1e-4 (a head's own with --head)
      const keep: KeepOptions = gallery ? { keep: 'enrolled', gallery, identify: { threshold: threshold(ctx, gallery.model, 'redact', tools.engine.embedderInfo), margin } } : { keep: 'none' };
      const analyser = redactionAnalyser(tools.engine, tools.mesh!, keep);
      if (!video) {
        const j = await redactImageFile(input, out, analyser, { style });
        return ctx.out(`${out}: hid ${j.hidden} of ${j.faces} face(s)${j.kept.length ? `; kept ${j.kept.map((f) => f.identity).join(', ')}` : ''}`, j);
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
      ctx.out(
        `${out}: ${r.frames} frame(s), ${r.faces} face detection(s), ${r.hidden} hidden, ${r.held} held over missed frames${kept.length ? `; kept ${kept.join(', ')}` : ''}${video.hasAudio ? '; audio kept' : ''}`,
        videoRedactionJson(input, out, r, video.hasAudio),
      );
    } finally {
      tools.close();
    }
  },
};

export { evalSeg } from './eval-seg.js';
