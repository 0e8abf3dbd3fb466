/**
 * Where face crops live: the embedder stores a small JPEG of each face and sends its reference downstream
 * (`cropRef`, never the crop itself); alerts points identity events at the crops of enrolled people
 * (`thumbnailRef`) and deletes the crops that no event points at (privacy: a passer-by's face is not kept,
 * docs/identity-events.md). One adapter per storage; `DirCropStore` writes files under a folder and refers to
 * them by file:// URL.
 */
import { mkdir, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { FaceflowError } from './errors.js';

export interface CropStore {
  /** Stores one face crop; resolves with its reference. */
  put(cameraId: string, frameId: string, faceIndex: number, jpeg: Buffer): Promise<string>;
  /**
   * Deletes the crop `ref` refers to; a crop that is already gone is not an error (deletes are repeated
   * when a batch is redelivered). A reference this store did not make is refused (INVALID_ARGUMENT): refs
   * come from messages, and a message must never name a file to delete.
   */
  delete(ref: string): Promise<void>;
}

const SAFE = /[^\w.-]+/g;

export class DirCropStore implements CropStore {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = path.resolve(dir);
  }

  async put(cameraId: string, frameId: string, faceIndex: number, jpeg: Buffer): Promise<string> {
    const dir = path.join(this.dir, cameraId.replace(SAFE, '_'));
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, `${frameId.replace(SAFE, '_')}-${faceIndex}.jpg`);
    await writeFile(file, jpeg);
    return pathToFileURL(file).href;
  }

  /** The file of a reference this store made: a file:// URL of a .jpg one folder (the camera's) below `dir`. */
  fileOf(ref: string): string {
    let file: string;
    try {
      if (!ref.startsWith('file:')) throw new Error('not a file:// URL');
      file = fileURLToPath(ref);
    } catch (e) {
      throw new FaceflowError('INVALID_ARGUMENT', `crop reference ${JSON.stringify(ref.slice(0, 200))} is not a file:// URL of this crop store: ${(e as Error).message}`);
    }
    const rel = path.relative(this.dir, path.resolve(file));
    const parts = rel.split(path.sep);
    if (path.isAbsolute(rel) || parts.length !== 2 || parts.some((p) => p === '..' || p === '' || p.replace(SAFE, '_') !== p) || !rel.endsWith('.jpg')) {
      throw new FaceflowError('INVALID_ARGUMENT', `crop reference ${JSON.stringify(ref.slice(0, 200))} is not a crop of the store at ${this.dir}`);
    }
    return path.join(this.dir, rel);
  }

  async delete(ref: string): Promise<void> {
    const file = this.fileOf(ref);
    try {
      await unlink(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new FaceflowError('STORE_UNAVAILABLE', `cannot delete crop ${file}: ${(e as Error).message}`, { cause: e });
    }
  }
}
