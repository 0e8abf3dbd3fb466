/**
 * The gallery: named identities with several embeddings each (the notebook's `database` dictionary, grown
 * up). Search goes through the search index (search/index.ts, issue 14): all embeddings sit in one
 * row-major Float32Array changed row by row, scanned exactly for small galleries and through an int8 scan or
 * an HNSW graph, re-ranked in float, for large ones.
 */
import { readFile } from 'node:fs/promises';
import {
  FaceflowError,
  GALLERY_FILE_FORMAT,
  GALLERY_FILE_VERSION,
  checkEmbeddings,
  checkIdentityId,
  GalleryCipher,
  galleryFileText,
  parseGalleryFile,
  writeFileAtomic,
  type GalleryFile,
  type GalleryKey,
  type GallerySnapshot,
} from '@faceflow/shared';
import type { DecisionRule } from './decide.js';
import { SearchIndex, type IvfStats, type SearchIndexOptions, type SearchMethod } from '../search/index.js';

export interface IdentityDistance {
  name: string;
  /** smallest distance from the query to any of this identity's embeddings */
  distance: number;
}

/** Why a gallery file could not be read, in words a user can act on: a directory is not "not found" (issue 12). */
export function galleryReadError(file: string, e: unknown): FaceflowError {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EISDIR') return new FaceflowError('INVALID_ARGUMENT', `${file} is a directory; expected a gallery file (faceflow enroll --gallery FILE writes one)`, { cause: e });
  if (code === 'ENOENT' || code === 'ENOTDIR') return new FaceflowError('NOT_FOUND', `gallery file not found: ${file}`, { cause: e });
  return new FaceflowError('INVALID_ARGUMENT', `cannot read gallery file ${file}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
}

/**
 * A gallery file as a store's snapshot, with the model it records (`faceflow run` loads its in-process store
 * from it; issue 13: moved from the CLI). The one format: `faceflow enroll` and FileGalleryStore write it.
 */
export async function readGallerySnapshot(file: string, key?: GalleryKey): Promise<{ snapshot: GallerySnapshot; model?: string }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw galleryReadError(file, e);
  }
  const { model, dim: _dim, ...snapshot } = parseGalleryFile(text, file, key);
  return { snapshot, ...(model !== undefined ? { model } : {}) };
}

export interface GalleryOptions {
  /** how `search` finds the nearest identities (issue 14; default: exact for small galleries, int8 + float re-ranking for large) */
  search?: SearchIndexOptions;
  /**
   * The key-encryption key (FACEFLOW_GALLERY_KEY_FILE, issue 15): opens an encrypted gallery file, and seals
   * the file on save (a gallery read from an encrypted file is always saved sealed, under its own data key).
   */
  key?: GalleryKey;
}

export class Gallery {
  private readonly identities = new Map<string, { owner: number; metadata: Record<string, string>; updatedAt: number }>();
  /** bumped on every change, as a store's version is */
  private version = 0;
  private readonly index: SearchIndex;
  private ownerNames: string[] = [];
  /** seals save(): the file's own keyring when it was encrypted, else a new one when a key was given */
  private cipher: GalleryCipher | undefined;

  constructor(
    readonly model: string,
    readonly dim: number,
    options: GalleryOptions = {},
  ) {
    if (!Number.isInteger(dim) || dim <= 0) throw new FaceflowError('INVALID_ARGUMENT', `gallery dim must be a positive integer, got ${dim}`);
    this.index = new SearchIndex(dim, options.search);
    this.cipher = options.key ? GalleryCipher.create(options.key) : undefined;
  }

  /** Whether save() seals the file. */
  get encrypted(): boolean {
    return this.cipher !== undefined;
  }

  get size(): number {
    return this.identities.size;
  }

  get embeddingCount(): number {
    return this.index.rows;
  }

  /** The search method the next query uses (exact, int8, hnsw or ivf; hnsw and ivf once their background build caught up). */
  get searchMethod(): SearchMethod {
    return this.index.active;
  }

  /** How IVF searches with a decision rule ended: first probe, widened, or the full scan (issue 14). */
  get ivfStats(): Readonly<IvfStats> {
    return { ...this.index.ivfStats };
  }

  /** The IVF quantiser in use (lists, rows trained at), once built. */
  get ivfLists(): { lists: number; trainedRows: number } | undefined {
    return this.index.ivfLists;
  }

  /** Holds the background index build during a bulk load; call the returned function when it is done (SearchIndex.deferBuild). */
  deferSearchBuild(): () => void {
    return this.index.deferBuild();
  }

  /** Resolves when a background index build (hnsw, ivf) holds every embedding. */
  whenSearchReady(): Promise<void> {
    return this.index.whenReady();
  }

  names(): string[] {
    return [...this.identities.keys()].sort();
  }

  has(name: string): boolean {
    return this.identities.has(name);
  }

  embeddingsOf(name: string): Float32Array[] {
    const id = this.identities.get(name);
    if (!id) throw new FaceflowError('NOT_FOUND', `no identity "${name}" in the gallery`);
    return this.index.rowsOf(id.owner);
  }

  /** Adds embeddings to an identity (created if new); validated by the same rules as every gallery store. */
  add(name: string, embeddings: Float32Array[], metadata?: Record<string, string>): void {
    checkIdentityId(name);
    const existing = this.identities.get(name);
    // validated whole (the stores' limit counts the embeddings held too) before anything changes
    checkEmbeddings(name, [...(existing ? this.index.rowsOf(existing.owner) : []), ...embeddings].map((e) => Array.from(e)), this.dim);
    const owner = existing?.owner ?? this.index.newOwner();
    this.index.add(owner, embeddings.map((e) => Float32Array.from(e)));
    this.ownerNames[owner] = name;
    this.identities.set(name, { owner, metadata: { ...existing?.metadata, ...metadata }, updatedAt: Date.now() });
    this.version++;
  }

  /** Removes an identity if present (false if it was not): the replace step of a re-enrolment. */
  remove(name: string): boolean {
    const id = this.identities.get(name);
    if (!id) return false;
    this.index.removeOwner(id.owner);
    this.identities.delete(name);
    this.version++;
    return true;
  }

  /** Deletes an identity; an unknown name is an error and changes nothing. */
  delete(name: string): void {
    if (!this.remove(name)) throw new FaceflowError('NOT_FOUND', `no identity "${name}" in the gallery: nothing deleted (see the names with \`faceflow gallery list\`)`);
  }

  /** The `k` nearest identities to `query` (distance to each identity's closest embedding), nearest first. */
  search(query: Float32Array, k = 2, decision?: DecisionRule): IdentityDistance[] {
    if (this.identities.size === 0) throw new FaceflowError('GALLERY_EMPTY', 'the gallery has no identities: enroll someone first');
    if (!(Number.isInteger(k) && k >= 1)) throw new FaceflowError('INVALID_ARGUMENT', `k must be an integer >= 1, got ${k}`);
    return this.index.nearest(query, k, undefined, undefined, undefined, decision).map((o) => ({ name: this.ownerNames[o.owner]!, distance: o.distance }));
  }

  /** The same search by a chosen method (benchmarks and agreement tests compare methods on one gallery). */
  searchWith(method: SearchMethod, query: Float32Array, k = 2, options: { rerank?: number; nprobe?: number; decision?: DecisionRule } = {}): IdentityDistance[] {
    if (this.identities.size === 0) throw new FaceflowError('GALLERY_EMPTY', 'the gallery has no identities: enroll someone first');
    return this.index.nearest(query, k, method, options.rerank, options.nprobe, options.decision).map((o) => ({ name: this.ownerNames[o.owner]!, distance: o.distance }));
  }

  /** Frees the index (native memory with hnsw); the gallery cannot be searched or changed after. */
  close(): void {
    this.index.close();
    this.identities.clear();
  }

  /** The gallery as the one gallery file format of @faceflow/shared (also read by FileGalleryStore). */
  toJSON(): GalleryFile {
    return {
      format: GALLERY_FILE_FORMAT,
      version: GALLERY_FILE_VERSION,
      model: this.model,
      dim: this.dim,
      galleryVersion: this.version,
      updatedAt: Date.now(),
      identities: [...this.identities].map(([name, v]) => ({
        id: name,
        embeddings: this.index.rowsOf(v.owner).map((e) => Array.from(e, (x) => Math.round(x * 1e7) / 1e7)),
        metadata: v.metadata,
        updatedAt: v.updatedAt,
      })),
    };
  }

  static parse(text: string, source = 'gallery', options: GalleryOptions = {}): Gallery {
    const content = parseGalleryFile(text, source, options.key);
    if (content.model === undefined) {
      throw new FaceflowError('GALLERY_FORMAT', `gallery file ${source}: has no "model": cannot tell which embeddings it holds`);
    }
    const dim = content.dim ?? content.identities[0]?.embeddings[0]?.length;
    if (dim === undefined) throw new FaceflowError('GALLERY_FORMAT', `gallery file ${source}: has no "dim" and no embeddings`);
    const g = new Gallery(content.model, dim, options);
    for (const id of content.identities) {
      // parseGalleryFile validated every identity already
      const owner = g.index.newOwner();
      g.index.add(owner, id.embeddings.map((e) => Float32Array.from(e)));
      g.ownerNames[owner] = id.id;
      g.identities.set(id.id, { owner, metadata: id.metadata, updatedAt: id.updatedAt });
    }
    g.version = content.version;
    if (content.cipher) g.cipher = content.cipher;
    return g;
  }

  static fromJSON(json: unknown, source = 'gallery'): Gallery {
    return Gallery.parse(JSON.stringify(json), source);
  }

  /** Writes atomically (temp file, fsync, rename), so a crash never leaves half a gallery. */
  async save(file: string): Promise<void> {
    await writeFileAtomic(file, galleryFileText(this.toJSON(), this.cipher));
  }

  static async load(file: string, options: GalleryOptions = {}): Promise<Gallery> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      throw galleryReadError(file, e);
    }
    return Gallery.parse(text, file, options);
  }
}
