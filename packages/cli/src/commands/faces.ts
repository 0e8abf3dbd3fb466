/** detect, encode, enroll, verify, identify: the notebook's functions as commands. */
import { decodeImage, Gallery, identify, verify } from '@faceflow/engine';
import { assertGalleryFits, loadGalleryIfAny } from '@faceflow/engine/match';
import { detectedFaceJson, enrollFiles, enrollmentJobs, identifiedFaceJson, writeDetectionOverlay } from '@faceflow/engine/recognize';
import { auditedGalleryCommand, FaceflowError } from '@faceflow/shared';
import { type CommandContext, type CommandSpec, num, str, UsageError } from '../cli.js';
import { galleryKeyOption } from '../gallery-key.js';
import { ENGINE_FLAGS, ENGINE_HELP, boxJson, engineConfig, largestFace, makeRunner, noFaceError, precheckGalleryHead, round, runOptions, threshold, type Runner } from '../engine-setup.js';

export const detect: CommandSpec = {
  name: 'detect',
  summary: 'find every face in an image: box, score, 6 keypoints, 68 landmarks',
  usage: 'faceflow detect <image> [-o annotated.png] [--json]',
  flags: { ...ENGINE_FLAGS, output: { type: 'string', short: 'o' } },
  help: ['  -o, --output FILE  draw boxes and landmarks onto a copy of the image (png, jpg or webp)', ...ENGINE_HELP],
  minPositionals: 1,
  maxPositionals: 1,
  async run(ctx) {
    const file = ctx.positionals[0]!;
    engineConfig(ctx); // a bad flag is a usage error before the image is read
    const image = await decodeImage(file);
    const runner = await makeRunner(ctx, false);
    try {
      const [faces] = await runner.run([image], runOptions(ctx, { embed: false }));
      const out = str(ctx, 'output');
      if (out) await writeDetectionOverlay(image, faces!, out);
      ctx.out(
        [`${faces!.length} face(s) in ${file} (${image.width}x${image.height})`, ...faces!.map((f, i) => `  #${i} box ${JSON.stringify(boxJson(f.box))} score ${f.score.toFixed(3)}`)].join('\n'),
        { image: file, width: image.width, height: image.height, faces: faces!.map((f) => detectedFaceJson(f)) },
      );
    } finally {
      await runner.close();
    }
  },
};

export const encode: CommandSpec = {
  name: 'encode',
  summary: "the embedding of each face in an image (the notebook's img_to_encoding)",
  usage: 'faceflow encode <image> [--whole-image] [--json]',
  flags: { ...ENGINE_FLAGS },
  help: [...ENGINE_HELP],
  minPositionals: 1,
  maxPositionals: 1,
  async run(ctx) {
    const file = ctx.positionals[0]!;
    engineConfig(ctx); // a bad flag is a usage error before the image is read
    const image = await decodeImage(file);
    const runner = await makeRunner(ctx, false);
    try {
      const [faces] = await runner.run([image], runOptions(ctx));
      if (faces!.length === 0) throw noFaceError(ctx, file);
      ctx.out(
        faces!.map((f, i) => `#${i} box ${JSON.stringify(boxJson(f.box))} embedding[${f.embedding!.length}] ${Array.from(f.embedding!.slice(0, 4), (v) => v.toFixed(4)).join(' ')} ...`).join('\n'),
        { image: file, model: runner.embedder.name, faces: faces!.map((f) => detectedFaceJson(f, true)) },
      );
    } finally {
      await runner.close();
    }
  },
};

/**
 * Loads the gallery first (a missing or broken file fails before any model loads), then the engine, and checks
 * the engine makes the gallery's embeddings. With `create` (enroll) a missing file is a new, empty gallery.
 */
async function galleryAndRunner(file: string, ctx: CommandContext, create?: { many: boolean }): Promise<{ gallery: Gallery; runner: Runner }> {
  // a bad flag value is a usage error, before anything is read (enroll: after its images are listed)
  num(ctx, 'threshold', { min: 0, max: 2 });
  if (!create) engineConfig(ctx);
  const existing = create ? await loadGalleryIfAny(file, galleryKeyOption()) : await Gallery.load(file, galleryKeyOption());
  if (existing) await precheckGalleryHead(ctx, file, existing.model);
  const runner = await makeRunner(ctx, create?.many ?? false);
  try {
    return { gallery: existing ? assertGalleryFits(existing, file, runner.embedder, str(ctx, 'head')) : new Gallery(runner.embedder.name, runner.embedder.dim, galleryKeyOption()), runner };
  } catch (e) {
    await runner.close();
    throw e;
  }
}

export const enroll: CommandSpec = {
  name: 'enroll',
  summary: 'add people to a gallery file, from images or from a folder with one sub-folder per person',
  usage: 'faceflow enroll --gallery <file> (--name <name> <image>... | --dir <root>)',
  flags: { ...ENGINE_FLAGS, gallery: { type: 'string' }, name: { type: 'string' }, dir: { type: 'string' }, 'min-quality': { type: 'string' } },
  help: [
    '  --gallery FILE     gallery file (created if missing)',
    '  --name NAME        the person in the given images',
    '  --dir ROOT         enroll every ROOT/<person>/<image>; the folder name is the identity',
    '  --min-quality Q    refuse a face whose quality score is under Q in [0, 1] (LOW_QUALITY; size, sharpness,',
    '                     pose, detector score: faceflow segment --json shows it; the engine\'s floor is 0.15);',
    '                     default: no floor',
    '  An image with several faces enrolls its largest face. An image with no face is an error for --name,',
    '  and is skipped with a warning for --dir.',
    ...ENGINE_HELP,
  ],
  async run(ctx) {
    const galleryFile = str(ctx, 'gallery', true);
    const name = str(ctx, 'name');
    const dir = str(ctx, 'dir');
    const minQuality = num(ctx, 'min-quality', { min: 0, max: 1 });
    if ((name === undefined) === (dir === undefined)) throw new UsageError('give exactly one of --name (with images) or --dir');
    if (name !== undefined && ctx.positionals.length === 0) throw new UsageError('--name needs at least one image');
    if (dir !== undefined && ctx.positionals.length > 0) throw new UsageError('--dir takes no image arguments');
    const jobs = name !== undefined ? ctx.positionals.map((file) => ({ name, file })) : await enrollmentJobs(dir!);
    // an unreadable gallery (a directory, another model's) fails before any model loads
    const enrol = async () => {
      const { gallery, runner } = await galleryAndRunner(galleryFile, ctx, { many: jobs.length > 4 });
      const bar = ctx.progress('enroll', jobs.length);
      try {
        const r = await enrollFiles(runner, gallery, jobs, {
          runOptions: runOptions(ctx),
          ...(minQuality !== undefined ? { minQuality } : {}),
          noFace: (file) => noFaceError(ctx, file),
          skipFailures: name === undefined,
          onSkip: (file, reason) => process.stderr.write(`\nfaceflow enroll: warning: skipped ${file}: ${reason}\n`),
          progress: bar,
        });
        await gallery.save(galleryFile);
        return { r, gallery };
      } finally {
        bar.done();
        await runner.close();
      }
    };
    // issue 15: with FACEFLOW_AUDIT_LOG, one audit event per person enrolled (or the failure)
    const { r, gallery } = await auditedGalleryCommand({ file: process.env.FACEFLOW_AUDIT_LOG, action: 'gallery.enroll', gallery: galleryFile, identity: name, identitiesOf: (x) => Object.keys(x.r.added) }, enrol);
    ctx.out(
      `enrolled ${Object.values(r.added).reduce((a, b) => a + b, 0)} face(s) of ${Object.keys(r.added).length} identit(ies) into ${galleryFile} (${gallery.size} identities in all)${r.skipped.length ? `; skipped ${r.skipped.length}` : ''}`,
      { gallery: galleryFile, added: r.added, skipped: r.skipped, identities: gallery.size },
    );
  },
};

export const verifyCmd: CommandSpec = {
  name: 'verify',
  summary: "is the face in this image the named person? (the notebook's verify)",
  usage: 'faceflow verify --gallery <file> --name <name> <image> [--threshold T]',
  flags: { ...ENGINE_FLAGS, gallery: { type: 'string' }, name: { type: 'string' }, threshold: { type: 'string' } },
  help: [
    '  --gallery FILE     gallery file',
    '  --name NAME        the claimed identity',
    '  --threshold T      L2 distance below which it is a match (default: the model\'s calibrated threshold;',
    '                     with --head, the head\'s accuracy-optimal one)',
    '  Exit code 0 whether or not it matches; read "match". The largest face in the image is used.',
    ...ENGINE_HELP,
  ],
  minPositionals: 1,
  maxPositionals: 1,
  async run(ctx) {
    const galleryFile = str(ctx, 'gallery', true);
    const name = str(ctx, 'name', true);
    const file = ctx.positionals[0]!;
    const image = await decodeImage(file);
    const { gallery, runner } = await galleryAndRunner(galleryFile, ctx);
    try {
      if (!gallery.has(name)) throw new FaceflowError('NOT_FOUND', `no identity "${name}" in ${galleryFile}`);
      const t = threshold(ctx, gallery.model, 'verify', runner.embedder);
      const [faces] = await runner.run([image], runOptions(ctx));
      const face = largestFace(ctx, faces!, file);
      const r = verify(face.embedding!, name, gallery, t);
      ctx.out(`${r.match ? "It's" : "It's not"} ${name}: distance ${r.distance.toFixed(4)} (threshold ${t})`, {
        name,
        distance: round(r.distance),
        match: r.match,
        threshold: t,
      });
    } finally {
      await runner.close();
    }
  },
};

export const identifyCmd: CommandSpec = {
  name: 'identify',
  summary: "who is each face in this image, or unknown (the notebook's who_is_it)",
  usage: 'faceflow identify --gallery <file> <image> [--threshold T] [--margin M]',
  flags: { ...ENGINE_FLAGS, gallery: { type: 'string' }, threshold: { type: 'string' }, margin: { type: 'string' } },
  help: [
    '  --gallery FILE     gallery file',
    '  --threshold T      the nearest identity must be closer than T (default: the calibrated distance at',
    '                     a false-accept rate of 1e-3, stricter than verify\'s: unknown beats a wrong name;',
    '                     with --head, the head\'s own, measured on its validation identities)',
    '  --margin M         ...and closer than the second-nearest identity by M (default 0.03)',
    ...ENGINE_HELP,
  ],
  minPositionals: 1,
  maxPositionals: 1,
  async run(ctx) {
    const galleryFile = str(ctx, 'gallery', true);
    const margin = num(ctx, 'margin', { min: 0, max: 2 }) ?? 0.03;
    const file = ctx.positionals[0]!;
    const image = await decodeImage(file);
    const { gallery, runner } = await galleryAndRunner(galleryFile, ctx);
    try {
      if (gallery.size === 0) throw new FaceflowError('GALLERY_EMPTY', `${galleryFile} has no identities: enroll someone first`);
      const t = threshold(ctx, gallery.model, 'identify', runner.embedder);
      const [faces] = await runner.run([image], runOptions(ctx));
      const results = faces!.map((f) => ({ face: f, r: identify(f.embedding!, gallery, { threshold: t, margin }) }));
      ctx.out(
        results.length === 0
          ? `no face found in ${file}`
          : results.map(({ face, r }, i) => `#${i} ${r.identity ?? 'unknown'} (distance ${r.distance.toFixed(4)}, nearest ${r.nearest}) box ${JSON.stringify(boxJson(face.box))}`).join('\n'),
        {
          faces: results.map(({ face, r }) => identifiedFaceJson(face, r)),
          threshold: t,
          margin,
        },
      );
    } finally {
      await runner.close();
    }
  },
};
