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
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import { FaceflowError, readBody, sendJson, type GalleryStore, type Logger } from '@faceflow/shared';

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

export function galleryApi(o: GalleryApiOptions): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<boolean> {
  const maxBytes = o.maxBodyBytes ?? 10 * 1024 * 1024;
  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (!url.pathname.startsWith('/v1/identities')) return false;
    const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    if (!auth || o.keyDigests.length === 0 || !keyMatches(auth[1]!, o.keyDigests)) throw new FaceflowError('UNAUTHORIZED', 'a valid API key is required (Authorization: Bearer <key>)');
    const rest = url.pathname.slice('/v1/identities'.length);
    if (rest === '' || rest === '/') {
      if (req.method !== 'GET') return false;
      const [list, version] = await Promise.all([o.store.list(), o.store.version()]);
      sendJson(res, 200, { version, identities: list.map((i) => ({ id: i.id, embeddings: i.embeddings.length, metadata: i.metadata, updatedAt: i.updatedAt })) });
      return true;
    }
    const id = decodeURIComponent(rest.slice(1));
    if (req.method === 'DELETE') {
      const change = await o.store.delete(id);
      if (!change) throw new FaceflowError('NOT_FOUND', `no identity ${JSON.stringify(id)}`);
      sendJson(res, 200, change);
      return true;
    }
    if (req.method === 'PUT' || req.method === 'POST') {
      const body = await readBody(req, maxBytes);
      const embedding = await (await o.embedder()).embedLargestFace(body);
      const change = await o.store.put(id, [embedding], { mode: url.searchParams.get('mode') === 'append' ? 'append' : 'replace' });
      o.logger?.info('identity enrolled', { identity: id, version: change.version });
      sendJson(res, 200, change);
      return true;
    }
    return false;
  };
}
