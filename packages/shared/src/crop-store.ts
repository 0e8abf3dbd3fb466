/**
 * Where face crops live: the embedder stores a small JPEG of each face and sends its reference downstream
 * (`cropRef`, never the crop itself); alerts points identity events at the crops of enrolled people
 * (`thumbnailRef`) and deletes the crops that no event points at (privacy: a passer-by's face is not kept,
 * docs/identity-events.md). One adapter per storage; `DirCropStore` writes files under a folder and refers to
 * them by file:// URL.
 */
import { createHash } from 'node:crypto';
import { appendFile, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
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
  /**
   * Erasure (issue 15 item 3, GDPR art. 17): notes that an event naming `identity` points at `ref`, so that
   * the person's thumbnails can be found and deleted later (`eraseIdentity`). Called before the event is out.
   */
  recordThumbnail?(identity: string, ref: string): Promise<void>;
  /** Deletes every crop recorded for `identity` and the record itself; resolves with the crops deleted. */
  eraseIdentity?(identity: string): Promise<number>;
}

/**
 * Deletes every stored crop of `identity` (the thumbnails its events pointed at) from `store`; resolves with
 * how many were deleted. A store that keeps no per-identity record cannot erase: refused (INVALID_ARGUMENT),
 * never silently skipped, since an erasure that did nothing must not be reported as done.
 */
export async function eraseIdentityCrops(store: CropStore, identity: string): Promise<number> {
  if (!store.eraseIdentity) throw new FaceflowError('INVALID_ARGUMENT', 'this crop store keeps no record of whose thumbnails it holds: it cannot erase a person\'s crops');
  return store.eraseIdentity(identity);
}

/** The folder beside the crops that holds, per identity, the refs of its thumbnails (no name in clear). */
export const ERASURE_INDEX_DIR = '.erasure';

const SAFE = /[^\w.-]+/g;

export class DirCropStore implements CropStore {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = path.resolve(dir);
  }

  async put(cameraId: string, frameId: string, faceIndex: number, jpeg: Buffer): Promise<string> {
    const camera = cameraId.replace(SAFE, '_');
    // the erasure index's folder is never a camera's
    const dir = path.join(this.dir, camera === ERASURE_INDEX_DIR ? '_erasure' : camera);
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

  /**
   * The index file of an identity's thumbnails: `<dir>/.erasure/<sha256(identity)>.refs`. The name is hashed
   * so that the folder does not list who was seen (a hash of a guessed name can still be checked against it:
   * docs/security.md); the crops' own names hold camera, frame and face index, never an identity.
   */
  indexFileOf(identity: string): string {
    return path.join(this.dir, ERASURE_INDEX_DIR, `${createHash('sha256').update(identity, 'utf8').digest('hex')}.refs`);
  }

  /** Appends `ref` (one line) to the identity's index; append-only, so concurrent writers do not lose lines. */
  async recordThumbnail(identity: string, ref: string): Promise<void> {
    this.fileOf(ref); // only refs of this store: the index must never name another file to delete
    const file = this.indexFileOf(identity);
    try {
      await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      await appendFile(file, `${ref}\n`, { mode: 0o600 });
    } catch (e) {
      throw new FaceflowError('STORE_UNAVAILABLE', `cannot record a thumbnail in the erasure index ${path.dirname(file)}: ${(e as Error).message}`, { cause: e });
    }
  }

  async eraseIdentity(identity: string): Promise<number> {
    const file = this.indexFileOf(identity);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw new FaceflowError('STORE_UNAVAILABLE', `cannot read the erasure index ${file}: ${(e as Error).message}`, { cause: e });
    }
    const refs = [...new Set(text.split('\n').filter((l) => l.length > 0))];
    let deleted = 0;
    for (const ref of refs) {
      let crop: string;
      try {
        crop = this.fileOf(ref);
      } catch {
        continue; // a line this store did not write (a torn line): nothing of ours to delete
      }
      try {
        await unlink(crop);
        deleted++;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new FaceflowError('STORE_UNAVAILABLE', `cannot delete crop ${crop}: ${(e as Error).message}`, { cause: e });
      }
    }
    // the index goes last: a failure above leaves it, and the erasure can be run again
    await unlink(file).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw new FaceflowError('STORE_UNAVAILABLE', `cannot delete the erasure index ${file}: ${e.message}`, { cause: e });
    });
    return deleted;
  }
}
