/**
 * GalleryChange v1: an identity was enrolled (added or its embeddings replaced) or deleted; `version` is
 * the gallery version after the change (gallery versions only grow, by one per change), or the whole gallery
 * was replaced ("import", `faceflow gallery import`; its identity is "": a reader reloads the gallery, and
 * its version may jump by more than one). Published by the
 * gallery stores (Redis pub/sub) and on the gallery-changes topic. Keyed by identity.
 */
import { defineJsonSchema } from './codec.js';

export const GALLERY_CHANGE_TYPES = ['enroll', 'delete', 'import'] as const;
export type GalleryChangeType = (typeof GALLERY_CHANGE_TYPES)[number];

export interface GalleryChange {
  type: GalleryChangeType;
  identity: string;
  version: number;
  /** When the change was made, ms since the epoch. */
  ts: number;
  /** The store's epoch (GallerySnapshot.epoch), from stores that can lose their data (added in v1 without a bump). */
  epoch?: string;
}

export const GalleryChangeSchema = defineJsonSchema<GalleryChange>('gallery-change', 1, (r) => {
  const type = r.oneOf('type', GALLERY_CHANGE_TYPES);
  const c: GalleryChange = {
    type,
    identity: r.string('identity', { min: type === 'import' ? 0 : 1, max: 256 }),
    version: r.number('version', { integer: true, min: 1 }),
    ts: r.timestamp('ts'),
  };
  const epoch = r.optionalString('epoch', { max: 64 });
  if (epoch !== undefined) c.epoch = epoch;
  return c;
});
