/**
 * Small face crops: the `cropRef` of a Face (never the crop itself on the bus). A crop store keeps a JPEG of
 * each face somewhere a person can look at it later; the reference goes downstream (thumbnails of identity
 * events). `DirCropStore` writes files under a folder (file:// references).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { encodeJpeg, resizeImage, type RgbImage } from '@faceflow/engine';

export interface CropStore {
  /** Stores one face crop; resolves with its reference. */
  put(cameraId: string, frameId: string, faceIndex: number, jpeg: Buffer): Promise<string>;
}

const SAFE = /[^\w.-]+/g;

export class DirCropStore implements CropStore {
  constructor(readonly dir: string) {}

  async put(cameraId: string, frameId: string, faceIndex: number, jpeg: Buffer): Promise<string> {
    const dir = path.join(this.dir, cameraId.replace(SAFE, '_'));
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, `${frameId.replace(SAFE, '_')}-${faceIndex}.jpg`);
    await writeFile(file, jpeg);
    return pathToFileURL(file).href;
  }
}

/** Cuts the box (grown by `scale`, clipped to the image) and scales it to `side` px, as JPEG. */
export async function faceCropJpeg(image: RgbImage, box: { x: number; y: number; width: number; height: number }, side = 96, scale = 1.3): Promise<Buffer> {
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  const half = (Math.max(box.width, box.height) * scale) / 2;
  const x0 = Math.max(0, Math.floor(cx - half));
  const y0 = Math.max(0, Math.floor(cy - half));
  const x1 = Math.min(image.width, Math.ceil(cx + half));
  const y1 = Math.min(image.height, Math.ceil(cy + half));
  const w = Math.max(1, x1 - x0);
  const h = Math.max(1, y1 - y0);
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    const src = ((y0 + y) * image.width + x0) * 3;
    data.set(image.data.subarray(src, src + w * 3), y * w * 3);
  }
  const k = side / Math.max(w, h);
  const small = await resizeImage({ data, width: w, height: h }, Math.max(1, Math.round(w * k)), Math.max(1, Math.round(h * k)), { kernel: 'linear' });
  return encodeJpeg(small, 80);
}
