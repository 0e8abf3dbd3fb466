/**
 * The ingest HTTP push API:
 *
 *   POST /v1/frames   body: one JPEG, PNG or WebP image (Content-Type image/jpeg|png|webp, checked against
 *                     the magic bytes); camera: header X-Camera-Id (or ?camera=); capture time: header
 *                     X-Capture-Ts in ms since the epoch (or ?ts=; default: now). Answers 202 {frameId}.
 *
 * Each camera has its own API key (Authorization: Bearer <key>); the service holds only SHA-256 digests and
 * compares them in constant time. Errors: 401 bad key, 413 too large, 415 not an image, 429 overloaded
 * (Retry-After), 400 anything else malformed.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import { FaceflowError, sendJson, type FrameContentType } from '@faceflow/shared';
import type { IngestStage } from './stage.js';

export interface PushApiOptions {
  stage: IngestStage;
  /** camera id -> hex SHA-256 of its API key. */
  keys: Map<string, string>;
  maxBytes?: number;
  now?: () => number;
}

const ID = /^[\w.:@/-]{1,256}$/;

export function sniffContentType(b: Buffer): FrameContentType | undefined {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'image/jpeg';
  if (b.length >= 8 && b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'image/png';
  if (b.length >= 12 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') return 'image/webp';
  return undefined;
}

/** Constant-time check of a camera's key against its stored digest (unknown cameras cost the same). */
export function cameraKeyOk(keys: Map<string, string>, cameraId: string, key: string): boolean {
  const want = Buffer.from(keys.get(cameraId) ?? '0'.repeat(64), 'hex');
  const got = createHash('sha256').update(key).digest();
  return timingSafeEqual(want, got) && keys.has(cameraId);
}

export function pushApi(o: PushApiOptions): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<boolean> {
  const maxBytes = o.maxBytes ?? 8 * 1024 * 1024;
  const now = o.now ?? Date.now;
  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/v1/frames' || req.method !== 'POST') return false;
    const cameraId = String(req.headers['x-camera-id'] ?? url.searchParams.get('camera') ?? '');
    if (!ID.test(cameraId)) throw new FaceflowError('INVALID_ARGUMENT', 'a camera id is required (X-Camera-Id: letters, digits, _ . : @ / -)');
    const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    if (!auth || !cameraKeyOk(o.keys, cameraId, auth[1]!)) throw new FaceflowError('UNAUTHORIZED', 'a valid API key for this camera is required');
    const tsRaw = req.headers['x-capture-ts'] ?? url.searchParams.get('ts');
    const captureTs = tsRaw === undefined || tsRaw === null ? now() : Number(tsRaw);
    if (!Number.isSafeInteger(captureTs) || captureTs < 946_684_800_000) throw new FaceflowError('INVALID_ARGUMENT', 'X-Capture-Ts must be ms since the epoch');
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) throw new FaceflowError('IMAGE_TOO_LARGE', `frame of ${declared} bytes is over the limit of ${maxBytes}`);
    const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim();
    if (!['image/jpeg', 'image/png', 'image/webp'].includes(type)) throw new FaceflowError('UNSUPPORTED_FORMAT', 'Content-Type must be image/jpeg, image/png or image/webp');
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of req as AsyncIterable<Buffer>) {
      n += c.length;
      if (n > maxBytes) throw new FaceflowError('IMAGE_TOO_LARGE', `frame is over the limit of ${maxBytes} bytes`);
      chunks.push(c);
    }
    const body = Buffer.concat(chunks);
    const sniffed = sniffContentType(body);
    if (sniffed !== type) throw new FaceflowError('UNSUPPORTED_FORMAT', `the body is not a ${type} image`);
    const frameId = await o.stage.push(cameraId, body, sniffed, captureTs);
    sendJson(res, 202, { frameId, cameraId, captureTs });
    return true;
  };
}
