/**
 * `faceflow redact` on files, less the video codec (issue 13: out of the CLI): whether an input is an image,
 * an image file's redaction written out, and the JSON views of both results. The video frames come from the
 * caller (the media adapter), as redactVideo takes them.
 */
import { open } from 'node:fs/promises';
import { FaceflowError } from '@faceflow/shared';
import { decodeImage, sniffImageFormat } from '../image/image.js';
import { boxJson, writeRgbImage } from '../image/output.js';
import type { RedactStyle } from './redact.js';
import { type ImageRedaction, type RedactionAnalyser, type VideoRedaction, redactFaces } from './video.js';

/** Whether `file` is an image by its magic bytes (JPEG, PNG, WebP); NOT_FOUND when it cannot be read. */
export async function isImageFile(file: string): Promise<boolean> {
  const head = Buffer.alloc(64);
  try {
    const fh = await open(file, 'r');
    try {
      await fh.read(head, 0, 64, 0);
    } finally {
      await fh.close();
    }
  } catch (e) {
    throw new FaceflowError('NOT_FOUND', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  return ['jpeg', 'png', 'webp'].includes(sniffImageFormat(head) ?? '');
}

export function imageRedactionJson(input: string, output: string, r: ImageRedaction) {
  return {
    input,
    output,
    faces: r.faces.length,
    hidden: r.hidden,
    kept: r.kept.map((f) => ({ identity: f.identity, box: boxJson(f.box) })),
    extraPasses: r.extraPasses,
    residual: r.residual,
  };
}

/** Redacts the image file `input` into `output` (png, jpg, webp); its JSON view. */
export async function redactImageFile(input: string, output: string, analyser: RedactionAnalyser, options: { style?: RedactStyle } = {}): Promise<ReturnType<typeof imageRedactionJson>> {
  const r = await redactFaces(await decodeImage(input), analyser, options);
  await writeRgbImage(r.image, output);
  return imageRedactionJson(input, output, r);
}

export function videoRedactionJson(input: string, output: string, r: VideoRedaction, audio: boolean) {
  return { input, output, frames: r.frames, faces: r.faces, hidden: r.hidden, held: r.held, shotCuts: r.shotCuts, kept: r.kept, audio, extraPasses: r.extraPasses, residual: r.residual };
}
