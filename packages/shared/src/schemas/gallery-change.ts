/**
 * GalleryChange v1: an identity was enrolled (added or its embeddings replaced) or deleted; `version` is
 * the gallery version after the change (gallery versions only grow, by one per change). Published by the
 * gallery stores (Redis pub/sub) and on the gallery-changes topic. Keyed by identity.
 */
import { defineJsonSchema } from './codec.js';

export const GALLERY_CHANGE_TYPES = ['enroll', 'delete'] as const;
export type GalleryChangeType = (typeof GALLERY_CHANGE_TYPES)[number];

export interface GalleryChange {
  type: GalleryChangeType;
  identity: string;
  version: number;
  /** When the change was made, ms since the epoch. */
  ts: number;
}

export const GalleryChangeSchema = defineJsonSchema<GalleryChange>('gallery-change', 1, (r) => ({
  type: r.oneOf('type', GALLERY_CHANGE_TYPES),
  identity: r.string('identity', { max: 256 }),
  version: r.number('version', { integer: true, min: 1 }),
  ts: r.timestamp('ts'),
}));
