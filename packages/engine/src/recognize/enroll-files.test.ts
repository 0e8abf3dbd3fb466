/** Enrolment from files (issue 13: out of the CLI): the folder layout, the largest face, and skipping. */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePng } from '../image/image.js';
import { Gallery } from '../match/gallery.js';
import type { DetectedFace } from './engine.js';
import { enrollFiles, enrollmentJobs } from './enroll-files.js';

let dir: string;
let png: Buffer;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ff-enroll-'));
  png = await encodePng({ width: 8, height: 8, data: new Uint8Array(8 * 8 * 3).fill(128) });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const face = (size: number, v: number): DetectedFace => ({ box: { x: 0, y: 0, width: size, height: size }, score: 0.9, keypoints: [], landmarks: [], embedding: new Float32Array(v === 1 ? [1, 0] : [0, 1]) }) as unknown as DetectedFace;

describe('enrollment from files', () => {
  it('every_person_folder_is_an_identity_and_a_symlinked_one_is_followed', async () => {
    const root = path.join(dir, 'people');
    await mkdir(path.join(root, 'bob'), { recursive: true });
    await mkdir(path.join(dir, 'elsewhere', 'ada'), { recursive: true });
    await writeFile(path.join(root, 'bob', '2.png'), png);
    await writeFile(path.join(root, 'bob', '1.jpg'), png);
    await writeFile(path.join(root, 'bob', 'notes.txt'), 'x');
    await writeFile(path.join(dir, 'elsewhere', 'ada', 'a.webp'), png);
    await symlink(path.join(dir, 'elsewhere', 'ada'), path.join(root, 'ada'));
    await writeFile(path.join(root, 'stray.png'), png);
    expect(await enrollmentJobs(root)).toEqual([
      { name: 'ada', file: path.join(root, 'ada', 'a.webp') },
      { name: 'bob', file: path.join(root, 'bob', '1.jpg') },
      { name: 'bob', file: path.join(root, 'bob', '2.png') },
    ]);
  });

  it('a_folder_without_images_or_that_cannot_be_read_is_one_line', async () => {
    await mkdir(path.join(dir, 'empty', 'x'), { recursive: true });
    await expect(enrollmentJobs(path.join(dir, 'empty'))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: `no images found under ${path.join(dir, 'empty')}/<person>/` });
    await expect(enrollmentJobs(path.join(dir, 'nope'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('the_largest_face_is_enrolled_and_a_file_without_one_fails_or_is_skipped_as_asked', async () => {
    const f = path.join(dir, 'one.png');
    await writeFile(f, png);
    const answers = [[face(10, 1), face(30, 2)], []];
    const engine = { run: async () => [answers.shift()!] };
    const g = new Gallery('m', 2);
    const skipped: string[] = [];
    const r = await enrollFiles(engine, g, [{ name: 'ada', file: f }, { name: 'bob', file: f }], { skipFailures: true, onSkip: (file) => skipped.push(file), concurrency: 1 });
    expect(r.added).toEqual({ ada: 1 });
    expect(r.skipped).toEqual([{ file: f, reason: `no face found in ${f}` }]);
    expect(skipped).toEqual([f]);
    expect(g.size).toBe(1);
    const none = { run: async () => [[]] };
    await expect(enrollFiles(none, new Gallery('m', 2), [{ name: 'x', file: f }], { noFace: (file) => new Error(`custom ${file}`) })).rejects.toThrow(`custom ${f}`);
  });
});
