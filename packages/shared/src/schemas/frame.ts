/**
 * Frame v1: one captured image from one camera, the input of the embedder.
 *
 * Frames are the one binary message: image bytes travel raw, not base64 (no 33 % inflation, no encode
 * cost at 25 fps per camera). Wire format, all integers big-endian:
 *
 *     offset 0   4 bytes   magic "FFRM"
 *     offset 4   1 byte    schema version (1)
 *     offset 5   4 bytes   uint32 N, length of the header
 *     offset 9   N bytes   UTF-8 JSON header {"frameId","cameraId","captureTs","contentType","width"?,"height"?}
 *     offset 9+N ...       the image bytes, to the end of the message
 *
 * contentType is an encoded image (image/jpeg, image/png, image/webp) or raw pixels (image/x-raw-rgb,
 * image/x-raw-rgba: width and height are then required and the byte count must be width*height*channels).
 * The Kafka key of a frame is its cameraId (see topics.ts).
 */
import { FaceflowError } from '../errors.js';
import { schemaVersionError, type MessageSchema } from './codec.js';
import { FieldReader, invalid } from './validate.js';

export const FRAME_CONTENT_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'image/x-raw-rgb', 'image/x-raw-rgba'] as const;
export type FrameContentType = (typeof FRAME_CONTENT_TYPES)[number];

export interface Frame {
  frameId: string;
  cameraId: string;
  /** Capture time, ms since the Unix epoch. */
  captureTs: number;
  contentType: FrameContentType;
  /** The image bytes (a view; do not mutate). */
  image: Uint8Array;
  width?: number;
  height?: number;
  /**
   * A frame of a recording (a video file or an image folder) that ingest reads as fast as the bus takes it:
   * its frames queue by design, so it is never "late" (the embedder's lateFrameMs). Absent: a live frame
   * (a stream, a pushed frame). Optional, so frames of earlier writers still read as live.
   */
  recorded?: true;
}

const NAME = 'frame';
const VERSION = 1;
const MAGIC = Buffer.from('FFRM', 'ascii');
const PREFIX = 9;
const MAX_HEADER = 64 * 1024;
/** An upper bound on what a frame may carry (Kafka's own message limit is usually lower). */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;
export const ID_PATTERN = /^[\w.:@/-]+$/;

function readHeader(r: FieldReader): Omit<Frame, 'image'> {
  const frameId = r.string('frameId', { max: 256 });
  const cameraId = r.string('cameraId', { max: 256, pattern: ID_PATTERN });
  const captureTs = r.timestamp('captureTs');
  const contentType = r.oneOf('contentType', FRAME_CONTENT_TYPES);
  const width = r.optionalNumber('width', { integer: true, min: 1, max: 65_535 });
  const height = r.optionalNumber('height', { integer: true, min: 1, max: 65_535 });
  const out: Omit<Frame, 'image'> = { frameId, cameraId, captureTs, contentType };
  if (width !== undefined) out.width = width;
  if (height !== undefined) out.height = height;
  if (r.optionalBoolean('recorded') === true) out.recorded = true;
  return out;
}

function checkImage(header: Omit<Frame, 'image'>, image: unknown): Uint8Array {
  if (!(image instanceof Uint8Array)) throw invalid(NAME, 'image', 'must be a Uint8Array or Buffer');
  if (image.byteLength === 0) throw invalid(NAME, 'image', 'must not be empty');
  if (image.byteLength > MAX_FRAME_BYTES) throw invalid(NAME, 'image', `must be at most ${MAX_FRAME_BYTES} bytes`);
  const channels = header.contentType === 'image/x-raw-rgb' ? 3 : header.contentType === 'image/x-raw-rgba' ? 4 : 0;
  if (channels) {
    if (header.width === undefined) throw invalid(NAME, 'width', `is required for ${header.contentType}`);
    if (header.height === undefined) throw invalid(NAME, 'height', `is required for ${header.contentType}`);
    const want = header.width * header.height * channels;
    if (image.byteLength !== want) {
      throw invalid(NAME, 'image', `must be width*height*${channels} = ${want} bytes for ${header.contentType} (got ${image.byteLength})`);
    }
  }
  return image;
}

export const FrameSchema: MessageSchema<Frame> = {
  name: NAME,
  version: VERSION,
  validate(value: unknown): Frame {
    const r = FieldReader.of(NAME, value);
    const header = readHeader(r);
    return { ...header, image: checkImage(header, r.raw('image')) };
  },
  encode(msg: Frame): Buffer {
    const frame = FrameSchema.validate(msg);
    const { image, ...header } = frame;
    const json = Buffer.from(JSON.stringify(header), 'utf8');
    const prefix = Buffer.alloc(PREFIX);
    MAGIC.copy(prefix, 0);
    prefix.writeUInt8(VERSION, 4);
    prefix.writeUInt32BE(json.length, 5);
    return Buffer.concat([prefix, json, image]);
  },
  decode(input: Uint8Array): Frame {
    const buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    if (buf.length < PREFIX || !buf.subarray(0, 4).equals(MAGIC)) {
      throw invalid(NAME, '(magic)', 'must start with "FFRM" (not a faceflow frame)');
    }
    const v = buf.readUInt8(4);
    if (v !== VERSION) throw schemaVersionError(NAME, v, VERSION);
    const n = buf.readUInt32BE(5);
    if (n > MAX_HEADER || PREFIX + n > buf.length) throw invalid(NAME, '(header)', `length ${n} does not fit the message`);
    let header: unknown;
    try {
      header = JSON.parse(buf.toString('utf8', PREFIX, PREFIX + n));
    } catch (e) {
      throw new FaceflowError('INVALID_MESSAGE', `${NAME}: header is not valid JSON`, { cause: e, details: { schema: NAME, field: '(header)' } });
    }
    const h = readHeader(FieldReader.of(NAME, header));
    return { ...h, image: checkImage(h, buf.subarray(PREFIX + n)) };
  },
};
