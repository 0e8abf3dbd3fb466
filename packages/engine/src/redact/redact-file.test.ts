/** Redaction of files (issue 13: out of the CLI): what is an image, and the JSON views. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePng } from '../image/image.js';
import { isImageFile, videoRedactionJson } from './redact-file.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ff-redfile-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('redaction of files', () => {
  it('an_image_is_known_by_its_magic_bytes_not_its_name', async () => {
    const png = path.join(dir, 'x.mp4');
    await writeFile(png, await encodePng({ width: 2, height: 2, data: new Uint8Array(12) }));
    const text = path.join(dir, 'y.png');
    await writeFile(text, 'not an image');
    expect(await isImageFile(png)).toBe(true);
    expect(await isImageFile(text)).toBe(false);
    await expect(isImageFile(path.join(dir, 'missing'))).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining(`cannot read ${path.join(dir, 'missing')}`) });
  });

  it('the_video_json_keeps_its_field_order', () => {
    const j = videoRedactionJson('in.mp4', 'out.mp4', { frames: 3, faces: 2, hidden: 2, held: 1, shotCuts: 0, kept: { ada: 1 }, extraPasses: 0, residual: 0 }, true);
    expect(Object.keys(j)).toEqual(['input', 'output', 'frames', 'faces', 'hidden', 'held', 'shotCuts', 'kept', 'audio', 'extraPasses', 'residual']);
  });
});
