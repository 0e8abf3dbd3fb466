/**
 * Erasure of a person (issue 15 item 3; GDPR art. 17, the right to erasure): one call that removes them from
 * everything faceflow keeps,
 *   - the gallery store (Redis or a file): their templates and metadata; the store's change notification
 *     makes every matcher drop its in-memory copy (services/matcher gallery-cache.ts) and every alerts
 *     service forget their tracks and delete their thumbnails (services/alerts stage.ts `forget`);
 *   - the crop store, when this process has it (`crops`): every thumbnail an event naming them pointed at
 *     (crop-store.ts: the erasure index beside the crops);
 *   - whatever else a caller holds of them (`erasers`: the hook for unknown clusters built from their faces,
 *     once clustering exists: issue 15 names it, packages/engine/src/match/cluster.ts is not built yet);
 * and records a **tombstone** on the audit trail: the `gallery.delete` AuditEvent with `tombstone: true`,
 * which tells consumers of faceflow's topics (identity events carry the name) to erase their copies.
 * Identity events already on Kafka keep the name until the topic's retention removes them (docs/security.md).
 *
 * Run again after a partial failure (say the crop folder was unreachable), it finishes the job: the store no
 * longer holds the identity, but what is left of it elsewhere is erased and the tombstone recorded. An
 * identity of which nothing was found at all is NOT_FOUND (nothing changed, no tombstone).
 */
import type { AuditTrail } from '../audit.js';
import { eraseIdentityCrops, type CropStore } from '../crop-store.js';
import { FaceflowError, isFaceflowError } from '../errors.js';
import type { AuditEvent } from '../schemas/audit-event.js';
import type { GalleryChange } from '../schemas/gallery-change.js';
import type { GalleryStore } from './types.js';

/** Something else that holds data of a person (unknown clusters, a cache): erases it, resolves with how much. */
export interface IdentityEraser {
  /** what it erases, for messages ("unknown clusters") */
  what: string;
  erase(identity: string): Promise<number>;
}

export interface EraseIdentityOptions {
  store: Pick<GalleryStore, 'delete'>;
  /** the identity id to erase */
  name: string;
  /** the crop store whose thumbnails of the person are to be deleted (the crop folder) */
  crops?: CropStore;
  erasers?: readonly IdentityEraser[];
  /** records the tombstone (or the failure); who, from where, and which gallery */
  audit?: { trail: AuditTrail; gallery: string } & Pick<AuditEvent, 'actorKind' | 'actor' | 'source'>;
}

export interface ErasureResult {
  /** the store's change (null: the store no longer held the identity; leftovers of an earlier erasure went) */
  change: GalleryChange | null;
  /** crops deleted (undefined: no crop store given) */
  crops?: number;
  /** what each eraser removed, by its `what` */
  erased: Record<string, number>;
}

export async function eraseIdentity(o: EraseIdentityOptions): Promise<ErasureResult> {
  const base = o.audit
    ? { action: 'gallery.delete' as const, actorKind: o.audit.actorKind, actor: o.audit.actor, source: o.audit.source, gallery: o.audit.gallery, identity: o.name }
    : undefined;
  let result: ErasureResult;
  try {
    result = await erase(o);
  } catch (e) {
    if (base) await o.audit!.trail.record({ ...base, outcome: 'failed', code: isFaceflowError(e) ? e.code : 'INTERNAL' });
    throw e;
  }
  if (base) {
    await o.audit!.trail.record({
      ...base,
      outcome: 'ok',
      tombstone: true,
      ...(result.change ? { version: result.change.version } : {}),
      ...(result.crops !== undefined ? { crops: result.crops } : {}),
    });
  }
  return result;
}

async function erase(o: EraseIdentityOptions): Promise<ErasureResult> {
  // the store first: matchers stop naming the person at once, so no new event (or thumbnail) of them is made
  const change = await o.store.delete(o.name);
  const crops = o.crops ? await eraseIdentityCrops(o.crops, o.name) : undefined;
  const erased: Record<string, number> = {};
  for (const e of o.erasers ?? []) erased[e.what] = await e.erase(o.name);
  const leftovers = (crops ?? 0) + Object.values(erased).reduce((a, b) => a + b, 0);
  if (!change && leftovers === 0) {
    throw new FaceflowError('NOT_FOUND', `no identity ${JSON.stringify(o.name)} in the gallery${o.crops ? ' and no thumbnails of it in the crop folder' : ''}: nothing erased (gallery list shows the names)`, {
      details: { identity: o.name },
    });
  }
  return { change, ...(crops !== undefined ? { crops } : {}), erased };
}
