/**
 * The gallery: named identities with several embeddings each (the notebook's `database` dictionary, grown
 * up). Search is vectorised: all embeddings sit in one row-major Float32Array, and since every embedding is
 * L2-normalised, |q - e|^2 = 2 - 2 q.e, so a 1:N search is one pass of dot products.
 */
import { readFile } from 'node:fs/promises';
import {
  FaceflowError,
  GALLERY_FILE_FORMAT,
  GALLERY_FILE_VERSION,
  checkEmbeddings,
  checkIdentityId,
  parseGalleryFile,
  writeFileAtomic,
  type GalleryFile,
} from '@faceflow/shared';

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

export class Gallery {
  private readonly identities = new Map<string, { embeddings: Float32Array[]; metadata: Record<string, string>; updatedAt: number }>();
  /** bumped on every change, as a store's version is */
  private version = 0;
  private matrix: Float32Array | undefined;
  private rowOwner: Int32Array | undefined;
  private ownerNames: string[] = [];

  constructor(readonly model: string, readonly dim: number) {
    if (!Number.isInteger(dim) || dim <= 0) throw new FaceflowError('INVALID_ARGUMENT', `gallery dim must be a positive integer, got ${dim}`);
  }

  get size(): number {
    return this.identities.size;
  }

  get embeddingCount(): number {
    let n = 0;
    for (const v of this.identities.values()) n += v.embeddings.length;
    return n;
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
    return id.embeddings;
  }

  /** Adds embeddings to an identity (created if new); validated by the same rules as every gallery store. */
  add(name: string, embeddings: Float32Array[], metadata?: Record<string, string>): void {
    checkIdentityId(name);
    const existing = this.identities.get(name);
    const all = [...(existing?.embeddings ?? []), ...embeddings.map((e) => Float32Array.from(e))];
    checkEmbeddings(name, all.map((e) => Array.from(e)), this.dim);
    this.identities.set(name, { embeddings: all, metadata: { ...existing?.metadata, ...metadata }, updatedAt: Date.now() });
    this.version++;
    this.matrix = undefined;
  }

  remove(name: string): boolean {
    const had = this.identities.delete(name);
    if (had) {
      this.version++;
      this.matrix = undefined;
    }
    return had;
  }

  private index(): { matrix: Float32Array; rowOwner: Int32Array } {
    if (this.matrix && this.rowOwner) return { matrix: this.matrix, rowOwner: this.rowOwner };
    const rows = this.embeddingCount;
    const matrix = new Float32Array(rows * this.dim);
    const rowOwner = new Int32Array(rows);
    this.ownerNames = [];
    let r = 0;
    for (const [name, id] of this.identities) {
      const owner = this.ownerNames.push(name) - 1;
      for (const e of id.embeddings) {
        matrix.set(e, r * this.dim);
        rowOwner[r++] = owner;
      }
    }
    this.matrix = matrix;
    this.rowOwner = rowOwner;
    return { matrix, rowOwner };
  }

  /** The `k` nearest identities to `query` (distance to each identity's closest embedding), nearest first. */
  search(query: Float32Array, k = 2): IdentityDistance[] {
    if (this.identities.size === 0) throw new FaceflowError('GALLERY_EMPTY', 'the gallery has no identities: enroll someone first');
    if (query.length !== this.dim) throw new FaceflowError('INVALID_ARGUMENT', `query has ${query.length} values, gallery wants ${this.dim}`);
    const { matrix, rowOwner } = this.index();
    const best = new Float32Array(this.ownerNames.length).fill(-Infinity);
    const dim = this.dim;
    for (let r = 0, off = 0; r < rowOwner.length; r++, off += dim) {
      let dot = 0;
      for (let j = 0; j < dim; j++) dot += matrix[off + j]! * query[j]!;
      const o = rowOwner[r]!;
      if (dot > best[o]!) best[o] = dot;
    }
    // partial selection of the top k by similarity
    const top: number[] = [];
    for (let o = 0; o < best.length; o++) {
      if (top.length < k) {
        top.push(o);
        top.sort((a, b) => best[b]! - best[a]!);
      } else if (best[o]! > best[top[top.length - 1]!]!) {
        top[top.length - 1] = o;
        top.sort((a, b) => best[b]! - best[a]!);
      }
    }
    return top.map((o) => ({ name: this.ownerNames[o]!, distance: Math.sqrt(Math.max(0, 2 - 2 * best[o]!)) }));
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
        embeddings: v.embeddings.map((e) => Array.from(e, (x) => Math.round(x * 1e7) / 1e7)),
        metadata: v.metadata,
        updatedAt: v.updatedAt,
      })),
    };
  }

  static parse(text: string, source = 'gallery'): Gallery {
    const content = parseGalleryFile(text, source);
    if (content.model === undefined) {
      throw new FaceflowError('GALLERY_FORMAT', `gallery file ${source}: has no "model": cannot tell which embeddings it holds`);
    }
    const dim = content.dim ?? content.identities[0]?.embeddings[0]?.length;
    if (dim === undefined) throw new FaceflowError('GALLERY_FORMAT', `gallery file ${source}: has no "dim" and no embeddings`);
    const g = new Gallery(content.model, dim);
    for (const id of content.identities) {
      g.identities.set(id.id, { embeddings: id.embeddings.map((e) => Float32Array.from(e)), metadata: id.metadata, updatedAt: id.updatedAt });
    }
    g.version = content.version;
    return g;
  }

  static fromJSON(json: unknown, source = 'gallery'): Gallery {
    return Gallery.parse(JSON.stringify(json), source);
  }

  /** Writes atomically (temp file, fsync, rename), so a crash never leaves half a gallery. */
  async save(file: string): Promise<void> {
    await writeFileAtomic(file, JSON.stringify(this.toJSON()));
  }

  static async load(file: string): Promise<Gallery> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      throw galleryReadError(file, e);
    }
    return Gallery.parse(text, file);
  }
}
