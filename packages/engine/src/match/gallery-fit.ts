/**
 * Opening a gallery for an engine (issue 13: out of the CLI): a gallery file that may not exist yet (enroll
 * creates it), and the check that a loaded engine makes the gallery's embeddings (model and dimension).
 */
import { stat } from 'node:fs/promises';
import { FaceflowError } from '@faceflow/shared';
import { galleryModelMismatch } from './compatibility.js';
import { Gallery, type GalleryOptions } from './gallery.js';

/** The gallery in `file`, or undefined when there is no such file yet. */
export async function loadGalleryIfAny(file: string, options: GalleryOptions = {}): Promise<Gallery | undefined> {
  try {
    await stat(file);
  } catch {
    return undefined;
  }
  return Gallery.load(file, options);
}

/** `gallery` when `embedder` makes its embeddings; else GALLERY_FORMAT naming the fix. `headDir`: the engine's --head. */
export function assertGalleryFits<G extends { model: string; dim: number }>(gallery: G, file: string, embedder: { name: string; dim: number }, headDir?: string): G {
  if (gallery.model !== embedder.name) throw galleryModelMismatch(file, gallery.model, embedder.name, headDir);
  if (gallery.dim !== embedder.dim) throw new FaceflowError('GALLERY_FORMAT', `${file} holds ${gallery.dim}-d "${gallery.model}" embeddings; this engine makes ${embedder.dim}-d ones`);
  return gallery;
}
