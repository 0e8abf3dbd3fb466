/**
 * Issue 5's done-when: "a trained head loaded into `faceflow run` changes nothing else in the pipeline".
 * A tiny head is trained here by `faceflow train` (six people: the faces of two face-api demo photos, three
 * variants each), a gallery is enrolled through it, and the same clip as run.test.ts goes through
 * `faceflow run` with and without `--head`: the same stages and events (every track entered and exited, at
 * the same times, the enrolled person named, nobody misnamed), only the model name and the threshold differ,
 * and the threshold is the head's own distance at FAR 1e-3 from head.json. A gallery enrolled without the head
 * is refused with the head, and one enrolled with it is refused without it. identify and verify take the
 * head's two thresholds; a head written before heads recorded the FAR one falls back, with a warning.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { IdentityEventSchema } from '@faceflow/shared';
import { CLI, fixture, ROOT, SAMPLE, type Fixture } from './fixtures.js';

const exec = promisify(execFile);

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function faceflow(args: string[]): Promise<Result> {
  try {
    const { stdout, stderr } = await exec('node', [CLI, ...args], { cwd: ROOT, timeout: 120_000, env: { ...process.env, FACEFLOW_BACKEND: 'wasm' } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    if (typeof x.code !== 'number') throw e;
    return { code: x.code, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
  }
}

/**
 * Face boxes (x, y, side) of the demo photos, as `faceflow detect` finds them; the crops are 1.8 x the box, so
 * a detector that moves a box by a few pixels still finds the face in its crop.
 */
const DEMO_FACES: Record<string, Array<[number, number, number]>> = {
  'sample1.jpg': [[373, 382, 213], [1472, 244, 175], [810, 458, 198]],
  'sample3.jpg': [[562, 360, 238], [1049, 246, 254], [1480, 325, 243]],
};

async function trainingSet(root: string): Promise<void> {
  for (const [photo, boxes] of Object.entries(DEMO_FACES)) {
    const bytes = await readFile(path.join(path.dirname(SAMPLE), photo));
    const meta = await sharp(bytes).metadata();
    for (const [i, [x, y, w]] of boxes.entries()) {
      const side = Math.round(w * 1.8);
      const left = Math.max(0, Math.round(x + w / 2 - side / 2));
      const top = Math.max(0, Math.round(y + w / 2 - side / 2));
      const crop = await sharp(bytes).extract({ left, top, width: Math.min(side, meta.width! - left), height: Math.min(side, meta.height! - top) }).jpeg().toBuffer();
      const dir = path.join(root, `${photo.replace('.jpg', '')}_${i}`);
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, 'a.jpg'), crop);
      await writeFile(path.join(dir, 'b.jpg'), await sharp(crop).flop().jpeg().toBuffer());
      await writeFile(path.join(dir, 'c.jpg'), await sharp(crop).modulate({ brightness: 0.7 }).jpeg({ quality: 60 }).toBuffer());
    }
  }
}

type Event = Record<string, unknown> & { type: string; identity: string | null; trackId: string };

function events(r: Result): Event[] {
  const out = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Event);
  for (const e of out) IdentityEventSchema.validate(e);
  return out;
}

function summary(r: Result): Record<string, unknown> {
  const line = r.stderr.split('\n').find((l) => l.startsWith('faceflow run: {'));
  expect(line, r.stderr).toBeDefined();
  return JSON.parse(line!.slice('faceflow run: '.length)) as Record<string, unknown>;
}

/** What must not change with a head: the events, less the track ids (random per run) and confidences. */
const shape = (es: Event[]): string[] => es.map((e) => `${e.type} ${e.identity} ${e.cameraId} ${e.startOffsetMs}-${e.endOffsetMs}`).sort();

let f: Fixture;
let head: string;
let headMeta: { threshold: number; distanceAtFar1e3: number; name: string; weightsSha256: string };
let headModel: string;
let headGallery: string;

beforeAll(async () => {
  f = await fixture();
  const data = path.join(f.dir, 'head-people');
  await trainingSet(data);
  head = path.join(f.dir, 'head');
  const t = await faceflow(['train', '--data', data, '--out', head, '--epochs', '2', '--p', '4', '--k', '3', '--val-fraction', '0.34', '--seed', '3', '--workers', '1', '--no-cache', '--no-progress', '--json', '--name', 'lobby']);
  expect(t.code, t.stderr).toBe(0);
  headMeta = JSON.parse(await readFile(path.join(head, 'head.json'), 'utf8'));
  headModel = `faceapi-recognition+head:lobby@${headMeta.weightsSha256.slice(0, 8)}`;
  expect(JSON.parse(t.stdout).embedder).toBe(headModel);
  headGallery = path.join(f.dir, 'gallery-head.json');
  const e = await faceflow(['enroll', '--gallery', headGallery, '--name', 'alice', '--workers', '1', '--head', head, path.join(f.dir, 'alice.jpg')]);
  expect(e.code, e.stderr).toBe(0);
}, 180_000);

describe('a trained head in faceflow run', () => {
  it('head.json carries both thresholds: the accuracy-optimal one and the distance at FAR 1e-3 (never above it)', () => {
    expect(headMeta.threshold).toBeGreaterThan(0);
    expect(headMeta.distanceAtFar1e3).toBeGreaterThan(0);
    expect(headMeta.distanceAtFar1e3).toBeLessThanOrEqual(headMeta.threshold);
    // two validation identities x three images: 9 impostor pairs, too few to resolve 1e-3, and it says so
    expect(headMeta).toMatchObject({ thresholdSource: 'validation-identities', far: { impostorPairs: 9, resolved: false } });
  });

  it('changes nothing else: the same events from the same clip; only the model and its threshold differ', async () => {
    const args = ['run', '--source', f.clip, '--json', '--fps', '4', '--workers', '1', '--camera', 'lobby'];
    const [base, withHead] = [await faceflow([...args, '--gallery', f.gallery]), await faceflow([...args, '--gallery', headGallery, '--head', head])];
    expect(base.code, base.stderr).toBe(0);
    expect(withHead.code, withHead.stderr).toBe(0);
    const [b, h] = [events(base), events(withHead)];
    for (const es of [b, h]) {
      const enters = es.filter((e) => e.type === 'enter');
      expect(enters.filter((e) => e.identity === 'alice')).toHaveLength(1);
      expect(enters.filter((e) => e.identity === null)).toHaveLength(2);
      expect(new Set(es.filter((e) => e.type === 'exit').map((e) => e.trackId))).toEqual(new Set(enters.map((e) => e.trackId)));
    }
    expect(shape(h)).toEqual(shape(b));
    const [sb, sh] = [summary(base), summary(withHead)];
    expect(sb).toMatchObject({ frames: 10, model: 'faceapi-recognition', threshold: 0.3805, thresholdSource: 'calibration-far-1e-3' });
    expect(sh).toMatchObject({ frames: 10, model: headModel, threshold: headMeta.distanceAtFar1e3, thresholdSource: 'head-far-1e-3' });
    const { model: _m1, threshold: _t1, thresholdSource: _s1, ...restBase } = sb;
    const { model: _m2, threshold: _t2, thresholdSource: _s2, ...restHead } = sh;
    expect(restHead).toEqual(restBase);
    // the one warning a head brings is the clustering's: a head records no FAR-1e-4 distance (issue 14)
    expect(withHead.stderr.split('\n').filter((l) => /warning/.test(l) && !/clustering groups strangers at its FAR-1e-3 distance/.test(l))).toEqual([]);
  }, 120_000);

  it('refuses a gallery of the other kind, before any model loads, saying what to do', async () => {
    const a = await faceflow(['run', '--source', f.clip, '--gallery', f.gallery, '--head', head, '--workers', '1']);
    expect(a.code).toBe(1);
    expect(a.stderr.trim().split('\n')).toHaveLength(1);
    expect(a.stderr).toContain(`GALLERY_FORMAT: ${f.gallery} holds "faceapi-recognition" embeddings; this engine makes "${headModel}" embeddings`);
    expect(a.stderr).toMatch(/enrolled without a projection head .*: enroll the gallery again with this --head, or drop --head/);
    const b = await faceflow(['run', '--source', f.clip, '--gallery', headGallery, '--workers', '1']);
    expect(b.code).toBe(1);
    expect(b.stderr).toContain(`GALLERY_FORMAT: ${headGallery} holds "${headModel}" embeddings; this engine makes "faceapi-recognition" embeddings`);
    expect(b.stderr).toMatch(/enrolled through the projection head "lobby" \(weights [0-9a-f]{8}\.\.\.\): pass --head with that head's folder/);
    const c = await faceflow(['identify', '--gallery', headGallery, '--json', path.join(f.dir, 'alice.jpg')]);
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/GALLERY_FORMAT: .*pass --head with that head's folder/);
  }, 60_000);

  it("identify uses the head's FAR-1e-3 distance, verify its accuracy-optimal threshold; an older head falls back, with a warning", async () => {
    const photo = path.join(f.dir, 'alice.jpg');
    const id = await faceflow(['identify', '--gallery', headGallery, '--head', head, '--workers', '1', '--json', photo]);
    expect(id.code, id.stderr).toBe(0);
    expect(JSON.parse(id.stdout)).toMatchObject({ threshold: headMeta.distanceAtFar1e3, faces: [{ identity: 'alice' }] });
    const v = await faceflow(['verify', '--gallery', headGallery, '--head', head, '--name', 'alice', '--workers', '1', '--json', photo]);
    expect(v.code, v.stderr).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ threshold: headMeta.threshold, match: true });
    // the same head as written before heads recorded distanceAtFar1e3 (same weights, so the same gallery fits)
    const old = path.join(f.dir, 'head-old');
    await cp(head, old, { recursive: true });
    const { distanceAtFar1e3: _d, far: _f, ...oldMeta } = JSON.parse(await readFile(path.join(head, 'head.json'), 'utf8'));
    await writeFile(path.join(old, 'head.json'), JSON.stringify(oldMeta));
    const o = await faceflow(['identify', '--gallery', headGallery, '--head', old, '--workers', '1', '--json', photo]);
    expect(o.code, o.stderr).toBe(0);
    expect(JSON.parse(o.stdout).threshold).toBe(headMeta.threshold);
    expect(o.stderr).toMatch(/warning: the projection head of ".*" records no distance at FAR 1e-3 .*identify uses its accuracy-optimal threshold/);
  }, 60_000);
});
