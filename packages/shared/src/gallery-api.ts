/**
 * The gallery management HTTP API, against a GalleryStore (Redis), served by two services (issue 13: the
 * matcher runs no model, so enrolment by image is the embedder's):
 *
 *   matcher (`manage`, `model`):
 *     GET    /v1/identities              list: [{id, embeddings (count), metadata, updatedAt}], and the version
 *     PUT    /v1/identities/<id>         body (Content-Type: application/json): {"model", "embeddings": [[...]],
 *                                        "metadata"?}: enrolment by embedding, of the gallery's model only
 *     DELETE /v1/identities/<id>
 *   embedder (`embedImage`):
 *     PUT    /v1/identities/<id>         body: a JPEG/PNG/WebP photo of the person (largest face is enrolled)
 *
 * A PUT takes ?mode=append to add to the identity's embeddings instead of replacing them. Every call needs
 * `Authorization: Bearer <key>`; the service holds only the key's SHA-256 and compares digests in constant
 * time. Changes reach every matcher through the store's notifications.
 *
 * A DELETE is an erasure (issue 15 item 3, gallery-store/erasure.ts): the identity leaves the store (every
 * matcher and alerts service follows the change notification), its thumbnails leave the crop store where the
 * service has one (`crops`), and its audit event is the tombstone (`tombstone: true`).
 *
 * Every call on /v1/identities, allowed or refused, is audited (issue 15, item 4): an AuditEvent with the
 * API key's id (never the key), the action, the identity, the client address and the outcome, in the log
 * and on the audit topic.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import { apiKeyId, type AuditTrail } from './audit.js';
import type { AuditAction } from './schemas/audit-event.js';
import { FaceflowError, isFaceflowError } from './errors.js';
import type { CropStore } from './crop-store.js';
import { eraseIdentity } from './gallery-store/erasure.js';
import type { GalleryStore } from './gallery-store/types.js';
import type { Logger } from './logger.js';
import { readBody, sendJson } from './ops-server.js';

export interface GalleryApiOptions {
  /** Absent: the API is off (no API keys configured); every call is refused as unauthorised. */
  store: GalleryStore | undefined;
  /** Hex SHA-256 digests of the accepted API keys. */
  keyDigests: string[];
  /** Serve list, delete and enrolment by embedding (the matcher). */
  manage?: boolean;
  /** The gallery's model: an enrolment by embedding must name it (embeddings of two models cannot be compared). */
  model?: string;
  /**
   * Enrolment by image (the embedder service): the embedding of the largest face of an encoded image
   * (NO_FACE when there is none).
   */
  embedImage?: (image: Buffer) => Promise<number[]>;
  /** Where enrolment by image is served, named in the refusal of an image sent where it is not. */
  imageEnrolmentAt?: string;
  maxBodyBytes?: number;
  logger?: Logger;
  /** The crop folder, where the service has it: a DELETE erases the identity's thumbnails from it too. */
  crops?: CropStore;
  /** Records every call (issue 15); `gallery` names the store in the events (the Redis key prefix). */
  audit?: { trail: AuditTrail; gallery: string };
}

export function sha256Hex(s: string | Buffer): string {
  return createHash('sha256').update(s).digest('hex');
}

/** Constant-time: is `key` one of the keys whose digests are given? */
export function keyMatches(key: string, digests: string[]): boolean {
  const d = Buffer.from(sha256Hex(key), 'hex');
  let ok = false;
  for (const want of digests) {
    const w = Buffer.from(want, 'hex');
    if (w.length === d.length && timingSafeEqual(w, d)) ok = true;
  }
  return ok;
}

/** The audited action of a call on /v1/identities (undefined: a route the API does not serve). */
function actionOf(method: string | undefined, rest: string): AuditAction | undefined {
  if (rest === '' || rest === '/') return method === 'GET' ? 'gallery.list' : undefined;
  if (method === 'DELETE') return 'gallery.delete';
  if (method === 'PUT' || method === 'POST') return 'gallery.enroll';
  return undefined;
}

export function galleryApi(o: GalleryApiOptions): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<boolean> {
  const serve = serveGalleryApi(o);
  if (!o.audit) return async (req, res) => (await serve(req, res)).served;
  const { trail, gallery } = o.audit;
  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const rest = url.pathname.slice('/v1/identities'.length);
    const action = url.pathname.startsWith('/v1/identities') ? actionOf(req.method, rest) : undefined;
    const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    let identity: string | undefined;
    try {
      identity = rest.length > 1 ? decodeURIComponent(rest.slice(1)) : undefined;
    } catch {
      identity = undefined;
    }
    const base = {
      ...(auth ? { actorKind: 'api-key' as const, actor: apiKeyId(auth[1]!) } : { actorKind: 'anonymous' as const, actor: '-' }),
      source: req.socket.remoteAddress ?? 'unknown',
      gallery,
      ...(identity !== undefined && identity.length > 0 && identity.length <= 256 ? { identity } : {}),
    };
    try {
      const r = await serve(req, res);
      if (action && r.served) {
        await trail.record({
          ...base,
          action,
          outcome: 'ok',
          ...(r.version !== undefined ? { version: r.version } : {}),
          // the erasure's tombstone: downstream consumers erase their copies (docs/security.md)
          ...(action === 'gallery.delete' ? { tombstone: true as const } : {}),
          ...(r.crops !== undefined ? { crops: r.crops } : {}),
        });
      }
      return r.served;
    } catch (e) {
      if (action) {
        const code = isFaceflowError(e) ? e.code : 'INTERNAL';
        await trail.record({ ...base, action, outcome: code === 'UNAUTHORIZED' ? 'denied' : 'failed', code });
      }
      throw e;
    }
  };
}

/** The body of an enrolment by embedding, checked (the store checks the embeddings themselves). */
function readEnrolment(body: Buffer, model: string | undefined): { embeddings: number[][]; metadata?: Record<string, string> } {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw new FaceflowError('INVALID_ARGUMENT', 'the body is not JSON: send {"model": "...", "embeddings": [[...]]} (Content-Type: application/json)');
  }
  const o = json as { model?: unknown; embeddings?: unknown; metadata?: unknown } | null;
  if (typeof o !== 'object' || o === null || !Array.isArray(o.embeddings)) {
    throw new FaceflowError('INVALID_ARGUMENT', 'the body must be {"model": "...", "embeddings": [[...]], "metadata"?: {...}}', { details: { field: 'embeddings' } });
  }
  if (model !== undefined && o.model !== model) {
    throw new FaceflowError('GALLERY_FORMAT', `the embeddings are of model ${JSON.stringify(o.model)}; this gallery holds "${model}" embeddings, which cannot be compared: embed with "${model}" (or enrol the photo at the embedder service)`, { details: { field: 'model' } });
  }
  return { embeddings: o.embeddings as number[][], ...(o.metadata !== undefined ? { metadata: o.metadata as Record<string, string> } : {}) };
}

function serveGalleryApi(o: GalleryApiOptions): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<{ served: boolean; version?: number; crops?: number }> {
  const maxBytes = o.maxBodyBytes ?? 10 * 1024 * 1024;
  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (!url.pathname.startsWith('/v1/identities')) return { served: false };
    const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const store = o.store;
    if (!store || !auth || o.keyDigests.length === 0 || !keyMatches(auth[1]!, o.keyDigests)) throw new FaceflowError('UNAUTHORIZED', 'a valid API key is required (Authorization: Bearer <key>)');
    const rest = url.pathname.slice('/v1/identities'.length);
    if (rest === '' || rest === '/') {
      if (req.method !== 'GET' || !o.manage) return { served: false };
      const [list, version] = await Promise.all([store.list(), store.version()]);
      sendJson(res, 200, { version, identities: list.map((i) => ({ id: i.id, embeddings: i.embeddings.length, metadata: i.metadata, updatedAt: i.updatedAt })) });
      return { served: true, version };
    }
    const id = decodeURIComponent(rest.slice(1));
    if (req.method === 'DELETE' && o.manage) {
      // audited (with the tombstone) by the wrapper above, not by eraseIdentity: one event per call
      const r = await eraseIdentity({ store, name: id, ...(o.crops ? { crops: o.crops } : {}) });
      const version = r.change?.version ?? (await store.version());
      sendJson(res, 200, { ...(r.change ?? { type: 'delete', identity: id, version }), ...(r.crops !== undefined ? { crops: r.crops } : {}) });
      return { served: true, version, ...(r.crops !== undefined ? { crops: r.crops } : {}) };
    }
    if (req.method === 'PUT' || req.method === 'POST') {
      const json = /^application\/json\b/i.test(req.headers['content-type'] ?? '');
      let embeddings: number[][];
      let metadata: Record<string, string> | undefined;
      if (json && o.manage) {
        ({ embeddings, metadata } = readEnrolment(await readBody(req, maxBytes), o.model));
      } else if (!json && o.embedImage) {
        embeddings = [await o.embedImage(await readBody(req, maxBytes))];
      } else if (!json) {
        const at = o.imageEnrolmentAt ? ` (${o.imageEnrolmentAt})` : '';
        throw new FaceflowError('INVALID_ARGUMENT', `this service runs no model: enrol a photo at the embedder service's /v1/identities/<id>${at}, or send the embeddings here as {"model", "embeddings"} (Content-Type: application/json)`);
      } else {
        throw new FaceflowError('INVALID_ARGUMENT', 'this service enrols photos only (the body is the image); send embeddings to the matcher service\'s /v1/identities/<id>');
      }
      const mode = url.searchParams.get('mode') === 'append' ? 'append' : 'replace';
      const change = await store.put(id, embeddings, { mode, ...(metadata !== undefined ? { metadata } : {}) });
      o.logger?.info('identity enrolled', { identity: id, version: change.version });
      sendJson(res, 200, change);
      return { served: true, version: change.version };
    }
    return { served: false };
  };
}
