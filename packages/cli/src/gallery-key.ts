/**
 * The gallery key of every `faceflow` command that reads or writes a gallery (issue 15): the key file named
 * by FACEFLOW_GALLERY_KEY_FILE, read once (a bad file is one INVALID_CONFIG line, before anything else).
 */
import { galleryKeyFromEnv, type GalleryKey } from '@faceflow/shared';

let cached: { key?: GalleryKey } | undefined;

/** `{ key }` when FACEFLOW_GALLERY_KEY_FILE is set, else `{}` (spread into a store's or gallery's options). */
export function galleryKeyOption(): { key?: GalleryKey } {
  if (!cached) {
    const key = galleryKeyFromEnv(process.env);
    cached = key ? { key } : {};
  }
  return cached;
}
