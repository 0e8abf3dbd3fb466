/**
 * Gallery administration over any GalleryStore (the file store or Redis): what `faceflow gallery import |
 * export | list | delete` do, here so that the command stays an edge (issue 12).
 *
 * - import: the gallery file's identities replace the store's, at once (GalleryStore.replace): a store
 *   restored from the file holds exactly the file's gallery, at a version past both the store's and the
 *   file's, so every matcher reloads it (and one holding a gallery the store lost takes it: types.ts). A
 *   file that does not parse, or whose embedding model or size differs from the gallery the store holds, is
 *   refused before anything is written.
 * - export: the store's gallery, written atomically in the one gallery file format (`faceflow enroll`'s),
 *   with its version, model and size; an empty gallery is refused, so that a store that lost its gallery
 *   (or a wrong key prefix) never overwrites the file it should be rebuilt from.
 * - with a key (FACEFLOW_GALLERY_KEY_FILE, issue 15): an encrypted file is opened with it, and an export is
 *   sealed under it (its own gallery id and data key); an import into a store with a key is sealed by the
 *   store, whether the file was sealed or not.
 * - new-key, rotate-key, the file store's checks and the audit record of each command (issue 15; issue 13:
 *   moved from the CLI, which parses, calls one of these and prints).
 */
import { open, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import { AuditTrail } from '../audit.js';
import { FaceflowError } from '../errors.js';
import { silentLogger } from '../observability.js';
import type { AuditAction } from '../schemas/audit-event.js';
import type { GalleryChange } from '../schemas/gallery-change.js';
import { FileGalleryStore, galleryFileOf, galleryFileText, parseGalleryFile, writeFileAtomic } from './file-gallery-store.js';
import { GalleryCipher, GalleryKey } from './gallery-crypto.js';
import type { GallerySnapshot, GalleryStore, KeyRotation, KeyRotationResult } from './types.js';

/** The model a stored gallery holds: the one the store records, else the one its identities name. */
export function galleryModelOf(snap: GallerySnapshot): string | undefined {
  return snap.model ?? snap.identities.find((i) => i.metadata.model)?.metadata.model;
}

function galleryDimOf(snap: GallerySnapshot): number | undefined {
  return snap.identities.find((i) => i.embeddings[0])?.embeddings[0]?.length;
}

export interface GalleryImportResult {
  /** the store's version after the import */
  version: number;
  identities: number;
  /** identities the store held that the file does not (gone with the import) */
  removed: string[];
  model?: string;
  dim?: number;
  /** the file's own galleryVersion */
  fileVersion: number;
}

async function readGalleryText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new FaceflowError('NOT_FOUND', `gallery file not found: ${path}`, { cause: e, details: { path } });
    if (code === 'EISDIR') throw new FaceflowError('INVALID_ARGUMENT', `${path} is a directory, not a gallery file (faceflow enroll or gallery export writes one)`, { cause: e, details: { path } });
    throw new FaceflowError('INVALID_ARGUMENT', `cannot read gallery file ${path}: ${(e as Error).message}`, { cause: e, details: { path } });
  }
}

/** Replaces the store's gallery with the one in the gallery file at `path`. */
export async function importGalleryFile(store: GalleryStore, path: string, options: { key?: GalleryKey } = {}): Promise<GalleryImportResult> {
  const file = parseGalleryFile(await readGalleryText(path), path, options.key);
  const held = await store.snapshot();
  if (held.identities.length > 0) {
    const heldModel = galleryModelOf(held);
    const heldDim = galleryDimOf(held);
    const fileDim = file.dim ?? file.identities[0]?.embeddings[0]?.length;
    const other = 'import it into an empty gallery (another key prefix or file), or delete the identities held first';
    if (heldModel !== undefined && file.model === undefined) {
      throw new FaceflowError('INVALID_ARGUMENT', `gallery file ${path} names no "model", and the gallery it would replace holds "${heldModel}" embeddings: ${other}`, { details: { path, model: heldModel } });
    }
    if (heldModel !== undefined && file.model !== heldModel) {
      throw new FaceflowError('INVALID_ARGUMENT', `gallery file ${path} holds "${file.model}" embeddings, the gallery it would replace holds "${heldModel}" ones: ${other}`, {
        details: { path, fileModel: file.model, model: heldModel },
      });
    }
    if (heldDim !== undefined && fileDim !== undefined && fileDim !== heldDim) {
      throw new FaceflowError('INVALID_ARGUMENT', `gallery file ${path} holds embeddings of dimension ${fileDim}, the gallery it would replace ${heldDim}: ${other}`, {
        details: { path, fileDim, dim: heldDim },
      });
    }
  }
  const change = await store.replace({ identities: file.identities, version: file.version, ...(file.model !== undefined ? { model: file.model } : {}) });
  const kept = new Set(file.identities.map((i) => i.id));
  const model = file.model ?? galleryModelOf(held);
  const dim = file.dim ?? galleryDimOf(file);
  return {
    version: change.version,
    identities: file.identities.length,
    removed: held.identities.map((i) => i.id).filter((id) => !kept.has(id)),
    fileVersion: file.version,
    ...(model !== undefined ? { model } : {}),
    ...(dim !== undefined ? { dim } : {}),
  };
}

export interface GalleryExportResult {
  version: number;
  identities: number;
  model?: string;
  dim?: number;
}

/** Writes the store's gallery to `path` (atomically); `options.model` names the model when the store records none. */
export async function exportGalleryFile(store: GalleryStore, path: string, options: { model?: string; key?: GalleryKey } = {}): Promise<GalleryExportResult> {
  const snap = await store.snapshot();
  if (snap.identities.length === 0) {
    throw new FaceflowError('GALLERY_EMPTY', `the gallery holds no identities (version ${snap.version}): nothing exported, ${path} left as it was (is it the right gallery or key prefix?)`, {
      details: { path, version: snap.version },
    });
  }
  const stored = galleryModelOf(snap);
  if (options.model !== undefined && stored !== undefined && options.model !== stored) {
    throw new FaceflowError('INVALID_ARGUMENT', `the gallery holds "${stored}" embeddings, not "${options.model}": drop --model`, { details: { model: stored } });
  }
  const model = stored ?? options.model;
  const doc = galleryFileOf(snap, model !== undefined ? { model } : {});
  await writeFileAtomic(path, galleryFileText(doc, options.key ? GalleryCipher.create(options.key) : undefined));
  return { version: snap.version, identities: snap.identities.length, ...(model !== undefined ? { model } : {}), ...(doc.dim !== undefined ? { dim: doc.dim } : {}) };
}

export interface GalleryListing {
  version: number;
  model?: string;
  dim?: number;
  identities: { id: string; embeddings: number; metadata: Record<string, string>; updatedAt: number }[];
}

/** The gallery's identities (no embeddings: their count), sorted by id, with its version, model and size. */
export async function listGallery(store: GalleryStore): Promise<GalleryListing> {
  const snap = await store.snapshot();
  const model = galleryModelOf(snap);
  const dim = galleryDimOf(snap);
  return {
    version: snap.version,
    ...(model !== undefined ? { model } : {}),
    ...(dim !== undefined ? { dim } : {}),
    identities: snap.identities
      .map((i) => ({ id: i.id, embeddings: i.embeddings.length, metadata: i.metadata, updatedAt: i.updatedAt }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
  };
}

/** Deletes one identity; NOT_FOUND (nothing changed) when the gallery has none of that name. */
export async function deleteIdentity(store: GalleryStore, id: string): Promise<GalleryChange> {
  const change = await store.delete(id);
  if (!change) throw new FaceflowError('NOT_FOUND', `no identity ${JSON.stringify(id)} in the gallery: nothing deleted (gallery list shows the names)`, { details: { identity: id } });
  return change;
}

/** The gallery file store of `file`; `create`: a missing file is an empty gallery (an import writes it). */
export async function openGalleryFile(file: string, options: { create: boolean; key?: GalleryKey }): Promise<FileGalleryStore> {
  const st = await stat(file).catch(() => undefined);
  if (st?.isDirectory()) throw new FaceflowError('INVALID_ARGUMENT', `--gallery ${file} is a directory: give the gallery file (faceflow enroll writes one)`);
  if (!st && !options.create) throw new FaceflowError('NOT_FOUND', `gallery file not found: ${file}`);
  return FileGalleryStore.open(file, options.key ? { key: options.key } : {});
}

/** Writes a new gallery key file (32 random bytes, base64, mode 0600); an existing file is never overwritten. */
export async function writeNewGalleryKey(file: string): Promise<{ keyId: string }> {
  const { key, text } = GalleryKey.generate();
  let fh;
  try {
    fh = await open(file, 'wx', 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new FaceflowError('INVALID_ARGUMENT', `${file} exists: a key file is never overwritten (the galleries sealed under it would be lost); give another path`, { details: { path: file } });
    throw new FaceflowError('INVALID_ARGUMENT', `cannot create key file ${file}: ${code ?? (e as Error).message}`, { cause: e, details: { path: file } });
  }
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  return { keyId: key.id };
}

/** Seals the store's gallery under `o.key` (and a new data key with `o.newDataKey`); `name`: the store, in words. */
export async function rotateGalleryKey(store: GalleryStore, name: string, o: KeyRotation): Promise<KeyRotationResult> {
  if (!store.rotateKey) throw new FaceflowError('INVALID_ARGUMENT', `${name} keeps no templates at rest`);
  return store.rotateKey(o);
}

/**
 * Runs one gallery command with its audit record (issue 15, item 4): with `file` (FACEFLOW_AUDIT_LOG) one
 * AuditEvent is appended to it, the operator being the OS user and host, whether the command succeeded or failed.
 * `identitiesOf`: a command that changes several identities (an enrolment from a folder) records one event
 * per identity it changed, so the trail says who was enrolled, not only that someone was.
 */
export async function auditedGalleryCommand<T>(
  o: { file?: string | undefined; action: AuditAction; gallery: string; identity?: string | undefined; identitiesOf?: (r: T) => readonly string[] },
  run: () => Promise<T>,
  describe: (r: T) => { version?: number; fromKey?: string; toKey?: string; tombstone?: true; crops?: number } = () => ({}),
): Promise<T> {
  if (!o.file) return run();
  const trail = new AuditTrail({ logger: silentLogger, service: 'faceflow', file: o.file });
  const base = { action: o.action, actorKind: 'operator' as const, actor: os.userInfo().username || 'unknown', source: os.hostname() || 'unknown', gallery: o.gallery, ...(o.identity ? { identity: o.identity } : {}) };
  let r: T;
  try {
    r = await run();
  } catch (e) {
    await trail.record({ ...base, outcome: 'failed', code: e instanceof FaceflowError ? e.code : 'INTERNAL' });
    throw e;
  }
  const many = o.identitiesOf?.(r);
  if (many) for (const identity of many) await trail.record({ ...base, identity, outcome: 'ok', ...describe(r) });
  else await trail.record({ ...base, outcome: 'ok', ...describe(r) });
  return r;
}
