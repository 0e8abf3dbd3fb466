/**
 * The gallery: named identities with several embeddings each (the notebook's `database` dictionary, grown
 * up). Search is vectorised: all embeddings sit in one row-major Float32Array, and since every embedding is
 * L2-normalised, |q - e|^2 = 2 - 2 q.e, so a 1:N search is one pass of dot products.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { FaceflowError } from '@faceflow/shared';

export const GALLERY_FORMAT = 'faceflow-gallery';
export const GALLERY_VERSION = 1;

export interface GalleryFileV1 {
  format: typeof GALLERY_FORMAT;
  version: 1;
  /** name of the embedding model the vectors came from; a gallery never mixes models */
  model: string;
  dim: number;
  identities: Array<{ name: string; embeddings: number[][]; updatedAt: string }>;
}

export interface IdentityDistance {
  name: string;
  /** smallest distance from the query to any of this identity's embeddings */
  distance: number;
}

const NAME_RE = /^[\p{L}\p{N}][\p{L}\p{N} _.'-]{0,127}$/u;

export function validateIdentityName(name: string): string {
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw new FaceflowError('INVALID_ARGUMENT', `identity name "${String(name).slice(0, 40)}" must be 1-128 letters, digits, space, _ . ' -, starting with a letter or digit`);
  }
  return name;
}

export class Gallery {
  private readonly identities = new Map<string, { embeddings: Float32Array[]; updatedAt: string }>();
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

  add(name: string, embeddings: Float32Array[]): void {
    validateIdentityName(name);
    if (embeddings.length === 0) throw new FaceflowError('INVALID_ARGUMENT', `no embedding given for "${name}"`);
    for (const e of embeddings) {
      if (e.length !== this.dim) throw new FaceflowError('INVALID_ARGUMENT', `embedding for "${name}" has ${e.length} values, gallery wants ${this.dim}`);
      let n = 0;
      for (const v of e) {
        if (!Number.isFinite(v)) throw new FaceflowError('INVALID_ARGUMENT', `embedding for "${name}" has a non-finite value`);
        n += v * v;
      }
      if (Math.abs(n - 1) > 1e-3) throw new FaceflowError('INVALID_ARGUMENT', `embedding for "${name}" is not L2-normalised (|e|^2 = ${n.toFixed(4)})`);
    }
    const existing = this.identities.get(name);
    const all = [...(existing?.embeddings ?? []), ...embeddings.map((e) => Float32Array.from(e))];
    this.identities.set(name, { embeddings: all, updatedAt: new Date().toISOString() });
    this.matrix = undefined;
  }

  remove(name: string): boolean {
    const had = this.identities.delete(name);
    if (had) this.matrix = undefined;
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

  toJSON(): GalleryFileV1 {
    return {
      format: GALLERY_FORMAT,
      version: GALLERY_VERSION,
      model: this.model,
      dim: this.dim,
      identities: [...this.identities].map(([name, v]) => ({
        name,
        embeddings: v.embeddings.map((e) => Array.from(e, (x) => Math.round(x * 1e7) / 1e7)),
        updatedAt: v.updatedAt,
      })),
    };
  }

  static fromJSON(json: unknown, source = 'gallery'): Gallery {
    const bad = (why: string): never => {
      throw new FaceflowError('GALLERY_FORMAT', `${source}: ${why}`);
    };
    if (typeof json !== 'object' || json === null) bad('not a JSON object');
    const j = json as Partial<GalleryFileV1>;
    if (j.format !== GALLERY_FORMAT) bad(`"format" must be "${GALLERY_FORMAT}"`);
    if (j.version !== GALLERY_VERSION) bad(`unsupported format version ${String(j.version)}; this build reads version ${GALLERY_VERSION}`);
    if (typeof j.model !== 'string' || j.model === '') bad('"model" must be a non-empty string');
    if (typeof j.dim !== 'number') bad('"dim" must be a number');
    if (!Array.isArray(j.identities)) bad('"identities" must be an array');
    const g = new Gallery(j.model!, j.dim!);
    for (const [i, id] of j.identities!.entries()) {
      if (typeof id?.name !== 'string') bad(`identities[${i}].name must be a string`);
      if (!Array.isArray(id.embeddings)) bad(`identities[${i}].embeddings must be an array`);
      try {
        g.add(id.name, id.embeddings.map((e) => Float32Array.from(e)));
      } catch (e) {
        bad(`identities[${i}] ("${id.name}"): ${(e as Error).message}`);
      }
      if (typeof id.updatedAt === 'string') g.identities.get(id.name)!.updatedAt = id.updatedAt;
    }
    return g;
  }

  /** Writes atomically (temp file + rename), so a crash never leaves half a gallery. */
  async save(file: string): Promise<void> {
    const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
    try {
      await writeFile(tmp, JSON.stringify(this.toJSON()));
      await rename(tmp, file);
    } catch (e) {
      throw new FaceflowError('INVALID_ARGUMENT', `cannot write gallery ${file}: ${(e as Error).message}`, { cause: e });
    }
  }

  static async load(file: string): Promise<Gallery> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      throw new FaceflowError('NOT_FOUND', `gallery file not found: ${file}`, { cause: e });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new FaceflowError('GALLERY_FORMAT', `${file}: not valid JSON`, { cause: e });
    }
    return Gallery.fromJSON(json, file);
  }
}
