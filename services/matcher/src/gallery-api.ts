/**
 * The gallery management HTTP API (served by the matcher service), against the GalleryStore (Redis):
 *
 *   GET    /v1/identities              list: [{id, embeddings (count), metadata, updatedAt}], and the version
 *   PUT    /v1/identities/<id>         body: a JPEG/PNG/WebP photo of the person (largest face is enrolled);
 *                                      ?mode=append adds to the identity's embeddings instead of replacing them
 *   DELETE /v1/identities/<id>
 *
 * Every call needs `Authorization: Bearer <key>`; the service holds only the key's SHA-256 and compares
 * digests in constant time. Embeddings come from the same engine as the embedder's (loaded on first use).
 * Changes reach every matcher through the store's notifications.
 *
 * Every call on /v1/identities, allowed or refused, is audited (issue 15, item 4): an AuditEvent with the
 * API key's id (never the key), the action, the identity, the client address and the outcome, in the log
 * and on the audit topic.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import { apiKeyId, FaceflowError, isFaceflowError, type AuditAction, type AuditTrail, type GalleryStore, type Logger } from '@faceflow/shared';
import { readBody, sendJson } from '@faceflow/shared/ops';

export interface Embedder {
  /** The embedding of the largest face of an encoded image (NO_FACE when there is none). */
  embedLargestFace(image: Buffer): Promise<number[]>;
}

export interface GalleryApiOptions {
  store: GalleryStore;
  /** Hex SHA-256 digests of the accepted API keys. */
  keyDigests: string[];
  embedder: () => Promise<Embedder>;
  maxBodyBytes?: number;
  logger?: Logger;
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
      if (action && r.served) await trail.record({ ...base, action, outcome: 'ok', ...(r.version !== undefined ? { version: r.version } : {}) });
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

function serveGalleryApi(o: GalleryApiOptions): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<{ served: boolean; version?: number }> {
  const maxBytes = o.maxBodyBytes ?? 10 * 1024 * 1024;
  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (!url.pathname.startsWith('/v1/identities')) return { served: false };
    const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    if (!auth || o.keyDigests.length === 0 || !keyMatches(auth[1]!, o.keyDigests)) throw new FaceflowError('UNAUTHORIZED', 'a valid API key is required (Authorization: Bearer <key>)');
    const rest = url.pathname.slice('/v1/identities'.length);
    if (rest === '' || rest === '/') {
      if (req.method !== 'GET') return { served: false };
      const [list, version] = await Promise.all([o.store.list(), o.store.version()]);
      sendJson(res, 200, { version, identities: list.map((i) => ({ id: i.id, embeddings: i.embeddings.length, metadata: i.metadata, updatedAt: i.updatedAt })) });
      return { served: true, version };
    }
    const id = decodeURIComponent(rest.slice(1));
    if (req.method === 'DELETE') {
      const change = await o.store.delete(id);
      if (!change) throw new FaceflowError('NOT_FOUND', `no identity ${JSON.stringify(id)}`);
      sendJson(res, 200, change);
      return { served: true, version: change.version };
    }
    if (req.method === 'PUT' || req.method === 'POST') {
      const body = await readBody(req, maxBytes);
      const embedding = await (await o.embedder()).embedLargestFace(body);
      const change = await o.store.put(id, [embedding], { mode: url.searchParams.get('mode') === 'append' ? 'append' : 'replace' });
      o.logger?.info('identity enrolled', { identity: id, version: change.version });
      sendJson(res, 200, change);
      return { served: true, version: change.version };
    }
    return { served: false };
  };
}
