import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareSource } from './open-source.js';

describe('prepareSource', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-open-source-'));
    for (const n of ['a', 'b', 'c', 'd']) await writeFile(path.join(dir, `${n}.jpg`), 'not decoded here');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('a_missing_source_is_not_found_before_anything_opens', async () => {
    await expect(prepareSource({ source: path.join(dir, 'nope'), cameraId: 'c' })).rejects.toMatchObject({ code: 'NOT_FOUND', message: `source not found: ${path.join(dir, 'nope')}` });
  });

  it('a_one_image_source_is_checked_before_it_is_taken', async () => {
    const checked: string[] = [];
    const p = await prepareSource({ source: path.join(dir, 'a.jpg'), cameraId: 'c', checkImage: async (f) => void checked.push(f) });
    expect([p.kind, p.live, checked]).toEqual(['image', false, [path.join(dir, 'a.jpg')]]);
  });

  it('a_source_that_gave_under_half_the_frames_it_announced_is_reported_unless_it_was_stopped', async () => {
    const p = await prepareSource({ source: dir, cameraId: 'c' });
    expect(p.kind).toBe('folder');
    expect(p.report(1, false)).toEqual({ errors: [] }); // not opened yet: nothing announced
    const src = await p.open();
    expect(src.frames).toBe(4);
    expect(p.report(1, false).warning).toBe(`${dir} gave 1 of the 4 frames its header announces: is it truncated or damaged?`);
    expect(p.report(1, true)).toEqual({ errors: [] });
    expect(p.report(4, false)).toEqual({ errors: [] });
    src.close();
  });
});
