/**
 * Issue 12, item 1: every command exits promptly with its code on every error path. Each case runs the built
 * CLI as a child process with a deadline (the helper kills it and fails the test when it passes), and checks
 * the exit code and the one line on stderr naming the problem. The fixtures are made here, at test time.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { faceflow, type CliResult } from './helpers.js';

const require = createRequire(import.meta.url);
const demo = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'demo');
/** A hang is a failure: no error path may take this long (model loading included). */
const DEADLINE_MS = 90_000;

function hasFfmpeg(): boolean {
  try {
    execFileSync('ffmpeg', ['-version'], { stdio: 'ignore' });
    execFileSync('ffprobe', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const FFMPEG = hasFfmpeg();

let dir: string;
let gallery: string;
let video: string | undefined;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-exits-'));
  gallery = path.join(dir, 'gallery.json');
  await writeFile(gallery, JSON.stringify({ format: 'faceflow-gallery', version: 1, model: 'faceapi-recognition', dim: 128, galleryVersion: 0, updatedAt: 0, identities: [] }));
  await mkdir(path.join(dir, 'empty'));
  await mkdir(path.join(dir, 'no-images'));
  await writeFile(path.join(dir, 'no-images', 'readme.txt'), 'not an image\n');
  await writeFile(path.join(dir, 'notes.txt'), 'this is not a video\n');
  await writeFile(path.join(dir, 'noise.mp4'), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)));
  if (FFMPEG) {
    video = path.join(dir, 'clip.mp4');
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=10:duration=2', '-pix_fmt', 'yuv420p', video]);
    // the first bytes only: no moov atom (ffmpeg writes it at the end)
    await writeFile(path.join(dir, 'truncated.mp4'), (await readFile(video)).subarray(0, 1500));
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'sine=duration=1', path.join(dir, 'audio.wav')]);
  }
  // a PATH with node and nothing else: no ffmpeg, no ffprobe
  await mkdir(path.join(dir, 'bin'));
  await symlink(process.execPath, path.join(dir, 'bin', 'node'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

function oneLineError(r: CliResult, command: string, problem: RegExp): void {
  expect(r.code, r.stderr).not.toBe(0);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^faceflow ${command}: `));
  expect(lines[0]).toMatch(problem);
}

describe('faceflow run exits promptly on a source error, with one line naming it', () => {
  const run = (source: string, env: Record<string, string> = {}, extra: string[] = []): Promise<CliResult> =>
    faceflow(['run', '--source', source, '--gallery', gallery, '--workers', '1', ...extra], DEADLINE_MS, env);

  it('run_exits_on_a_missing_source_file', async () => {
    oneLineError(await run(path.join(dir, 'nope.mp4')), 'run', /NOT_FOUND: source not found: .*nope\.mp4/);
  });

  it('run_exits_on_a_folder_with_no_images', async () => {
    oneLineError(await run(path.join(dir, 'no-images')), 'run', /INVALID_ARGUMENT: no \.jpg, \.png or \.webp images in .*no-images/);
  });

  it('run_exits_on_an_empty_folder', async () => {
    oneLineError(await run(path.join(dir, 'empty')), 'run', /INVALID_ARGUMENT: no \.jpg, \.png or \.webp images in .*empty/);
  });

  it('run_exits_on_a_broken_image', async () => {
    const jpeg = await readFile(path.join(demo, 'sample1.jpg'));
    await writeFile(path.join(dir, 'truncated.jpg'), jpeg.subarray(0, Math.floor(jpeg.length / 3)));
    oneLineError(await run(path.join(dir, 'truncated.jpg')), 'run', /INVALID_IMAGE: .*truncated/i);
    await writeFile(path.join(dir, 'text.jpg'), 'not an image\n');
    oneLineError(await run(path.join(dir, 'text.jpg')), 'run', /UNSUPPORTED_FORMAT/);
  });

  it.skipIf(!FFMPEG)('run_exits_on_a_text_file', async () => {
    oneLineError(await run(path.join(dir, 'notes.txt')), 'run', /INVALID_ARGUMENT: cannot read video .*notes\.txt/);
  });

  it.skipIf(!FFMPEG)('run_exits_on_a_file_that_is_not_a_video', async () => {
    oneLineError(await run(path.join(dir, 'noise.mp4')), 'run', /INVALID_ARGUMENT: cannot read video .*noise\.mp4/);
    oneLineError(await run(path.join(dir, 'audio.wav')), 'run', /INVALID_ARGUMENT: .*audio\.wav has no video stream/);
  });

  it.skipIf(!FFMPEG)('run_exits_on_a_truncated_mp4 (needs ffmpeg to make the mp4)', async () => {
    oneLineError(await run(path.join(dir, 'truncated.mp4')), 'run', /INVALID_ARGUMENT: cannot read video .*truncated\.mp4/);
  });

  it('run_exits_when_ffmpeg_is_missing, naming what to install', async () => {
    const noFfmpeg = { PATH: path.join(dir, 'bin') };
    oneLineError(await run(video ?? path.join(dir, 'noise.mp4'), noFfmpeg), 'run', /INVALID_CONFIG: ffprobe \(ffmpeg\) is not installed.*install ffmpeg/);
    // a stream is opened only after the engine started: that path closes it too
    oneLineError(await run('rtsp://127.0.0.1:9/cam', noFfmpeg), 'run', /INVALID_CONFIG: cannot start ffmpeg.*install ffmpeg/);
  });

  it.skipIf(!FFMPEG)('run_exits_when_a_stream_cannot_be_reached', async () => {
    oneLineError(await run('rtsp://127.0.0.1:9/cam'), 'run', /INVALID_ARGUMENT: source rtsp:\/\/127\.0\.0\.1:9\/cam: ffmpeg exited/);
  });

  it('run_exits_when_the_gallery_holds_another_models_embeddings (found after the engine started)', async () => {
    const other = path.join(dir, 'other-model.json');
    await writeFile(other, JSON.stringify({ format: 'faceflow-gallery', version: 1, model: 'mobilefacenet', dim: 192, galleryVersion: 0, updatedAt: 0, identities: [] }));
    const r = await faceflow(['run', '--source', path.join(dir, 'empty'), '--gallery', other, '--workers', '1'], DEADLINE_MS);
    // the folder is refused before the engine starts; with images, the gallery is refused once it has
    oneLineError(r, 'run', /no \.jpg/);
    const images = path.join(dir, 'images');
    await mkdir(images, { recursive: true });
    await writeFile(path.join(images, 'a.jpg'), await readFile(path.join(demo, 'sample1.jpg')));
    const r2 = await faceflow(['run', '--source', images, '--gallery', other, '--workers', '1'], DEADLINE_MS);
    oneLineError(r2, 'run', /GALLERY_FORMAT: .*"mobilefacenet" embeddings/);
  });
});

describe('every command exits promptly with its code on its error paths', () => {
  // [command line, exit code, what the one line says]; files made in beforeAll, `@` is the temp folder
  const cases: Array<[string, number, RegExp]> = [
    ['detect @/nope.jpg', 1, /NOT_FOUND/],
    ['detect --backend foo @/nope.jpg', 2, /--backend must be one of auto, tensorflow, wasm, cpu; got "foo"/],
    ['encode --embedder no-such-model DEMO/sample1.jpg', 1, /NOT_FOUND: unknown model "no-such-model"/],
    ['encode --workers 2 --embedder no-such-model DEMO/sample1.jpg', 1, /NOT_FOUND: unknown model "no-such-model"/],
    ['detect --registry @/no-registry.json DEMO/sample1.jpg', 1, /NOT_FOUND: model registry file not found/],
    ['enroll --gallery @/g.json --dir @/nope', 1, /NOT_FOUND: cannot read folder/],
    ['enroll --gallery @/g.json --dir @/empty', 1, /INVALID_ARGUMENT: no images found under/],
    ['verify --gallery @/nope.json --name a DEMO/sample1.jpg', 1, /NOT_FOUND: gallery file not found/],
    ['identify --gallery @/gallery.json --head @/nope DEMO/sample1.jpg', 1, /NOT_FOUND: no projection head/],
    ['identify --gallery @/gallery.json @/notes.txt', 1, /UNSUPPORTED_FORMAT|INVALID_IMAGE/],
    ['segment @/nope.jpg', 1, /NOT_FOUND/],
    ['redact @/nope.mp4 -o @/out.mp4', 1, /NOT_FOUND/],
    ['eval lfw --images @/empty --pairs @/nope.txt', 1, /NOT_FOUND: pairs file not found/],
    ['eval det --images @/empty --boxes @/nope.txt', 1, /NOT_FOUND: boxes file not found/],
    ['models pull no-such-model', 1, /NOT_FOUND: unknown model "no-such-model"/],
    ['train --data @/nope --out @/head', 1, /NOT_FOUND: training data folder not found/],
    ['run --source @/empty --gallery @/gallery.json --embedder no-such-model', 1, /no \.jpg/],
    ['run --source @/images --gallery @/gallery.json --embedder no-such-model --workers 1', 1, /NOT_FOUND: unknown model "no-such-model"/],
  ];
  it.each(cases)('faceflow %s exits %i with one line', async (line, code, problem) => {
    await mkdir(path.join(dir, 'images'), { recursive: true });
    await writeFile(path.join(dir, 'images', 'a.jpg'), await readFile(path.join(demo, 'sample1.jpg')));
    const args = line.split(' ').map((a) => a.replace(/^@/, dir).replace(/^DEMO/, demo));
    const command = args[0] === 'eval' || args[0] === 'models' ? `${args[0]} ${args[1]}` : args[0]!;
    const r = await faceflow(args, DEADLINE_MS);
    expect(r.code, r.stderr).toBe(code);
    oneLineError(r, command, problem);
  });
});
