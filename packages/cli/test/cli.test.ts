/**
 * The `faceflow` CLI end to end: every command's --help, bad input giving one clear line and a non-zero
 * exit (never a crash or a hang), and the notebook's scenario (enroll, verify, reject an impostor, identify).
 */
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import sharp from 'sharp';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { faceflow, json } from './helpers.js';

const require = createRequire(import.meta.url);
const demo = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'demo');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-cli-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('faceflow --help', () => {
  const commands = ['detect', 'encode', 'enroll', 'verify', 'identify', 'eval lfw', 'eval det', 'models list', 'models pull'];
  it.each(commands)('faceflow %s --help prints usage and exits 0', async (cmd) => {
    const r = await faceflow([...cmd.split(' '), '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/usage: faceflow/);
    expect(r.stdout).toMatch(/--json/);
  });
  it('an unknown command or flag is a usage error (exit 2) naming it', async () => {
    const a = await faceflow(['frobnicate']);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/unknown command "frobnicate"/);
    const b = await faceflow(['detect', '--frob', 'x.jpg']);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/--frob/);
    const c = await faceflow(['eval', 'lfw', '--images', dir, '--pairs', 'p.txt', '--limit', 'lots']);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/--limit must be an integer/);
  });
});

describe('an unknown runtime name is a usage error (issue 11)', () => {
  it('unknown_runtime_exits_2_with_one_line_naming_the_accepted_names', async () => {
    const img = path.join(demo, 'sample1.jpg');
    const a = await faceflow(['detect', '--runtime', 'tensorrt', img]);
    expect(a.code).toBe(2);
    expect(a.stderr.trim().split('\n')).toHaveLength(1);
    expect(a.stderr).toContain('unknown runtime "tensorrt" (--runtime); use one of: auto, onnx, tfjs');
    expect(a.stdout).toBe('');
    process.env.FACEFLOW_RUNTIME = 'ort';
    const b = await faceflow(['encode', img]).finally(() => delete process.env.FACEFLOW_RUNTIME);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('unknown runtime "ort" (FACEFLOW_RUNTIME)');
  });
});

describe('eval det reports the detector, its runtime, raw and corrected figures (issue 11)', () => {
  it('eval_det_fit_boxes_stores_a_correction_that_later_runs_apply_and_raw_figures_stay_reported', async () => {
    const images = path.join(dir, 'det-images');
    await import('node:fs/promises').then((fs) => fs.mkdir(images, { recursive: true }));
    await writeFile(path.join(images, 'sample1.jpg'), await readFile(path.join(demo, 'sample1.jpg')));
    // the three faces of sample1 as YuNet draws them, widened 1.4x and heightened 1.2x about the centre
    const faces = [[420, 361, 176, 238], [835, 432, 203, 227], [1465, 202, 233, 226]];
    const lines = faces.map(([x, y, w, h]) => {
      const cx = x! + w! / 2, cy = y! + h! / 2, W = w! * 1.4, H = h! * 1.2;
      return `sample1.jpg ${cx - W / 2} ${cy - H / 2} ${cx + W / 2} ${cy + H / 2}`;
    });
    const boxes = path.join(dir, 'det-boxes.txt');
    await writeFile(boxes, `${lines.join('\n')}\n`);
    const store = path.join(dir, 'box-corrections.json');
    // no --detector: YuNet is the default detector (issue 11), so the default command reports on it
    const args = ['eval', 'det', '--images', images, '--boxes', boxes, '--min-face', '20', '--workers', '1', '--box-corrections', store, '--iou', '0.7', '--json'];
    const fit = await faceflow([...args, '--fit-boxes']);
    expect(fit.code, fit.stderr).toBe(0);
    const a = json(fit);
    expect(a).toMatchObject({ detector: 'yunet-2023mar', runtime: 'onnx', provider: 'cpu', recall: 1, falsePositivesPerImage: 0 });
    expect(a.raw.recall).toBe(0);
    expect(typeof a.msPerImage).toBe('number');
    expect(a.boxCorrection.widthScale).toBeGreaterThan(1.25);
    expect(a.boxCorrection.widthScale).toBeLessThan(1.55);
    const stored = JSON.parse(await readFile(store, 'utf8'));
    expect(stored.detectors['yunet-2023mar'].widthScale).toBe(a.boxCorrection.widthScale);
    // a later run without --fit-boxes applies the stored correction
    const again = json(await faceflow(args));
    expect(again.recall).toBe(1);
    expect(again.boxCorrection.source).toMatch(/^stored/);
    expect(again.atMaxFalsePositives.corrected.recall).toBe(1);
  });
});

describe('bad input gives one clear line and exit 1', () => {
  it('a truncated JPEG', async () => {
    const jpeg = await readFile(path.join(demo, 'sample1.jpg'));
    const f = path.join(dir, 'truncated.jpg');
    await writeFile(f, jpeg.subarray(0, Math.floor(jpeg.length / 3)));
    const r = await faceflow(['detect', f]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/INVALID_IMAGE: .*truncated/i);
  });

  it('a 20000x20000 PNG is refused before it is decoded', async () => {
    // a PNG whose header says 20000x20000 RGB (1.2 GB once decoded), with a few bytes of deflated rows
    const chunk = (type: string, data: Buffer): Buffer => {
      const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
      const len = Buffer.alloc(4);
      len.writeUInt32BE(data.length);
      const crc = Buffer.alloc(4);
      crc.writeUInt32BE(zlib.crc32(td) >>> 0);
      return Buffer.concat([len, td, crc]);
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(20000, 0);
    ihdr.writeUInt32BE(20000, 4);
    ihdr[8] = 8; // bit depth
    ihdr[9] = 2; // RGB
    const png = Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk('IHDR', ihdr),
      chunk('IDAT', zlib.deflateSync(Buffer.alloc(60001 * 4))),
      chunk('IEND', Buffer.alloc(0)),
    ]);
    const f = path.join(dir, 'huge.png');
    await writeFile(f, png);
    const r = await faceflow(['detect', '--json', f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/IMAGE_TOO_LARGE: .*20000x20000/);
    expect(json(r)).toMatchObject({ error: { code: 'IMAGE_TOO_LARGE', retriable: false } });
  });

  it('a text file named .jpg', async () => {
    const f = path.join(dir, 'notes.jpg');
    await writeFile(f, 'this is not an image\n');
    const r = await faceflow(['encode', f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/UNSUPPORTED_FORMAT/);
  });

  it('an image with no face', async () => {
    const f = path.join(dir, 'sky.png');
    await sharp({ create: { width: 300, height: 200, channels: 3, background: { r: 100, g: 160, b: 230 } } }).png().toFile(f);
    const r = await faceflow(['encode', f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/NO_FACE: no face found/);
    const d = await faceflow(['detect', '--json', f]);
    expect(d.code).toBe(0);
    expect(json(d).faces).toEqual([]);
  });

  it('a missing file, an empty gallery and an unknown name', async () => {
    const missing = await faceflow(['detect', path.join(dir, 'nope.jpg')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/NOT_FOUND/);
    const empty = path.join(dir, 'empty.json');
    await writeFile(empty, JSON.stringify({ format: 'faceflow-gallery', version: 1, model: 'faceapi-recognition', dim: 128, galleryVersion: 0, updatedAt: 0, identities: [] }));
    const r = await faceflow(['identify', '--gallery', empty, path.join(demo, 'sample1.jpg')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/GALLERY_EMPTY/);
    const v = await faceflow(['verify', '--gallery', empty, '--name', 'nobody', path.join(demo, 'sample1.jpg')]);
    expect(v.code).toBe(1);
    expect(v.stderr).toMatch(/NOT_FOUND: no identity "nobody"/);
    const corrupt = path.join(dir, 'corrupt.json');
    await writeFile(corrupt, '{"format":"something-else"}');
    const c = await faceflow(['identify', '--gallery', corrupt, path.join(demo, 'sample1.jpg')]);
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/GALLERY_FORMAT/);
  });
});

describe("the notebook's scenario from the CLI", () => {
  it('enrolls a dozen people from one photo each; a new photo verifies, an impostor is rejected, identify names the person', async () => {
    // 22 people in the six group photos: cut each face out once to enroll, and once differently
    // (larger margin, mirrored, darker, smaller, re-encoded) as the "new photo"
    const det = await Promise.all([1, 2, 3, 4, 5, 6].map(async (i) => ({ i, r: json(await faceflow(['detect', '--json', path.join(demo, `sample${i}.jpg`)])) })));
    const people: Array<{ name: string; enrollFile: string; probeFile: string; confident: boolean }> = [];
    for (const { i, r } of det) {
      const src = path.join(demo, `sample${i}.jpg`);
      const meta = await sharp(src).metadata();
      for (const [k, f] of (r.faces as Array<{ box: { x: number; y: number; width: number; height: number }; score: number }>).entries()) {
        const cut = async (scale: number, size: number, out: string, t?: (s: sharp.Sharp) => sharp.Sharp): Promise<void> => {
          const side = Math.max(f.box.width, f.box.height) * scale;
          const left = Math.max(0, Math.round(f.box.x + f.box.width / 2 - side / 2));
          const top = Math.max(0, Math.round(f.box.y + f.box.height / 2 - side / 2));
          let s = sharp(src).extract({ left, top, width: Math.min(meta.width! - left, Math.round(side)), height: Math.min(meta.height! - top, Math.round(side)) }).resize(size, size);
          if (t) s = t(s);
          await s.jpeg({ quality: 80 }).toFile(out);
        };
        const name = `person-${i}-${k}`;
        const enrollFile = path.join(dir, `${name}.jpg`);
        const probeFile = path.join(dir, `${name}-new.jpg`);
        await cut(1.8, 200, enrollFile);
        await cut(2.4, 160, probeFile, (s) => s.flop().modulate({ brightness: 0.85 }));
        people.push({ name, enrollFile, probeFile, confident: f.score >= 0.8 });
      }
    }
    expect(people.length).toBeGreaterThanOrEqual(12);
    const gallery = path.join(dir, 'people.json');
    const auditLog = path.join(dir, 'audit.jsonl');
    // every confident detection (score >= 0.8) enrols; a less confident one may be no face at all (YuNet, the
    // default detector, takes a dark blob in sample1 for a face at 0.73: looked at by eye), and the
    // enrolment of its crop is then the one-line NO_FACE, never a template of something else
    const enrolled: typeof people = [];
    for (const p of people) {
      const r = await faceflow(['enroll', '--gallery', gallery, '--name', p.name, p.enrollFile], 120_000, { FACEFLOW_AUDIT_LOG: auditLog });
      if (r.code === 0) enrolled.push(p);
      else {
        expect(p.confident, r.stderr).toBe(false);
        expect(r.stderr).toMatch(/NO_FACE/);
      }
    }
    expect(enrolled.length).toBeGreaterThanOrEqual(people.length - 1);
    // issue 15: every enrolment is on the audit trail, a refused one too, naming the person and never holding the template
    const audit = (await readFile(auditLog, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(audit.map((e) => [e.action, e.outcome, e.identity])).toEqual(people.map((p) => ['gallery.enroll', enrolled.includes(p) ? 'ok' : 'failed', p.name]));
    people.splice(0, people.length, ...enrolled);
    expect(JSON.parse(await readFile(gallery, 'utf8')).identities).toHaveLength(people.length);
    expect(JSON.stringify(audit)).not.toMatch(/embedding/);
    const alice = people[0]!;
    const bob = people[5]!;
    const genuine = json(await faceflow(['verify', '--json', '--gallery', gallery, '--name', alice.name, alice.probeFile]));
    expect(genuine).toMatchObject({ name: alice.name, match: true });
    const impostor = json(await faceflow(['verify', '--json', '--gallery', gallery, '--name', alice.name, bob.probeFile]));
    expect(impostor).toMatchObject({ name: alice.name, match: false });
    expect(impostor.distance).toBeGreaterThan(genuine.distance);
    let named = 0;
    for (const p of people) {
      const r = json(await faceflow(['identify', '--json', '--gallery', gallery, p.probeFile]));
      // the probe's person is the face at its centre; YuNet also finds a neighbour cut by the crop's edge in
      // a few probes (BlazeFace did not), which must not be named as the probe's person either
      type F = { identity: string | null; box: { x: number; y: number; width: number; height: number } };
      const faces = r.faces as F[];
      expect(faces.length).toBeGreaterThanOrEqual(1);
      const off = (f: F) => Math.hypot(f.box.x + f.box.width / 2 - 80, f.box.y + f.box.height / 2 - 80);
      const [centre, ...others] = [...faces].sort((a, b) => off(a) - off(b));
      expect(off(centre!)).toBeLessThan(30);
      // never the wrong person; unknown is allowed but rare
      expect([p.name, null]).toContain(centre!.identity);
      for (const o of others) expect(o.identity).not.toBe(p.name);
      if (centre!.identity === p.name) named++;
    }
    expect(named).toBeGreaterThanOrEqual(people.length - 2);
  }, 600_000);
});
