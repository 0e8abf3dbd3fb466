/**
 * Issue 12, item 9: the CLI's edges, each through the built CLI as a child process (with a deadline): help
 * of the command groups and its layout, negative numbers as flag values, usage errors exit 2, a directory
 * given as a gallery, symlinked person folders, the hint for a tight crop, one image as a `run` source, its
 * progress, and how an unknown person's events read.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINE_HELP } from '../src/engine-setup.js';
import { faceflow, json } from './helpers.js';

const require = createRequire(import.meta.url);
const demo = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'demo');
const sample1 = path.join(demo, 'sample1.jpg');
let dir: string;
let emptyGallery: string;

function hasFfmpeg(): boolean {
  try {
    execFileSync('ffmpeg', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const FFMPEG = hasFfmpeg();

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-edges-'));
  emptyGallery = path.join(dir, 'empty-gallery.json');
  await writeFile(emptyGallery, JSON.stringify({ format: 'faceflow-gallery', version: 1, model: 'faceapi-recognition', dim: 128, galleryVersion: 0, updatedAt: 0, identities: [] }));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

/** The faces the detector finds in sample1.jpg, cut out at `scale` x their box. */
async function cutFaces(scale: number, prefix: string): Promise<string[]> {
  const det = json(await faceflow(['detect', '--json', sample1]));
  const meta = await sharp(sample1).metadata();
  const out: string[] = [];
  for (const [k, f] of (det.faces as Array<{ box: { x: number; y: number; width: number; height: number } }>).entries()) {
    const side = Math.max(f.box.width, f.box.height) * scale;
    const left = Math.max(0, Math.round(f.box.x + f.box.width / 2 - side / 2));
    const top = Math.max(0, Math.round(f.box.y + f.box.height / 2 - side / 2));
    const file = path.join(dir, `${prefix}-${k}.jpg`);
    await sharp(sample1)
      .extract({ left, top, width: Math.min(meta.width! - left, Math.round(side)), height: Math.min(meta.height! - top, Math.round(side)) })
      .jpeg({ quality: 90 })
      .toFile(file);
    out.push(file);
  }
  return out;
}

describe('help', () => {
  it.each(['eval', 'models'])('faceflow %s --help lists its subcommands and exits 0', async (group) => {
    for (const flag of ['--help', '-h']) {
      const r = await faceflow([group, flag]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`usage: faceflow ${group} <subcommand>`));
      expect(r.stdout).toMatch(group === 'eval' ? /\n {2}lfw .*\n {2}det .*\n {2}seg / : /\n {2}list .*\n {2}pull /);
    }
    const none = await faceflow([group]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/expected a subcommand/);
  });

  it('help_entries_are_whole: a command shows a shared flag with all its lines or not at all', async () => {
    // the entries of the engine flags: a flag line and the continuation lines under it
    const entries: string[][] = [];
    for (const line of ENGINE_HELP) {
      if (/^ {2}-/.test(line)) entries.push([line]);
      else entries[entries.length - 1]!.push(line);
    }
    for (const cmd of ['detect', 'encode', 'enroll', 'verify', 'identify', 'segment', 'redact', 'train', 'train seg', 'run', 'eval lfw', 'eval det', 'eval seg']) {
      const r = await faceflow([...cmd.split(' '), '--help']);
      expect(r.code).toBe(0);
      const lines = r.stdout.split('\n');
      for (const entry of entries) {
        const shown = entry.map((l) => lines.includes(l));
        expect(new Set(shown).size, `faceflow ${cmd} --help shows part of the entry "${entry[0]!.trim()}"`).toBe(1);
      }
    }
    // train's --head is a head kind: the engine's "--head DIR" entry (a head to apply) is not shown, whole
    const train = await faceflow(['train', '--help']);
    expect(train.stdout).not.toMatch(/embedder name and thresholds come with it/);
    expect(train.stdout).toMatch(/--head KIND/);
  });
});

describe('flag values', () => {
  it('a_negative_number_is_a_flag_value, refused by the flag\'s range with exit 2', async () => {
    for (const args of [
      ['identify', '--gallery', emptyGallery, '--threshold', '-1', sample1],
      ['run', '--source', dir, '--gallery', emptyGallery, '--threshold', '-1'],
      ['identify', '--gallery', emptyGallery, '--margin', '-.5', sample1],
    ]) {
      const r = await faceflow(args);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).not.toMatch(/ambiguous/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/--(threshold|margin) must be >= 0, got -(1|0\.5)/);
    }
  });

  it('an_unknown_backend_is_a_usage_error (exit 2)', async () => {
    for (const args of [['detect', '--backend', 'foo', sample1], ['run', '--source', dir, '--gallery', emptyGallery, '--backend', 'foo']]) {
      const r = await faceflow(args);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/--backend must be one of auto, tensorflow, wasm, cpu; got "foo"/);
    }
  });

  it('a_directory_given_as_gallery_is_named_as_such', async () => {
    const folder = path.join(dir, 'a-folder');
    await mkdir(folder, { recursive: true });
    for (const args of [
      ['identify', '--gallery', folder, sample1],
      ['verify', '--gallery', folder, '--name', 'a', sample1],
      ['enroll', '--gallery', folder, '--name', 'a', sample1],
      ['run', '--source', sample1, '--gallery', folder],
    ]) {
      const r = await faceflow(args);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/is a directory; expected a gallery file/);
      expect(r.stderr).not.toMatch(/not found/);
    }
  });
});

describe('faces', () => {
  it('enroll_dir_follows_symlinked_person_folders', async () => {
    const [a, b] = await cutFaces(1.8, 'enroll');
    const root = path.join(dir, 'people');
    const elsewhere = path.join(dir, 'elsewhere', 'bob');
    await mkdir(path.join(root, 'alice'), { recursive: true });
    await mkdir(elsewhere, { recursive: true });
    await writeFile(path.join(root, 'alice', '1.jpg'), await readFile(a!));
    await writeFile(path.join(elsewhere, '1.jpg'), await readFile(b!));
    await symlink(elsewhere, path.join(root, 'bob'));
    const gallery = path.join(dir, 'symlinked.json');
    const r = await faceflow(['enroll', '--json', '--gallery', gallery, '--dir', root]);
    expect(r.code, r.stderr).toBe(0);
    expect(json(r).added).toEqual({ alice: 1, bob: 1 });
  });

  it('no_face_in_a_tight_crop_suggests_whole_image', async () => {
    // a quarter of the detector's box: too tight for the detector, a face all the same (YuNet, the default,
    // still finds the face in a crop of 0.3 of its box, eyes to mouth; half a box was too tight for BlazeFace)
    const [tight] = await cutFaces(0.25, 'tight');
    const r = await faceflow(['encode', tight!]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/NO_FACE: no face found in .*pass --whole-image/);
    const whole = await faceflow(['encode', '--whole-image', tight!]);
    expect(whole.code, whole.stderr).toBe(0);
  });
});

describe('faceflow run on one image', () => {
  it('run_processes_a_single_image_as_one_frame, with progress only when asked', async () => {
    const r = await faceflow(['run', '--source', sample1, '--gallery', emptyGallery, '--workers', '1', '--json', '--progress']);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(/faceflow run: (\{.*\})/.exec(r.stderr)![1]!);
    expect(summary.frames).toBe(1);
    // the faces of the photo, each its own track, confirmed by its one face
    expect(summary.events.enter).toBeGreaterThanOrEqual(1);
    expect(summary.events.exit).toBe(summary.events.enter);
    expect(r.stdout.trim().split('\n').map((l) => JSON.parse(l).type)).toContain('enter');
    // --progress: a bar on stderr although it is not a terminal
    expect(r.stderr).toMatch(/run: frames \[#+\] 1\/1/);
    // not a terminal and no --progress: no bar; a healthy run says only its summary, and no error line
    const quiet = await faceflow(['run', '--source', sample1, '--gallery', emptyGallery, '--workers', '1']);
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stderr).not.toMatch(/run: frames/);
    expect(quiet.stderr.trim().split('\n'), quiet.stderr).toHaveLength(1);
    expect(quiet.stderr).not.toMatch(/"level":"(error|fatal)"|crash/i);
  });

  it('an_unknown_persons_events_print_no_confidence', async () => {
    // every face under the quality floor: unknown, never compared (confidence 0 in the JSON)
    const r = await faceflow(['run', '--source', sample1, '--gallery', emptyGallery, '--workers', '1', '--quality-floor', '1']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n').filter((l) => / (enter|update|exit) /.test(l));
    expect(lines.length).toBeGreaterThanOrEqual(1);
    for (const l of lines) {
      expect(l).toMatch(/ unknown +not named +camera /);
      expect(l).not.toMatch(/confidence/);
    }
  });
});

describe.skipIf(!FFMPEG)('faceflow run on a short video (needs ffmpeg to make it)', () => {
  it('run_reads_every_frame_of_a_video_that_ffmpeg_decodes_while_the_models_load', async () => {
    // 2 s at 10 fps, capped to 5 fps: 10 frames, a few kB of JPEG, all written before the engine is up
    const clip = path.join(dir, 'short.mp4');
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=10:duration=2', '-pix_fmt', 'yuv420p', '-movflags', '+faststart', clip]);
    const r = await faceflow(['run', '--source', clip, '--gallery', emptyGallery, '--workers', '1', '--progress']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(/faceflow run: (\{.*\})/.exec(r.stderr)![1]!).frames).toBe(10);
    expect(r.stderr).toMatch(/run: frames \[#+\] 10\/10/);
    expect(r.stderr).not.toMatch(/warning/);
    // the first half of a longer one: ffmpeg decodes what it can, and exits 0 (the run says the file looks
    // damaged) or 1 (the run fails, saying why); either way the run says so, and ends
    const long = path.join(dir, 'long.mp4');
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=10:duration=3', '-pix_fmt', 'yuv420p', '-movflags', '+faststart', long]);
    const half = path.join(dir, 'half.mp4');
    const bytes = await readFile(long);
    await writeFile(half, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const h = await faceflow(['run', '--source', half, '--gallery', emptyGallery, '--workers', '1']);
    if (h.code === 0) expect(h.stderr).toMatch(/warning: .*half\.mp4 gave \d+ of the 15 frames its header announces: is it truncated or damaged\?/);
    else {
      expect(h.code).toBe(1);
      expect(h.stderr.trim().split('\n')).toHaveLength(1);
      expect(h.stderr).toMatch(/INVALID_ARGUMENT: source .*half\.mp4: ffmpeg exited with code/);
    }
  });
});
