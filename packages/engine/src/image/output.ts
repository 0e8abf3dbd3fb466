/**
 * Writing what a command or a notebook asks for: check an output path before any model loads, write an
 * RGB image (optionally with an SVG drawn over it) or bytes, each failure one INVALID_ARGUMENT line naming
 * the file (issue 12). Also the rounding every JSON view of a result uses, so a library user gets the CLI's.
 */
import { access, constants, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { FaceflowError } from '@faceflow/shared';
import type { Point, RgbImage } from './geometry.js';

/** Fails early (before any model loads) when `file` cannot be written; `what` names it in the message. */
export async function checkWritable(file: string, what: string): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  try {
    const st = await stat(file).catch(() => undefined);
    if (st?.isDirectory()) throw new Error('it is a directory');
    const d = await stat(dir);
    if (!d.isDirectory()) throw new Error(`${dir} is not a directory`);
    await access(dir, constants.W_OK);
    if (st) await access(file, constants.W_OK);
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code === 'ENOENT' ? `folder ${dir} does not exist` : (e as Error).message;
    throw new FaceflowError('INVALID_ARGUMENT', `cannot write ${what} ${file}: ${reason}`, { cause: e });
  }
}

function cannotWrite(out: string, e: unknown): FaceflowError {
  return new FaceflowError('INVALID_ARGUMENT', `cannot write ${out}: ${(e as Error).message}`, { cause: e });
}

/** Writes `image` to `out` (format from the extension: png, jpg, webp), with `svg` drawn over it when given. */
export async function writeRgbImage(image: RgbImage, out: string, svg?: string): Promise<void> {
  try {
    const img = sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } });
    await (svg === undefined ? img : img.composite([{ input: Buffer.from(svg), top: 0, left: 0 }])).toFile(out);
  } catch (e) {
    throw cannotWrite(out, e);
  }
}

export async function writeBytes(out: string, bytes: Uint8Array): Promise<void> {
  try {
    await writeFile(out, bytes);
  } catch (e) {
    throw cannotWrite(out, e);
  }
}

/** `v` to `digits` decimals: the precision of every JSON view of a result. */
export function roundTo(v: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export function boxJson(b: { x: number; y: number; width: number; height: number }): { x: number; y: number; width: number; height: number } {
  return { x: roundTo(b.x, 1), y: roundTo(b.y, 1), width: roundTo(b.width, 1), height: roundTo(b.height, 1) };
}

export function pointsJson(points: Point[]): number[][] {
  return points.map((p) => [roundTo(p.x, 1), roundTo(p.y, 1)]);
}
