/**
 * A gallery in one JSON file (the CLI's gallery, and small single-host deployments):
 *
 *     {"format":"faceflow-gallery","version":1,"galleryVersion":7,"updatedAt":1764390000000,
 *      "identities":[{"id":"alice","embeddings":[[...],[...]],"metadata":{},"updatedAt":1764390000000}]}
 *
 * `version` is the file format's version; `galleryVersion` the store version (see types.ts). Every change
 * writes the whole file to a temporary file in the same directory, fsyncs it and renames it over the old
 * one, so a reader (or a crash) sees the old or the new gallery, never half of one. Only this process's
 * listeners are notified; another process sees changes when it re-opens the file.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { FaceflowError } from '../errors.js';
import type { Logger } from '../logger.js';
import { MemoryGalleryStore, type GalleryState } from './memory-gallery-store.js';
import { checkEmbeddings, checkIdentityId, checkMetadata, type GalleryIdentity, type GallerySnapshot } from './types.js';

export const GALLERY_FILE_FORMAT = 'faceflow-gallery';
export const GALLERY_FILE_VERSION = 1;

export interface GalleryFile {
  format: typeof GALLERY_FILE_FORMAT;
  version: typeof GALLERY_FILE_VERSION;
  galleryVersion: number;
  updatedAt: number;
  identities: GalleryIdentity[];
}

function formatError(path: string, problem: string, cause?: unknown): FaceflowError {
  return new FaceflowError('GALLERY_FORMAT', `gallery file ${path}: ${problem}`, {
    ...(cause === undefined ? {} : { cause }),
    details: { path },
  });
}

/** Parses and checks the content of a gallery file. */
export function parseGalleryFile(text: string, path = '(gallery)'): GallerySnapshot {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw formatError(path, 'is not valid JSON', e);
  }
  const d = doc as Partial<GalleryFile> | null;
  if (typeof d !== 'object' || d === null || d.format !== GALLERY_FILE_FORMAT) throw formatError(path, `"format" must be "${GALLERY_FILE_FORMAT}"`);
  if (d.version !== GALLERY_FILE_VERSION) {
    throw formatError(path, `format version ${JSON.stringify(d.version)} is not supported (this build reads version ${GALLERY_FILE_VERSION})`);
  }
  if (!Number.isSafeInteger(d.galleryVersion) || (d.galleryVersion as number) < 0) throw formatError(path, '"galleryVersion" must be an integer >= 0');
  if (!Array.isArray(d.identities)) throw formatError(path, '"identities" must be an array');
  const seen = new Set<string>();
  let dim: number | undefined;
  const identities = d.identities.map((raw: unknown, i): GalleryIdentity => {
    const r = raw as Partial<GalleryIdentity> | null;
    try {
      const id = checkIdentityId(r?.id);
      if (seen.has(id)) throw formatError(path, `identity ${JSON.stringify(id)} appears twice`);
      seen.add(id);
      dim = checkEmbeddings(id, r?.embeddings, dim);
      return { id, embeddings: r!.embeddings!, metadata: checkMetadata(r!.metadata), updatedAt: Number(r!.updatedAt ?? 0) };
    } catch (e) {
      if (e instanceof FaceflowError && e.code === 'GALLERY_FORMAT') throw e;
      throw formatError(path, `identities[${i}]: ${(e as Error).message}`, e);
    }
  });
  return { version: d.galleryVersion as number, identities };
}

export function serializeGallery(state: GalleryState): string {
  const file: GalleryFile = {
    format: GALLERY_FILE_FORMAT,
    version: GALLERY_FILE_VERSION,
    galleryVersion: state.version,
    updatedAt: Date.now(),
    identities: [...state.identities.values()],
  };
  return JSON.stringify(file);
}

/** Writes `data` to `path` atomically: temp file in the same directory, fsync, rename, fsync of the directory. */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  const dir = dirname(path);
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await mkdir(dir, { recursive: true });
    const fh = await open(tmp, 'w', 0o644);
    try {
      await fh.writeFile(data, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new FaceflowError('STORE_UNAVAILABLE', `could not write ${path}: ${(e as Error).message}`, { cause: e, details: { path } });
  }
  try {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    // some filesystems cannot fsync a directory; the rename is still atomic
  }
}

export class FileGalleryStore extends MemoryGalleryStore {
  private constructor(
    readonly path: string,
    initial: GallerySnapshot,
    logger?: Logger,
  ) {
    super({ initial, ...(logger ? { logger } : {}) });
  }

  /** Opens the gallery at `path`; a missing file is an empty gallery (created on the first change). */
  static async open(path: string, options: { logger?: Logger } = {}): Promise<FileGalleryStore> {
    let text: string | undefined;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new FaceflowError('STORE_UNAVAILABLE', `could not read ${path}: ${(e as Error).message}`, { cause: e, details: { path } });
      }
    }
    const initial = text === undefined ? { version: 0, identities: [] } : parseGalleryFile(text, path);
    return new FileGalleryStore(path, initial, options.logger);
  }

  protected override async persist(next: GalleryState): Promise<void> {
    await writeFileAtomic(this.path, serializeGallery(next));
  }
}
