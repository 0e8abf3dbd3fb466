/**
 * Fixtures of the pipeline tests, made on the fly from the group photo that ships with npm
 * (@vladmandic/face-api's demo/sample1.jpg, three women): a 2.5 s clip of it (ffmpeg -loop 1) and a gallery
 * with one of them, "alice", enrolled from a crop of her face by `faceflow enroll`. The other two are
 * strangers: the pipeline must call them unknown, never alice. The clip leaves out the photo's left 300 px
 * (x < 300, 116 px left of alice's face): in that strip's dark lower part YuNet, the default detector, takes
 * a blob for a face (score 0.73; cropped and looked at by eye: no face), which would be a fourth track of no
 * person; engine.test.ts counts that false detection, these tests are about the three people.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = path.join(ROOT, 'packages/cli/dist/main.js');
export const SAMPLE = path.join(ROOT, 'node_modules/@vladmandic/face-api/demo/sample1.jpg');
/** The part of SAMPLE a clip shows (ffmpeg filter): all but the left 300 px, see the module comment; at 960 px wide, 960x758. */
export const SAMPLE_CROP = 'crop=1620:ih:300:0';

export interface Fixture {
  dir: string;
  clip: string;
  gallery: string;
  aliceEmbedding: number[];
}

let made: Promise<Fixture> | undefined;

export function fixture(): Promise<Fixture> {
  made ??= (async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-pipeline-'));
    const clip = path.join(dir, 'clip.mp4');
    const crop = path.join(dir, 'alice.jpg');
    const gallery = path.join(dir, 'gallery.json');
    // the left-hand woman's face (box ~367,380 211x211 in the 1920x1280 photo), with some margin
    await run('ffmpeg', ['-y', '-loglevel', 'error', '-i', SAMPLE, '-vf', 'crop=400:420:270:280', crop]);
    await run('ffmpeg', ['-y', '-loglevel', 'error', '-loop', '1', '-i', SAMPLE, '-t', '2.5', '-r', '10', '-vf', `${SAMPLE_CROP},scale=960:-2`, '-pix_fmt', 'yuv420p', '-c:v', 'libx264', clip]);
    await run('node', [CLI, 'enroll', '--gallery', gallery, '--name', 'alice', '--workers', '1', crop], { cwd: ROOT, timeout: 120_000 });
    const g = JSON.parse(await readFile(gallery, 'utf8')) as { identities: { name: string; embeddings: number[][] }[] };
    return { dir, clip, gallery, aliceEmbedding: g.identities[0]!.embeddings[0]! };
  })();
  return made;
}
