/**
 * Gallery/model compatibility (issue 13: moved from the CLI into the engine). A gallery records the embedder
 * name of the model that made its embeddings (a projection head adds its name and weights hash to it:
 * headEmbedderName); embeddings of two models, or of a model with and without a head, cannot be compared.
 */
import { FaceflowError } from '@faceflow/shared';
import { DEFAULT_MODEL } from './calibration.js';
import { headEmbedderName, parseHeadEmbedderName, readHeadMeta } from '../registry/head-meta.js';

/**
 * The error for a gallery whose embeddings another model made than this engine's (another embedder, another
 * projection head, or a head on one side only), with what to do about it. `headDir`: the engine's --head.
 */
export function galleryModelMismatch(file: string, galleryModel: string, engineModel: string, headDir?: string): FaceflowError {
  const g = parseHeadEmbedderName(galleryModel);
  const e = parseHeadEmbedderName(engineModel);
  const headOf = (h: { name: string; sha256Prefix: string }): string => `head "${h.name}" (weights ${h.sha256Prefix}...)`;
  let advice: string;
  if (g.base !== e.base) advice = `pass --embedder ${g.base}${g.head ? ` and --head with the folder of its ${headOf(g.head)}` : ''}`;
  else if (g.head && !e.head) advice = `it was enrolled through the projection ${headOf(g.head)}: pass --head with that head's folder`;
  else if (!g.head && e.head) advice = `it was enrolled without a projection head and this engine applies ${headOf(e.head)}${headDir ? ` (--head ${headDir})` : ''}: enroll the gallery again with this --head, or drop --head`;
  else advice = `it was enrolled through another projection head, ${headOf(g.head!)}: pass --head with that head's folder, or enroll the gallery again with this one`;
  return new FaceflowError('GALLERY_FORMAT', `${file} holds "${galleryModel}" embeddings; this engine makes "${engineModel}" embeddings, which cannot be compared: ${advice}`);
}

/** Throws galleryModelMismatch when the gallery (of `galleryModel`; undefined: not recorded) cannot be used with `engineModel`. */
export function assertGalleryModel(file: string, galleryModel: string | undefined, engineModel: string, headDir?: string): void {
  if (galleryModel !== undefined && galleryModel !== engineModel) throw galleryModelMismatch(file, galleryModel, engineModel, headDir);
}

/**
 * Before any model loads: a gallery of `galleryModel` embeddings that the engine's head (or its absence)
 * cannot match is refused at once (head.json alone gives the head's embedder name). `engine.embedder`: the
 * configured embedder (default the engine's default, DEFAULT_MODEL). The engine's own name is checked again
 * once it is loaded (another embedder, say: assertGalleryModel).
 */
export async function precheckGalleryHead(file: string, galleryModel: string | undefined, engine: { head?: string | undefined; embedder?: string | undefined }): Promise<void> {
  if (galleryModel === undefined) return;
  const g = parseHeadEmbedderName(galleryModel);
  if (engine.head === undefined) {
    if (g.head) throw galleryModelMismatch(file, galleryModel, engine.embedder ?? DEFAULT_MODEL);
    return;
  }
  const meta = await readHeadMeta(engine.head);
  const expected = headEmbedderName(meta.baseModel, meta);
  if (expected !== galleryModel) throw galleryModelMismatch(file, galleryModel, expected, engine.head);
}
