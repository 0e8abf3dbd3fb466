/**
 * The push API over real HTTP (node:http behind the shared ops server, requests from fetch): a raw image body
 * and a multipart/form-data upload both become one Frame on the bus; whatever is refused publishes nothing.
 */
import { createHash } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FrameSchema, type Frame } from '@faceflow/shared';
import { createMetrics, startOpsServer, type OpsServer } from '@faceflow/shared/ops';
import { MULTIPART_ENVELOPE_BYTES, pushApi } from './push-api.js';
import { IngestStage } from './stage.js';

const T0 = Date.UTC(2026, 0, 1);
const MAX = 4096;
const jpeg = (n = 16): Buffer => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(n, 7), Buffer.from([0xff, 0xd9])]);
const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

let server: OpsServer;
const sent: Frame[] = [];

beforeAll(async () => {
  const stage = new IngestStage({ framesTopic: 'frames', publish: async (_t, m) => void sent.push(...m.map((x) => FrameSchema.decode(x.value))) });
  const keys = new Map([
    ['cam1', sha('key-1')],
    ['cam2', sha('key-2')],
  ]);
  server = await startOpsServer({ port: 0, host: '127.0.0.1', metrics: createMetrics(), handle: pushApi({ stage, keys, maxBytes: MAX, now: () => T0 }) });
});
afterAll(() => server.close());
afterEach(() => void (sent.length = 0));

const post = (body: FormData | Buffer | string, headers: Record<string, string> = {}) =>
  fetch(`${server.url}/v1/frames`, { method: 'POST', body, headers: { authorization: 'Bearer key-1', ...headers } });

function form(fields: Record<string, string | Blob>): FormData {
  const fd = new FormData();
  for (const [k, v] of Object.entries(fields)) {
    if (typeof v === 'string') fd.append(k, v);
    else fd.append(k, v, 'frame.jpg');
  }
  return fd;
}

/** The status and error of a refused request, and that nothing reached the bus. */
async function refused(r: Response): Promise<{ status: number; code: string; message: string }> {
  const body = (await r.json()) as { error: { code: string; message: string } };
  expect(sent).toEqual([]);
  return { status: r.status, ...body.error };
}

describe('push API: raw image body', () => {
  it('publishes a JPEG body with the camera and capture time of its headers', async () => {
    const r = await post(jpeg(), { 'content-type': 'image/jpeg', 'x-camera-id': 'cam1', 'x-capture-ts': String(T0 + 5) });
    expect(r.status).toBe(202);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ cameraId: 'cam1', captureTs: T0 + 5, contentType: 'image/jpeg' });
    expect(Buffer.from(sent[0]!.image).equals(jpeg())).toBe(true);
  });

  it('refuses a body over the limit (413) and a body that is not the declared image (415)', async () => {
    expect(await refused(await post(jpeg(MAX), { 'content-type': 'image/jpeg', 'x-camera-id': 'cam1' }))).toMatchObject({ status: 413, code: 'IMAGE_TOO_LARGE' });
    expect(await refused(await post(png, { 'content-type': 'image/jpeg', 'x-camera-id': 'cam1' }))).toMatchObject({ status: 415, message: 'the body is not a image/jpeg image' });
    expect(await refused(await post('hello', { 'content-type': 'text/plain', 'x-camera-id': 'cam1' }))).toMatchObject({ status: 415, message: /multipart\/form-data/ });
  });
});

describe('push API: multipart/form-data', () => {
  it('publishes the image part, with the camera and capture time of its fields', async () => {
    const r = await post(form({ cameraId: 'cam1', captureTs: String(T0 + 7), image: new Blob([jpeg()], { type: 'image/jpeg' }) }));
    expect(r.status).toBe(202);
    expect(await r.json()).toMatchObject({ cameraId: 'cam1', captureTs: T0 + 7 });
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ cameraId: 'cam1', captureTs: T0 + 7, contentType: 'image/jpeg' });
    expect(Buffer.from(sent[0]!.image).equals(jpeg())).toBe(true);
  });

  it('takes a part named frame, typed application/octet-stream, with the camera in the header; the format comes from the bytes', async () => {
    const r = await post(form({ frame: new Blob([png], { type: 'application/octet-stream' }) }), { 'x-camera-id': 'cam1' });
    expect(r.status).toBe(202);
    expect(sent[0]).toMatchObject({ cameraId: 'cam1', captureTs: T0, contentType: 'image/png' });
  });

  it('a field that repeats a header must agree with it: a frame is never re-attributed to another camera', async () => {
    const image = new Blob([jpeg()], { type: 'image/jpeg' });
    expect(await refused(await post(form({ cameraId: 'cam2', image }), { 'x-camera-id': 'cam1' }))).toMatchObject({ status: 400, message: /cameraId field \("cam2"\) disagrees/ });
    expect(await refused(await post(form({ captureTs: String(T0 + 1), image }), { 'x-camera-id': 'cam1', 'x-capture-ts': String(T0 + 2) }))).toMatchObject({
      status: 400,
      message: /captureTs field/,
    });
    // agreeing values are fine
    expect((await post(form({ cameraId: 'cam1', captureTs: String(T0 + 2), image }), { 'x-camera-id': 'cam1', 'x-capture-ts': String(T0 + 2) })).status).toBe(202);
  });

  it('checks the key against the camera of the field, and refuses a request with no key before reading it', async () => {
    const image = new Blob([jpeg()], { type: 'image/jpeg' });
    expect(await refused(await post(form({ cameraId: 'cam2', image })))).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
    expect(await refused(await post(form({ image }), { 'x-camera-id': 'cam1', authorization: 'Bearer key-2' }))).toMatchObject({ status: 401 });
    const anonymous = await fetch(`${server.url}/v1/frames`, { method: 'POST', body: form({ cameraId: 'cam1', image }) });
    expect(await refused(anonymous)).toMatchObject({ status: 401 });
    expect(await refused(await post(form({ image })))).toMatchObject({ status: 400, message: /camera id is required/ });
    expect((await post(form({ cameraId: 'cam2', image }), { authorization: 'Bearer key-2' })).status).toBe(202);
  });

  it('refuses a malformed multipart body (400)', async () => {
    const garbage = '--xyz\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\nno closing boundary';
    expect(await refused(await post(garbage, { 'content-type': 'multipart/form-data; boundary=xyz', 'x-camera-id': 'cam1' }))).toMatchObject({
      status: 400,
      code: 'INVALID_ARGUMENT',
      message: /multipart\/form-data body does not parse/,
    });
    // no boundary at all
    expect(await refused(await post('x', { 'content-type': 'multipart/form-data', 'x-camera-id': 'cam1' }))).toMatchObject({ status: 400 });
  });

  it('refuses a multipart body without an image part, with a text field as the image, or with two images (400)', async () => {
    expect(await refused(await post(form({ cameraId: 'cam1', photo: new Blob([jpeg()]) })))).toMatchObject({ status: 400, message: /no image part \(a file field named image or frame\)/ });
    expect(await refused(await post(form({ cameraId: 'cam1', image: 'not a file' })))).toMatchObject({ status: 400, message: /must be a file/ });
    const two = form({ cameraId: 'cam1', image: new Blob([jpeg()]), frame: new Blob([jpeg()]) });
    expect(await refused(await post(two))).toMatchObject({ status: 400, message: /exactly one image part/ });
  });

  it('holds the image part to the image limit (413), and the whole body to the limit plus the envelope', async () => {
    const big = await refused(await post(form({ cameraId: 'cam1', image: new Blob([jpeg(MAX)], { type: 'image/jpeg' }) })));
    expect(big).toMatchObject({ status: 413, code: 'IMAGE_TOO_LARGE', message: `image part of ${MAX + 6} bytes is over the limit of ${MAX}` });
    const huge = await refused(await post(form({ cameraId: 'cam1', image: new Blob([jpeg()]), padding: 'x'.repeat(MAX + MULTIPART_ENVELOPE_BYTES) })));
    expect(huge).toMatchObject({ status: 413, message: /over the limit of/ });
  });

  it('checks the image part by its magic bytes (415), and a declared type against them', async () => {
    expect(await refused(await post(form({ cameraId: 'cam1', image: new Blob(['GIF89a...'], { type: 'image/gif' }) })))).toMatchObject({
      status: 415,
      message: 'the image part is not a JPEG, PNG or WebP image',
    });
    expect(await refused(await post(form({ cameraId: 'cam1', image: new Blob([png], { type: 'image/jpeg' }) })))).toMatchObject({
      status: 415,
      message: 'the image part is declared image/jpeg but its bytes are image/png',
    });
  });
});

/** A PNG header that declares width x height (the rest does not matter: nothing decodes it). */
function pngHeader(width: number, height: number): Buffer {
  const b = Buffer.alloc(33);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(b, 0);
  b.writeUInt32BE(13, 8);
  b.write('IHDR', 12, 'latin1');
  b.writeUInt32BE(width, 16);
  b.writeUInt32BE(height, 20);
  return b;
}

describe('push API: refusals are counted, a bomb is refused, an outage answers at once', () => {
  const metrics = createMetrics();
  let broker: 'up' | 'down' | 'hangs' = 'up';
  let s: OpsServer;
  const got: Frame[] = [];
  beforeAll(async () => {
    const stage = new IngestStage({
      framesTopic: 'frames',
      pushTimeoutMs: 200,
      available: () => broker !== 'down',
      publish: (_t, m) => (broker === 'hangs' ? new Promise<void>(() => undefined) : Promise.resolve(void got.push(...m.map((x) => FrameSchema.decode(x.value))))),
    });
    s = await startOpsServer({ port: 0, host: '127.0.0.1', metrics, handle: pushApi({ stage, keys: new Map([['cam1', sha('key-1')]]), maxBytes: MAX, maxPixels: 1_000_000, metrics, now: () => T0 }) });
  });
  afterAll(() => s.close());
  const send = (body: Buffer, headers: Record<string, string> = {}) =>
    fetch(`${s.url}/v1/frames`, { method: 'POST', body, headers: { authorization: 'Bearer key-1', 'content-type': 'image/png', 'x-camera-id': 'cam1', ...headers } });

  it('a_decompression_bomb_is_refused_at_ingest_with_413 (the header declares more pixels than the limit)', async () => {
    const r = await send(pngHeader(100_000, 100_000));
    expect(r.status).toBe(413);
    expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/100000x100000 = 10000000000 pixels, over the limit of 1000000 pixels/);
    expect((await send(pngHeader(1000, 1000))).status).toBe(202);
    expect(got).toHaveLength(1);
  });

  it('every_refused_push_is_counted_by_reason', async () => {
    await send(png, { authorization: 'Bearer wrong' });
    await send(Buffer.from('text'), { 'content-type': 'text/plain' });
    await send(Buffer.alloc(MAX + 1));
    const text = await metrics.metricsText();
    expect(text).toMatch(/faceflow_ingest_push_rejected_total\{reason="unauthorized"\} 1\n/);
    expect(text).toMatch(/faceflow_ingest_push_rejected_total\{reason="unsupported_format"\} 1\n/);
    // the bomb of the test above, and the body over the byte limit
    expect(text).toMatch(/faceflow_ingest_push_rejected_total\{reason="image_too_large"\} 2\n/);
  });

  it('a_push_is_refused_at_once_with_503_and_retry_after_when_kafka_cannot_take_it', async () => {
    broker = 'down';
    const down = await send(png);
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('5');
    broker = 'hangs';
    const hangs = await send(png);
    expect(hangs.status).toBe(503);
    expect(hangs.headers.get('retry-after')).toBe('5');
    expect(((await hangs.json()) as { error: { message: string } }).error.message).toMatch(/did not take the frame within 200 ms/);
    broker = 'up';
    expect((await send(png)).status).toBe(202);
    expect(await metrics.metricsText()).toMatch(/faceflow_ingest_push_rejected_total\{reason="transport"\} 2\n/);
  });
});
