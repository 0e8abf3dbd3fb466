/**
 * The ingest HTTP push API:
 *
 *   POST /v1/frames   body: one JPEG, PNG or WebP image (Content-Type image/jpeg|png|webp, checked against
 *                     the magic bytes); camera: header X-Camera-Id (or ?camera=); capture time: header
 *                     X-Capture-Ts in ms since the epoch (or ?ts=; default: now). Answers 202 {frameId}.
 *
 *                     Or Content-Type multipart/form-data (an HTML form, `curl -F`): exactly one file part
 *                     named `image` or `frame` (its bytes decide the format, by magic bytes; a part
 *                     Content-Type other than application/octet-stream must agree with them), and optional text
 *                     fields `cameraId` and `captureTs`. A camera id or capture time given both as a header (or
 *                     query parameter) and as a field must be the same in both, or the request is refused (400):
 *                     the key is checked against one camera, and a field must not re-attribute the frame to
 *                     another. Other fields are ignored.
 *
 * Each camera has its own API key (Authorization: Bearer <key>); the service holds only SHA-256 digests and
 * compares them in constant time. Errors: 401 bad key, 413 too large (bytes, or pixels: the header's width x
 * height over `maxPixels`, so that a decompression bomb is refused here and not by the embedder later), 415 not
 * an image, 429 overloaded (Retry-After), 503 Kafka cannot take the frame now (Retry-After), 400 anything else
 * malformed (a multipart body that does not parse, no image part). Every refusal is counted:
 * faceflow_ingest_push_rejected_total{reason} (reason: the error code, lower case).
 *
 * Size: the body is counted while it streams in and refused (413) once over the limit, before it is all
 * buffered. A multipart body may exceed the image limit by MULTIPART_ENVELOPE_BYTES (boundaries, part
 * headers, the text fields); its image part is then held to the image limit itself.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import { checkImagePixels, FaceflowError, MAX_IMAGE_PIXELS, toFaceflowError, type FrameContentType, type Metrics } from '@faceflow/shared';
import { readBody, sendJson } from '@faceflow/shared/ops';
import type { IngestStage } from './stage.js';

export interface PushApiOptions {
  stage: IngestStage;
  /** camera id -> hex SHA-256 of its API key. */
  keys: Map<string, string>;
  maxBytes?: number;
  /** Largest width x height a frame's header may declare (default MAX_IMAGE_PIXELS, the engine's limit). */
  maxPixels?: number;
  metrics?: Metrics;
  now?: () => number;
}

const ID = /^[\w.:@/-]{1,256}$/;
const IMAGE_TYPES: readonly string[] = ['image/jpeg', 'image/png', 'image/webp'];
/** Names of the file part that holds the frame in a multipart upload. */
const IMAGE_PARTS = ['image', 'frame'] as const;
/** What a multipart body may carry over the image limit: boundaries, part headers, the small text fields. */
export const MULTIPART_ENVELOPE_BYTES = 64 * 1024;
// the oldest capture time accepted (2000-01-01): a time in seconds, or a bogus one, is refused, not filed in 1970
const MIN_CAPTURE_TS = 946_684_800_000;

function parseCaptureTs(raw: string, from: string): number {
  const ts = Number(raw);
  if (raw.trim() === '' || !Number.isSafeInteger(ts) || ts < MIN_CAPTURE_TS) throw new FaceflowError('INVALID_ARGUMENT', `${from} must be ms since the epoch`);
  return ts;
}

interface MultipartFrame {
  image: Buffer;
  /** The part's own Content-Type, if it gave one. */
  declaredType: string;
  cameraId?: string;
  captureTs?: string;
}

/** The frame of a multipart/form-data body, parsed by Node's own fetch implementation (undici). */
async function parseMultipart(body: Buffer, contentType: string, maxBytes: number): Promise<MultipartFrame> {
  let form: FormData;
  try {
    form = await new Response(body, { headers: { 'content-type': contentType } }).formData();
  } catch (e) {
    throw new FaceflowError('INVALID_ARGUMENT', 'the multipart/form-data body does not parse (check the boundary and the part headers)', { cause: e });
  }
  const parts = IMAGE_PARTS.flatMap((name) => form.getAll(name));
  if (parts.length === 0) throw new FaceflowError('INVALID_ARGUMENT', `the multipart body has no image part (a file field named ${IMAGE_PARTS.join(' or ')})`);
  if (parts.length > 1) throw new FaceflowError('INVALID_ARGUMENT', `the multipart body must hold exactly one image part (${IMAGE_PARTS.join(' or ')}), not ${parts.length}`);
  const part = parts[0]!;
  if (typeof part === 'string') throw new FaceflowError('INVALID_ARGUMENT', 'the image part must be a file (a part with a filename), not a text field');
  if (part.size > maxBytes) throw new FaceflowError('IMAGE_TOO_LARGE', `image part of ${part.size} bytes is over the limit of ${maxBytes}`);
  const text = (name: string): string | undefined => {
    const values = form.getAll(name);
    if (values.length > 1) throw new FaceflowError('INVALID_ARGUMENT', `the ${name} field is given ${values.length} times`);
    const v = values[0];
    if (v !== undefined && typeof v !== 'string') throw new FaceflowError('INVALID_ARGUMENT', `the ${name} field must be text, not a file`);
    return v;
  };
  const out: MultipartFrame = { image: Buffer.from(await part.arrayBuffer()), declaredType: part.type.split(';')[0]!.trim().toLowerCase() };
  const cameraId = text('cameraId');
  const captureTs = text('captureTs');
  if (cameraId !== undefined) out.cameraId = cameraId;
  if (captureTs !== undefined) out.captureTs = captureTs;
  return out;
}

/** A value given both in the headers (or query) and in a form field must be the same in both. */
function agree(header: string | undefined, field: string | undefined, what: string): string | undefined {
  if (header !== undefined && field !== undefined && header !== field) {
    throw new FaceflowError('INVALID_ARGUMENT', `the ${what} field (${JSON.stringify(field)}) disagrees with the header or query parameter (${JSON.stringify(header)})`);
  }
  return header ?? field;
}

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
  const maxPixels = o.maxPixels ?? MAX_IMAGE_PIXELS;
  const now = o.now ?? Date.now;
  const rejected = o.metrics?.counter({ name: 'ingest_push_rejected_total', help: 'Pushed frames refused, by reason (the error code: unauthorized, image_too_large, unsupported_format, overloaded, transport...)', labelNames: ['reason'] as const });
  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/v1/frames' || req.method !== 'POST') return false;
    try {
      await handle(req, res, url);
    } catch (e) {
      rejected?.inc({ reason: toFaceflowError(e).code.toLowerCase() });
      throw e;
    }
    return true;
  };

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const contentType = String(req.headers['content-type'] ?? '');
    const type = contentType.split(';')[0]!.trim().toLowerCase();
    const multipart = type === 'multipart/form-data';
    const cameraRaw = req.headers['x-camera-id'] ?? url.searchParams.get('camera') ?? undefined;
    const headerCamera = cameraRaw === undefined ? undefined : String(cameraRaw);
    const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const checkCamera = (cameraId: string): void => {
      if (!ID.test(cameraId)) throw new FaceflowError('INVALID_ARGUMENT', 'a camera id is required (X-Camera-Id, or a cameraId form field: letters, digits, _ . : @ / -)');
      if (!auth || !cameraKeyOk(o.keys, cameraId, auth[1]!)) throw new FaceflowError('UNAUTHORIZED', 'a valid API key for this camera is required');
    };
    // the key is checked before the body is read whenever the camera is known from the headers; a multipart
    // upload that names its camera only in a field is read first (within the limit), but never without a key
    if (!multipart || headerCamera !== undefined) checkCamera(headerCamera ?? '');
    else if (!auth) throw new FaceflowError('UNAUTHORIZED', 'a valid API key for this camera is required');
    const tsRaw = req.headers['x-capture-ts'] ?? url.searchParams.get('ts') ?? undefined;
    const headerTs = tsRaw === undefined ? undefined : String(tsRaw);
    if (headerTs !== undefined) parseCaptureTs(headerTs, 'X-Capture-Ts');
    const limit = multipart ? maxBytes + MULTIPART_ENVELOPE_BYTES : maxBytes;
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) throw new FaceflowError('IMAGE_TOO_LARGE', `frame of ${declared} bytes is over the limit of ${limit}`);
    if (!multipart && !IMAGE_TYPES.includes(type)) throw new FaceflowError('UNSUPPORTED_FORMAT', 'Content-Type must be image/jpeg, image/png, image/webp or multipart/form-data');
    const body = await readBody(req, limit, 'frame');
    let image = body;
    let declaredType = '';
    let cameraId = headerCamera ?? '';
    let ts = headerTs;
    if (multipart) {
      const part = await parseMultipart(body, contentType, maxBytes);
      image = part.image;
      declaredType = part.declaredType;
      cameraId = agree(headerCamera, part.cameraId, 'cameraId') ?? '';
      if (headerCamera === undefined) checkCamera(cameraId);
      ts = agree(headerTs, part.captureTs, 'captureTs');
    }
    const captureTs = ts === undefined ? now() : parseCaptureTs(ts, headerTs === undefined ? 'the captureTs field' : 'X-Capture-Ts');
    const sniffed = sniffContentType(image);
    if (!sniffed || (!multipart && sniffed !== type)) throw new FaceflowError('UNSUPPORTED_FORMAT', multipart ? 'the image part is not a JPEG, PNG or WebP image' : `the body is not a ${type} image`);
    // a part that says what it is must say the truth (a client sending PNG bytes as image/jpeg is broken)
    if (declaredType && declaredType !== 'application/octet-stream' && declaredType !== sniffed) {
      throw new FaceflowError('UNSUPPORTED_FORMAT', `the image part is declared ${declaredType} but its bytes are ${sniffed}`);
    }
    checkImagePixels(image, maxPixels, 'the frame');
    const frameId = await o.stage.push(cameraId, image, sniffed, captureTs);
    sendJson(res, 202, { frameId, cameraId, captureTs });
  }
}
