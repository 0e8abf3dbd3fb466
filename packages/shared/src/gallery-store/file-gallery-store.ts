/**
 * The one gallery file format, written by `faceflow enroll` (the engine's Gallery), by FileGalleryStore
 * (small single-host deployments) and read by `faceflow run`:
 *
 *     {"format":"faceflow-gallery","version":1,"model":"faceapi-recognition","dim":128,"galleryVersion":7,
 *      "updatedAt":1764390000000,
 *      "identities":[{"id":"alice","embeddings":[[...],[...]],"metadata":{},"updatedAt":1764390000000}]}
 *
 * `model` names the embedding model the vectors came from (a gallery never mixes models); `dim` their size.
 * Both are optional for a store that has not been given them yet, and checked when present.
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
  model?: string;
  dim?: number;
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

/** What a gallery file holds: the store snapshot plus the model and size of its embeddings. */
export interface GalleryFileContent extends GallerySnapshot {
  model?: string;
  dim?: number;
}

/** Parses and checks the content of a gallery file. */
export function parseGalleryFile(text: string, path = '(gallery)'): GalleryFileContent {
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
  if (d.model !== undefined && (typeof d.model !== 'string' || d.model === '')) throw formatError(path, '"model" must be a non-empty string');
  if (d.dim !== undefined && (!Number.isSafeInteger(d.dim) || (d.dim as number) <= 0)) throw formatError(path, '"dim" must be a positive integer');
  if (!Array.isArray(d.identities)) throw formatError(path, '"identities" must be an array');
  const seen = new Set<string>();
  let dim: number | undefined = d.dim;
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
  return {
    version: d.galleryVersion as number,
    identities,
    ...(d.model !== undefined ? { model: d.model } : {}),
    ...(dim !== undefined ? { dim } : {}),
  };
}

export function serializeGallery(state: Pick<GalleryState, 'version' | 'identities' | 'model'>, meta: { model?: string } = {}): string {
  return JSON.stringify(galleryFileOf({ version: state.version, identities: [...state.identities.values()], ...(state.model !== undefined ? { model: state.model } : {}) }, meta));
}

/** A snapshot as the gallery file document (the format `faceflow enroll` writes); `meta.model` wins over the snapshot's. */
export function galleryFileOf(snap: GallerySnapshot, meta: { model?: string } = {}): GalleryFile {
  const dim = snap.identities.find((i) => i.embeddings[0])?.embeddings[0]?.length;
  const model = meta.model ?? snap.model;
  return {
    format: GALLERY_FILE_FORMAT,
    version: GALLERY_FILE_VERSION,
    ...(model !== undefined ? { model } : {}),
    ...(dim !== undefined ? { dim } : {}),
    galleryVersion: snap.version,
    updatedAt: Date.now(),
    identities: snap.identities,
  };
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

  /** The embedding model recorded in the file (kept on every write; an import may set it). */
  get model(): string | undefined {
    return this.state.model;
  }

  /**
   * Opens the gallery at `path`; a missing file is an empty gallery (created on the first change).
   * `model`, when given, must match the file's (or is recorded in a file that has none).
   */
  static async open(path: string, options: { logger?: Logger; model?: string } = {}): Promise<FileGalleryStore> {
    let text: string | undefined;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new FaceflowError('STORE_UNAVAILABLE', `could not read ${path}: ${(e as Error).message}`, { cause: e, details: { path } });
      }
    }
    const initial: GalleryFileContent = text === undefined ? { version: 0, identities: [] } : parseGalleryFile(text, path);
    if (options.model !== undefined && initial.model !== undefined && initial.model !== options.model) {
      throw formatError(path, `holds "${initial.model}" embeddings, not "${options.model}"`);
    }
    const model = initial.model ?? options.model;
    return new FileGalleryStore(path, { version: initial.version, identities: initial.identities, ...(model !== undefined ? { model } : {}) }, options.logger);
  }

  // `imported` is not written: a file is its own source of truth, never a cache that loses its gallery
  protected override async persist(next: GalleryState): Promise<void> {
    await writeFileAtomic(this.path, serializeGallery(next));
  }
}
