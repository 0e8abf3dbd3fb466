/** detect, encode, enroll, verify, identify: the notebook's functions as commands. */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { decodeImage, Gallery, verify, identify, type DetectedFace, type EmbedderInfo } from '@faceflow/engine';
import { assertQuality, faceQuality } from '@faceflow/engine/recognize';
import { FaceflowError } from '@faceflow/shared';
import { type CommandSpec, num, str, UsageError, mapLimit } from '../cli.js';
import { galleryKeyOption } from '../gallery-key.js';
import { ENGINE_FLAGS, ENGINE_HELP, boxJson, engineConfig, galleryModelMismatch, largestFace, makeRunner, noFaceError, precheckGalleryHead, round, runOptions, threshold, type Runner } from '../engine-setup.js';

function faceJson(f: DetectedFace, withEmbedding: boolean): Record<string, unknown> {
  return {
    box: boxJson(f.box),
    score: round(f.score),
    keypoints: f.keypoints.map((p) => [round(p.x, 1), round(p.y, 1)]),
    landmarks: f.landmarks.map((p) => [round(p.x, 1), round(p.y, 1)]),
    ...(withEmbedding && f.embedding ? { embedding: Array.from(f.embedding, (v) => round(v, 6)) } : {}),
  };
}

async function drawFaces(image: { data: Uint8Array; width: number; height: number }, faces: DetectedFace[], out: string): Promise<void> {
  const stroke = Math.max(2, Math.round(Math.max(image.width, image.height) / 400));
  const shapes = faces.map((f) => {
    const r = `<rect x="${f.box.x}" y="${f.box.y}" width="${f.box.width}" height="${f.box.height}" fill="none" stroke="#00ff66" stroke-width="${stroke}"/>`;
    const pts = f.landmarks.map((p) => `<circle cx="${p.x}" cy="${p.y}" r="${stroke}" fill="#ff3355"/>`).join('');
    const label = `<text x="${f.box.x}" y="${Math.max(12, f.box.y - 4)}" font-size="${6 * stroke + 6}" fill="#00ff66" font-family="sans-serif">${f.score.toFixed(2)}</text>`;
    return r + pts + label;
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${image.width}" height="${image.height}">${shapes.join('')}</svg>`;
  try {
    await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
      .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
      .toFile(out);
  } catch (e) {
    throw new FaceflowError('INVALID_ARGUMENT', `cannot write ${out}: ${(e as Error).message}`, { cause: e });
  }
}

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
      if (out) await drawFaces(image, faces!, out);
      ctx.out(
        [`${faces!.length} face(s) in ${file} (${image.width}x${image.height})`, ...faces!.map((f, i) => `  #${i} box ${JSON.stringify(boxJson(f.box))} score ${f.score.toFixed(3)}`)].join('\n'),
        { image: file, width: image.width, height: image.height, faces: faces!.map((f) => faceJson(f, false)) },
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
        { image: file, model: runner.embedder.name, faces: faces!.map((f) => faceJson(f, true)) },
      );
    } finally {
      await runner.close();
    }
  },
};

function checkModel(g: Gallery, file: string, embedder: EmbedderInfo, headDir?: string): Gallery {
  if (g.model !== embedder.name) throw galleryModelMismatch(file, g.model, embedder.name, headDir);
  if (g.dim !== embedder.dim) throw new FaceflowError('GALLERY_FORMAT', `${file} holds ${g.dim}-d "${g.model}" embeddings; this engine makes ${embedder.dim}-d ones`);
  return g;
}

/** The gallery file to add to, or undefined when there is none yet (enroll creates it). */
async function loadGalleryIfAny(file: string): Promise<Gallery | undefined> {
  try {
    await stat(file);
  } catch {
    return undefined;
  }
  return Gallery.load(file, galleryKeyOption());
}

/** Loads the gallery first (a missing or broken file fails before any model loads), then the engine. */
async function galleryAndRunner(file: string, ctx: Parameters<CommandSpec['run']>[0]): Promise<{ gallery: Gallery; runner: Runner }> {
  // a bad flag value is a usage error, before anything is read
  num(ctx, 'threshold', { min: 0, max: 2 });
  engineConfig(ctx);
  const gallery = await Gallery.load(file, galleryKeyOption());
  await precheckGalleryHead(ctx, file, gallery.model);
  const runner = await makeRunner(ctx, false);
  try {
    checkModel(gallery, file, runner.embedder, str(ctx, 'head'));
  } catch (e) {
    await runner.close();
    throw e;
  }
  return { gallery, runner };
}

const IMAGE_EXT = /\.(jpe?g|png|webp)$/i;

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
    const jobs: Array<{ name: string; file: string }> = [];
    if (name !== undefined) {
      for (const f of ctx.positionals) jobs.push({ name, file: f });
    } else {
      let people: string[];
      try {
        // a person's folder may be a symlink to one (a dataset linked in, not copied): followed (issue 12)
        const entries = await readdir(dir!, { withFileTypes: true });
        const isFolder = async (d: (typeof entries)[number]): Promise<boolean> =>
          d.isDirectory() || (d.isSymbolicLink() && (await stat(path.join(dir!, d.name)).then((st) => st.isDirectory(), () => false)));
        people = (await Promise.all(entries.map(async (d) => ((await isFolder(d)) ? d.name : undefined)))).filter((n): n is string => n !== undefined).sort();
      } catch (e) {
        throw new FaceflowError('NOT_FOUND', `cannot read folder ${dir}: ${(e as Error).message}`, { cause: e });
      }
      for (const p of people) {
        for (const f of (await readdir(path.join(dir!, p))).filter((x) => IMAGE_EXT.test(x)).sort()) jobs.push({ name: p, file: path.join(dir!, p, f) });
      }
      if (jobs.length === 0) throw new FaceflowError('INVALID_ARGUMENT', `no images found under ${dir}/<person>/`);
    }
    // an unreadable gallery (a directory, another model's) fails before any model loads
    const existing = await loadGalleryIfAny(galleryFile);
    if (existing) await precheckGalleryHead(ctx, galleryFile, existing.model);
    const runner = await makeRunner(ctx, jobs.length > 4);
    let gallery: Gallery;
    try {
      gallery = existing ? checkModel(existing, galleryFile, runner.embedder, str(ctx, 'head')) : new Gallery(runner.embedder.name, runner.embedder.dim, galleryKeyOption());
    } catch (e) {
      await runner.close();
      throw e;
    }
    const bar = ctx.progress('enroll', jobs.length);
    const added: Record<string, number> = {};
    const skipped: Array<{ file: string; reason: string }> = [];
    try {
      await mapLimit(jobs, 8, async (job) => {
          try {
            const image = await decodeImage(job.file);
            const [faces] = await runner.run([image], runOptions(ctx));
            const face = largestFace(ctx, faces!, job.file);
            if (minQuality !== undefined) assertQuality(faceQuality(image, face), minQuality, `the face in ${job.file}`);
            gallery.add(job.name, [face.embedding!]);
            added[job.name] = (added[job.name] ?? 0) + 1;
          } catch (e) {
            if (name !== undefined) throw e;
            skipped.push({ file: job.file, reason: (e as Error).message });
            process.stderr.write(`\nfaceflow enroll: warning: skipped ${job.file}: ${(e as Error).message}\n`);
          } finally {
            bar.tick();
          }
        });
    } finally {
      bar.done();
      await runner.close();
    }
    await gallery.save(galleryFile);
    ctx.out(
      `enrolled ${Object.values(added).reduce((a, b) => a + b, 0)} face(s) of ${Object.keys(added).length} identit(ies) into ${galleryFile} (${gallery.size} identities in all)${skipped.length ? `; skipped ${skipped.length}` : ''}`,
      { gallery: galleryFile, added, skipped, identities: gallery.size },
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
          faces: results.map(({ face, r }) => ({
            identity: r.identity,
            distance: round(r.distance),
            nearest: r.nearest,
            secondDistance: r.secondDistance === null ? null : round(r.secondDistance),
            reason: r.reason,
            box: boxJson(face.box),
          })),
          threshold: t,
          margin,
        },
      );
    } finally {
      await runner.close();
    }
  },
};
