/** Output files: checked before any model loads, and every write failure one INVALID_ARGUMENT line naming the file. */
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { boxJson, checkWritable, pointsJson, roundTo, writeBytes, writeRgbImage } from './output.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ff-output-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('output files', () => {
  it('an_output_in_a_missing_folder_is_refused_naming_the_folder', async () => {
    const f = path.join(dir, 'nope', 'x.png');
    await expect(checkWritable(f, 'mask')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: `cannot write mask ${f}: folder ${path.join(dir, 'nope')} does not exist` });
  });

  it('an_output_that_is_a_directory_is_refused', async () => {
    const d = path.join(dir, 'adir');
    await mkdir(d);
    await expect(checkWritable(d, 'output')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: `cannot write output ${d}: it is a directory` });
  });

  it.skipIf(process.getuid?.() === 0)('an_output_in_a_read_only_folder_is_refused', async () => {
    const d = path.join(dir, 'ro');
    await mkdir(d);
    await chmod(d, 0o500);
    await expect(checkWritable(path.join(d, 'x.png'), 'overlay')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await chmod(d, 0o700);
  });

  it('a_writable_output_passes_and_an_image_with_an_svg_over_it_is_written', async () => {
    const f = path.join(dir, 'ok.png');
    await checkWritable(f, 'overlay');
    const image = { width: 4, height: 2, data: new Uint8Array(4 * 2 * 3).fill(10) };
    await writeRgbImage(image, f, '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="2"><rect x="0" y="0" width="2" height="2" fill="#ffffff"/></svg>');
    const { data, info } = await sharp(f).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([4, 2]);
    expect(data[0]).toBe(255);
    expect(data[(4 - 1) * info.channels]).toBe(10);
  });

  it('a_failed_write_names_the_file', async () => {
    const f = path.join(dir, 'missing', 'b.bin');
    await expect(writeBytes(f, new Uint8Array(1))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(new RegExp(`^cannot write ${f}: `)) });
    await expect(writeRgbImage({ width: 1, height: 1, data: new Uint8Array(3) }, f)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('json_views_round_as_the_cli_prints_them', () => {
    expect(roundTo(0.123456)).toBe(0.1235);
    expect(boxJson({ x: 1.26, y: 2, width: 3.04, height: 4.99 })).toEqual({ x: 1.3, y: 2, width: 3, height: 5 });
    expect(pointsJson([{ x: 1.25, y: 0.04 }])).toEqual([[1.3, 0]]);
  });
});
