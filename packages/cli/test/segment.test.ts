/**
 * faceflow segment, redact and eval seg end to end (the built bin), on the demo photos an npm package ships
 * and on files the tests make (a short video made with ffmpeg from a demo photo, with a tone for audio).
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile, stat, mkdir, copyFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { faceflow, json } from './helpers.js';

const require = createRequire(import.meta.url);
const demo = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'demo');
const sample = path.join(demo, 'sample1.jpg');
let dir: string;

const hasFfmpeg = spawnSync('ffmpeg', ['-version']).status === 0 && spawnSync('ffprobe', ['-version']).status === 0;
// CI installs ffmpeg (scripts/infra.sh); elsewhere the video tests are skipped when it is missing
const videoTest = hasFfmpeg || process.env.CI ? it : it.skip;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-seg-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('--help', () => {
  it.each([['segment'], ['redact'], ['eval', 'seg']])('%s %s --help prints usage and exits 0', async (...cmd) => {
    const r = await faceflow([...cmd.filter(Boolean), '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/usage: faceflow/);
    expect(r.stdout).toMatch(/--json/);
  });
});

describe('faceflow segment', () => {
  it('gives polygon, COCO RLE and quality per face, an overlay and a mask PNG', async () => {
    const overlay = path.join(dir, 'overlay.png');
    const mask = path.join(dir, 'mask.png');
    // sample3: its three faces and nothing else for YuNet, the default detector (in sample1 it also takes a
    // dark blob for a face, which has no face's geometry to check here; engine.test.ts counts that one)
    const r = await faceflow(['segment', path.join(demo, 'sample3.jpg'), '-o', overlay, '--mask', mask, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = json(r);
    expect(out.faces).toHaveLength(3);
    for (const f of out.faces) {
      expect(f.polygon.length).toBeGreaterThan(10);
      expect(f.rle.size).toEqual([out.height, out.width]);
      expect(typeof f.rle.counts).toBe('string');
      expect(f.area).toBeGreaterThan(0.4 * f.box.width * f.box.height);
      expect(f.quality.score).toBeGreaterThan(0.15);
      expect(f.quality.score).toBeLessThanOrEqual(1);
      expect(Object.keys(f.quality.components).sort()).toEqual(['detector', 'pose', 'sharpness', 'size']);
      expect(f.quality.measures.interocularPx).toBeGreaterThan(30);
    }
    const meta = await sharp(mask).metadata();
    expect([meta.width, meta.height]).toEqual([out.width, out.height]);
    const { data } = await sharp(mask).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    const white = data.reduce((a, v) => a + (v > 127 ? 1 : 0), 0);
    const total = out.faces.reduce((a: number, f: { area: number }) => a + f.area, 0);
    expect(Math.abs(white - total) / total).toBeLessThan(0.01);
    expect((await stat(overlay)).size).toBeGreaterThan(1000);
  });

  it('an output path that cannot be written is one clear line and exit 1, before any model loads', async () => {
    const r = await faceflow(['segment', sample, '-o', path.join(dir, 'no', 'such', 'dir', 'o.png')]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/INVALID_ARGUMENT: cannot write overlay .*does not exist/);
  });

  it('an unknown method is a usage error', async () => {
    const r = await faceflow(['segment', sample, '--method', 'magic']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--method must be one of/);
  });
});

describe('faceflow redact', () => {
  it('hides every face of an image: the detector finds none afterwards', async () => {
    const out = path.join(dir, 'redacted.png');
    const r = await faceflow(['redact', sample, '-o', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    // every detection hidden: the three people, and with YuNet a dark blob it takes for a face (hiding it is harmless)
    const res = json(r);
    expect(res.faces).toBeGreaterThanOrEqual(3);
    expect(res.faces).toBeLessThanOrEqual(4);
    expect(res.hidden).toBe(res.faces);
    const d = await faceflow(['detect', out, '--json']);
    expect(d.code).toBe(0);
    expect(json(d).faces).toHaveLength(0);
  });

  it('keeps the enrolled face and hides the others', async () => {
    // enroll the person of sample1's largest face from a crop of it, then redact the whole photo
    const det = json(await faceflow(['detect', sample, '--json']));
    const faces = det.faces as Array<{ box: { x: number; y: number; width: number; height: number } }>;
    const big = faces.reduce((a, b) => (b.box.width > a.box.width ? b : a));
    const side = Math.round(big.box.width * 2);
    const crop = path.join(dir, 'enrolled.jpg');
    await sharp(sample)
      .extract({ left: Math.max(0, Math.round(big.box.x + big.box.width / 2 - side / 2)), top: Math.max(0, Math.round(big.box.y + big.box.height / 2 - side / 2)), width: side, height: side })
      .toFile(crop);
    const gallery = path.join(dir, 'gallery.json');
    const e = await faceflow(['enroll', '--gallery', gallery, '--name', 'kept', crop]);
    expect(e.code, e.stderr).toBe(0);
    const out = path.join(dir, 'kept.png');
    const r = await faceflow(['redact', sample, '-o', out, '--gallery', gallery, '--keep', 'enrolled', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const res = json(r);
    // one face kept, every other detection hidden (the two other people, and YuNet's blob, see above)
    expect(res.faces).toBeGreaterThanOrEqual(3);
    expect(res.hidden).toBe(res.faces - 1);
    expect(res.kept).toHaveLength(1);
    expect(res.kept[0].identity).toBe('kept');
    const after = json(await faceflow(['detect', out, '--json'])).faces as Array<{ box: { x: number; width: number } }>;
    expect(after).toHaveLength(1);
    expect(Math.abs(after[0]!.box.x - big.box.x)).toBeLessThan(big.box.width * 0.2);
  });

  it('flags that contradict each other are usage errors', async () => {
    const a = await faceflow(['redact', sample, '-o', path.join(dir, 'x.png'), '--all', '--gallery', 'g.json', '--keep', 'enrolled']);
    expect(a.code).toBe(2);
    const b = await faceflow(['redact', sample, '-o', path.join(dir, 'x.png'), '--keep', 'enrolled']);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/--keep enrolled and --gallery go together/);
    const c = await faceflow(['redact', sample, '-o', path.join(dir, 'x.png'), '--style', 'smudge']);
    expect(c.code).toBe(2);
  });

  it('an output path that cannot be written is a clear error', async () => {
    const r = await faceflow(['redact', sample, '-o', path.join(dir, 'missing-dir', 'out.png')]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/cannot write output .*does not exist/);
    await mkdir(path.join(dir, 'a-dir.png'));
    const s = await faceflow(['redact', sample, '-o', path.join(dir, 'a-dir.png')]);
    expect(s.code).toBe(1);
    expect(s.stderr).toMatch(/cannot write output .*directory/);
  });

  videoTest('a file that is neither an image nor a video is a clear error', async () => {
    const fake = path.join(dir, 'fake.mp4');
    await writeFile(fake, Buffer.from('this is not a video, just text pretending to be one\n'.repeat(20)));
    const r = await faceflow(['redact', fake, '-o', path.join(dir, 'out.mp4')]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/INVALID_ARGUMENT: .*neither an image .* nor a video/);
  });

  videoTest('redacts a video: every frame hidden, frame count and audio kept', async () => {
    // 6 frames of sample1 at 641x427 (odd sides on purpose: H.264 needs even ones) at 6 fps, with a 1 s tone
    const still = path.join(dir, 'still.png');
    await sharp(sample).resize(641, 427, { fit: 'fill' }).toFile(still);
    const video = path.join(dir, 'clip.mp4');
    const mk = spawnSync('ffmpeg', ['-v', 'error', '-y', '-loop', '1', '-framerate', '6', '-t', '1', '-i', still, '-f', 'lavfi', '-i', 'sine=frequency=440:duration=1', '-c:v', 'libx264rgb', '-c:a', 'aac', '-shortest', video]);
    expect(mk.status, String(mk.stderr)).toBe(0);
    const out = path.join(dir, 'clip-redacted.mp4');
    const r = await faceflow(['redact', video, '-o', out, '--json'], 300_000);
    expect(r.code, r.stderr).toBe(0);
    const res = json(r);
    expect(res.frames).toBe(6);
    expect(res.faces).toBeGreaterThanOrEqual(15);
    expect(res.hidden).toBe(res.faces);
    expect(res.audio).toBe(true);
    const probe = JSON.parse(spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type,nb_frames', '-of', 'json', out]).stdout.toString());
    const types = probe.streams.map((s: { codec_type: string }) => s.codec_type).sort();
    expect(types).toEqual(['audio', 'video']);
    // the detector finds none of the faces in the output's frames (first and last). It may fire elsewhere: on
    // this clip's H.264 frames it finds a hand at the bottom edge (score 0.63) that it does not find in the
    // PNG still; a detection centred on one of the three faces would be a leak.
    const before = json(await faceflow(['detect', still, '--json'])).faces as Array<{ box: { x: number; y: number; width: number; height: number } }>;
    expect(before).toHaveLength(3);
    for (const t of ['0', '0.8']) {
      const frame = path.join(dir, `frame-${t}.png`);
      expect(spawnSync('ffmpeg', ['-v', 'error', '-y', '-ss', t, '-i', out, '-frames:v', '1', frame]).status).toBe(0);
      const after = json(await faceflow(['detect', frame, '--json'])).faces as Array<{ box: { x: number; y: number; width: number; height: number } }>;
      const leaks = after.filter((a) => {
        const cx = a.box.x + a.box.width / 2, cy = a.box.y + a.box.height / 2;
        return before.some((b) => cx > b.box.x && cx < b.box.x + b.box.width && cy > b.box.y && cy < b.box.y + b.box.height);
      });
      expect(leaks, `frame at ${t}s`).toHaveLength(0);
    }
  });
});

describe('faceflow redact on a video, keeping the enrolled', () => {
  videoTest('a track is kept when its mean embedding names an enrolled person; a shot cut ends it; the rest is hidden', async () => {
    // the gallery of the image test above: the person of sample1's largest face. Video: 3 frames of sample1,
    // a cut, 3 frames of sample2 (other people): the enrolled face is kept in the first shot only
    const gallery = path.join(dir, 'gallery.json');
    await stat(gallery);
    const a = path.join(dir, 'shot-a.png'), b = path.join(dir, 'shot-b.png');
    await sharp(sample).resize(640, 426, { fit: 'fill' }).toFile(a);
    await sharp(path.join(demo, 'sample2.jpg')).resize(640, 426, { fit: 'fill' }).toFile(b);
    const video = path.join(dir, 'two-shots.mp4');
    const mk = spawnSync('ffmpeg', ['-v', 'error', '-y', '-loop', '1', '-framerate', '6', '-t', '0.5', '-i', a, '-loop', '1', '-framerate', '6', '-t', '0.5', '-i', b,
      '-filter_complex', '[0:v][1:v]concat=n=2:v=1[v]', '-map', '[v]', '-c:v', 'libx264rgb', video]);
    expect(mk.status, String(mk.stderr)).toBe(0);
    const r = await faceflow(['redact', video, '-o', path.join(dir, 'two-shots-redacted.mp4'), '--gallery', gallery, '--keep', 'enrolled', '--json'], 300_000);
    expect(r.code, r.stderr).toBe(0);
    const res = json(r);
    expect(res.frames).toBe(6);
    expect(res.shotCuts).toBe(1);
    expect(res.kept).toEqual({ kept: 3 });
    expect(res.hidden).toBe(res.faces - 3);
  });
});

describe('quality floor on enroll', () => {
  it('--min-quality refuses a face under the floor with LOW_QUALITY, and accepts it under a lower one', async () => {
    const gallery = path.join(dir, 'q-gallery.json');
    const hi = await faceflow(['enroll', '--gallery', gallery, '--name', 'someone', '--min-quality', '0.99', sample]);
    expect(hi.code).toBe(1);
    expect(hi.stderr.trim().split('\n')).toHaveLength(1);
    expect(hi.stderr).toMatch(/LOW_QUALITY: the face in .* quality 0\.\d+ is under the floor 0\.99 \(weakest: /);
    const lo = await faceflow(['enroll', '--gallery', gallery, '--name', 'someone', '--min-quality', '0.1', sample]);
    expect(lo.code, lo.stderr).toBe(0);
    const bad = await faceflow(['enroll', '--gallery', gallery, '--name', 'someone', '--min-quality', '2', sample]);
    expect(bad.code).toBe(2);
  });
});

describe('faceflow eval seg', () => {
  it('scores masks against part labels (a synthetic label: everything skin)', async () => {
    const images = path.join(dir, 'eval-images');
    const masks = path.join(dir, 'eval-masks');
    await mkdir(images);
    await mkdir(masks);
    await copyFile(path.join(dir, 'enrolled.jpg'), path.join(images, 'a.jpg')).catch(async () => sharp(sample).extract({ left: 300, top: 250, width: 400, height: 400 }).toFile(path.join(images, 'a.jpg')));
    const meta = await sharp(path.join(images, 'a.jpg')).metadata();
    await sharp({ create: { width: meta.width!, height: meta.height!, channels: 3, background: { r: 0, g: 255, b: 0 } } }).png().toFile(path.join(masks, 'a.png'));
    const r = await faceflow(['eval', 'seg', '--images', images, '--masks', masks, '--method', 'mesh,landmarks', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = json(r);
    expect(out.images).toBe(1);
    expect(out.methods.map((m: { method: string }) => m.method)).toEqual(['mesh', 'landmarks']);
    for (const m of out.methods) {
      // everything is skin: precision is 1, IoU is the mask's share of the image
      expect(m.meanPrecision).toBe(1);
      expect(m.meanIou).toBeGreaterThan(0.05);
      expect(m.meanIou).toBeLessThan(0.8);
      expect(m.msPerFace).toBeGreaterThan(0);
    }
    expect(out.embedMsPerFace).toBeGreaterThan(0);
  });

  it('missing masks are NOT_FOUND', async () => {
    const images = path.join(dir, 'eval-images2');
    await mkdir(images);
    await copyFile(sample, path.join(images, 'b.jpg'));
    const r = await faceflow(['eval', 'seg', '--images', images, '--masks', path.join(dir, 'nowhere')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/NOT_FOUND: 1 mask\(s\) missing/);
  });
});
