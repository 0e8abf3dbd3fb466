/**
 * Image input for the engine: bytes or a file path in, 8-bit RGB pixels out, through sharp (libvips).
 *
 * What goes in is untrusted (camera frames, HTTP uploads, user files), so every decode is bounded before any
 * pixel is decoded: the byte size is checked first, the format is recognised from its magic bytes (never from
 * a file extension), the header's width x height is checked against a pixel limit, and sharp is given the same
 * limit (`limitInputPixels`) so that a decompression bomb is refused by libvips itself as well. Truncated or
 * corrupt data is an error, not a grey half-image: sharp is told `failOn`.
 */
import { readFile, stat } from 'node:fs/promises';
import sharp from 'sharp';
import { FaceflowError, MAX_IMAGE_PIXELS } from '@faceflow/shared';
import type { RgbImage } from './geometry.js';

/** The formats the engine accepts. */
export type ImageFormat = 'jpeg' | 'png' | 'webp';

export const SUPPORTED_IMAGE_FORMATS: readonly ImageFormat[] = ['jpeg', 'png', 'webp'];

/** A decoded image: EXIF orientation applied, alpha flattened, grey promoted to RGB. */
export interface DecodedImage extends RgbImage {
  /** The format the input was in. */
  format: ImageFormat;
}

/**
 * How sensitive decoding is to damaged data (sharp's `failOn`): 'truncated' refuses only data that ends
 * early; 'error' also refuses data the decoder reports as an error; 'warning' (the default) also refuses data
 * the decoder warns about, e.g. a JPEG with a corrupt entropy-coded segment that would otherwise decode to a
 * partly grey picture.
 */
export type DecodeStrictness = 'truncated' | 'error' | 'warning';

export interface ImageLimits {
  /** Largest input in bytes. Default 50 MiB. */
  maxBytes?: number;
  /** Largest width x height in pixels, checked before decoding. Default 40 megapixels. */
  maxPixels?: number;
  /** Default 'warning'. */
  failOn?: DecodeStrictness;
  /** libvips gives up on one decode after this long. Default 30 s. */
  timeoutSeconds?: number;
}

export const DEFAULT_IMAGE_LIMITS: Readonly<Required<ImageLimits>> = Object.freeze({
  maxBytes: 50 * 1024 * 1024,
  maxPixels: MAX_IMAGE_PIXELS,
  failOn: 'warning',
  timeoutSeconds: 30,
});

/** Colour that transparent pixels are flattened onto. */
const FLATTEN_BACKGROUND = { r: 255, g: 255, b: 255 };

/** Formats recognised by magic bytes, including some we refuse, so the error can say what the input was. */
type SniffedFormat = ImageFormat | 'gif' | 'bmp' | 'tiff' | 'heif/avif' | 'jpeg2000' | 'svg' | 'pdf' | 'ico';

function startsWith(buf: Uint8Array, bytes: readonly number[], offset = 0): boolean {
  if (buf.length < offset + bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (buf[offset + i] !== bytes[i]) return false;
  return true;
}

function ascii(s: string): number[] {
  return [...s].map((c) => c.charCodeAt(0));
}

/** Recognises an image format from its first bytes; undefined when nothing is recognised. */
export function sniffImageFormat(buf: Uint8Array): SniffedFormat | undefined {
  if (startsWith(buf, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(buf, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith(buf, ascii('RIFF')) && startsWith(buf, ascii('WEBP'), 8)) return 'webp';
  if (startsWith(buf, ascii('GIF87a')) || startsWith(buf, ascii('GIF89a'))) return 'gif';
  if (startsWith(buf, ascii('BM'))) return 'bmp';
  if (startsWith(buf, [0x49, 0x49, 0x2a, 0x00]) || startsWith(buf, [0x4d, 0x4d, 0x00, 0x2a])) return 'tiff';
  if (startsWith(buf, ascii('ftyp'), 4)) return 'heif/avif';
  if (startsWith(buf, [0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50, 0x20, 0x20]) || startsWith(buf, [0xff, 0x4f, 0xff, 0x51])) return 'jpeg2000';
  if (startsWith(buf, ascii('%PDF'))) return 'pdf';
  if (startsWith(buf, [0x00, 0x00, 0x01, 0x00])) return 'ico';
  const head = Buffer.from(buf.subarray(0, 256)).toString('latin1').trimStart();
  if (head.startsWith('<svg') || (head.startsWith('<?xml') && head.includes('<svg'))) return 'svg';
  return undefined;
}

function isSupported(f: SniffedFormat | undefined): f is ImageFormat {
  return f === 'jpeg' || f === 'png' || f === 'webp';
}

function resolveLimits(limits: ImageLimits | undefined): Required<ImageLimits> {
  const l = { ...DEFAULT_IMAGE_LIMITS, ...stripUndefined(limits ?? {}) };
  for (const key of ['maxBytes', 'maxPixels', 'timeoutSeconds'] as const) {
    const v = l[key];
    if (!Number.isFinite(v) || v <= 0) {
      throw new FaceflowError('INVALID_ARGUMENT', `image limit ${key} must be a positive number, got ${String(v)}`, { details: { [key]: v } });
    }
  }
  if (!['truncated', 'error', 'warning'].includes(l.failOn)) {
    throw new FaceflowError('INVALID_ARGUMENT', `image limit failOn must be 'truncated', 'error' or 'warning', got ${String(l.failOn)}`);
  }
  return l;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}

function tooManyBytes(bytes: number, maxBytes: number, what: string): FaceflowError {
  return new FaceflowError(
    'IMAGE_TOO_LARGE',
    `${what} is ${formatBytes(bytes)} (${bytes} bytes), over the limit of ${formatBytes(maxBytes)} (${maxBytes} bytes)`,
    { details: { bytes, maxBytes } },
  );
}

function tooManyPixels(width: number, height: number, maxPixels: number): FaceflowError {
  const pixels = width * height;
  return new FaceflowError(
    'IMAGE_TOO_LARGE',
    `image is ${width}x${height} = ${(pixels / 1e6).toFixed(1)} megapixels, over the limit of ${(maxPixels / 1e6).toFixed(1)} megapixels (${maxPixels} pixels)`,
    { details: { width, height, pixels, maxPixels } },
  );
}

async function readInput(input: Buffer | Uint8Array | string, maxBytes: number): Promise<Buffer> {
  if (typeof input === 'string') {
    let size: number;
    try {
      const st = await stat(input);
      if (!st.isFile()) throw new FaceflowError('INVALID_ARGUMENT', `not a file: ${input}`, { details: { path: input } });
      size = st.size;
    } catch (e) {
      if (e instanceof FaceflowError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        throw new FaceflowError('NOT_FOUND', `image file not found: ${input}`, { cause: e, details: { path: input } });
      }
      throw new FaceflowError('INVALID_ARGUMENT', `cannot read image file ${input}: ${(e as Error).message}`, { cause: e, details: { path: input } });
    }
    // Refuse by size before reading a byte of it.
    if (size > maxBytes) throw tooManyBytes(size, maxBytes, `image file ${input}`);
    try {
      return await readFile(input);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new FaceflowError('NOT_FOUND', `image file not found: ${input}`, { cause: e, details: { path: input } });
      throw new FaceflowError('INVALID_ARGUMENT', `cannot read image file ${input}: ${(e as Error).message}`, { cause: e, details: { path: input } });
    }
  }
  if (!(input instanceof Uint8Array)) {
    throw new FaceflowError('INVALID_ARGUMENT', 'image input must be a Buffer, a Uint8Array or a file path');
  }
  return Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
}

const PNG_IEND = [0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82];

/** Whether the data visibly ends early (used only to word the error after a failed decode). */
function endsEarly(buf: Uint8Array, format: ImageFormat): boolean {
  const n = buf.length;
  if (format === 'jpeg') {
    // a JPEG ends with EOI (FF D9); allow a little trailing padding
    for (let i = n - 2; i >= Math.max(0, n - 64); i--) if (buf[i] === 0xff && buf[i + 1] === 0xd9) return false;
    return true;
  }
  if (format === 'png') return !startsWith(buf, PNG_IEND, n - PNG_IEND.length);
  // WebP: RIFF size (little-endian at offset 4) + 8 bytes of RIFF header
  if (n < 12) return true;
  const riffSize = ((buf[4] ?? 0) | ((buf[5] ?? 0) << 8) | ((buf[6] ?? 0) << 16) | ((buf[7] ?? 0) << 24)) >>> 0;
  return riffSize + 8 > n;
}

/** Maps an error thrown by sharp/libvips during a decode to a FaceflowError. */
function decodeError(e: unknown, format: ImageFormat, maxPixels: number, buf: Uint8Array): FaceflowError {
  if (e instanceof FaceflowError) return e;
  const raw = e instanceof Error ? e.message : String(e);
  const message = raw.replace(/\s*\n\s*/g, '; ').trim();
  if (/exceeds pixel limit/i.test(message)) {
    return new FaceflowError('IMAGE_TOO_LARGE', `image is over the limit of ${maxPixels} pixels (refused by the decoder before decoding)`, {
      cause: e,
      details: { maxPixels },
    });
  }
  if (/unsupported image format/i.test(message)) {
    return new FaceflowError('UNSUPPORTED_FORMAT', `unsupported image format (the decoder does not recognise the data)`, { cause: e });
  }
  if (/^timeout/i.test(message)) {
    // Retrying the same image would time out again, so not retriable, unlike the code's default.
    return new FaceflowError('TIMEOUT', `decoding the ${format} image timed out (${message})`, { cause: e, retriable: false });
  }
  const truncated = /premature end of (JPEG|input)|end of stream|truncat|unexpected end/i.test(message) || endsEarly(buf, format);
  const what = truncated ? `truncated ${format.toUpperCase()} image (the data ends before the image does)` : `corrupt ${format.toUpperCase()} image`;
  return new FaceflowError('INVALID_IMAGE', `${what}: ${message}`, { cause: e, details: { format, truncated } });
}

/**
 * Decodes a JPEG, PNG or WebP image (bytes or a file path) to 8-bit RGB.
 *
 * EXIF orientation is applied (width and height are those of the upright picture), alpha is flattened onto
 * white, greyscale and CMYK become RGB, 16-bit becomes 8-bit, an embedded ICC profile is converted to sRGB,
 * and an animated WebP gives its first frame.
 *
 * Errors (FaceflowError): NOT_FOUND (no such file), UNSUPPORTED_FORMAT (empty input, not an image, or another
 * format), IMAGE_TOO_LARGE (bytes or pixels over the limit; checked before decoding), INVALID_IMAGE (truncated
 * or corrupt data), TIMEOUT (libvips took longer than limits.timeoutSeconds).
 */
export async function decodeImage(input: Buffer | Uint8Array | string, limits?: ImageLimits): Promise<DecodedImage> {
  const l = resolveLimits(limits);
  const buf = await readInput(input, l.maxBytes);
  const source = typeof input === 'string' ? ` (${input})` : '';
  if (buf.length === 0) throw new FaceflowError('UNSUPPORTED_FORMAT', `empty input: no image data${source}`);
  if (buf.length > l.maxBytes) throw tooManyBytes(buf.length, l.maxBytes, 'image');

  const sniffed = sniffImageFormat(buf);
  if (!isSupported(sniffed)) {
    const what = sniffed ? `${sniffed.toUpperCase()} image` : 'data that is not a recognised image';
    throw new FaceflowError(
      'UNSUPPORTED_FORMAT',
      `unsupported image format${source}: ${what}; supported formats are JPEG, PNG and WebP`,
      { details: { detected: sniffed ?? 'unknown' } },
    );
  }
  const format = sniffed;

  // Header only: no pixel is decoded here. Its size check gives a clear message; the decoder's own
  // limitInputPixels below is the second line of defence.
  let meta: sharp.Metadata;
  try {
    meta = await sharp(buf, { limitInputPixels: false, failOn: l.failOn }).metadata();
  } catch (e) {
    throw decodeError(e, format, l.maxPixels, buf);
  }
  if (meta.format !== format) {
    throw new FaceflowError('UNSUPPORTED_FORMAT', `image data${source} starts like ${format} but the decoder reads it as ${String(meta.format)}`, {
      details: { detected: format, decoder: meta.format },
    });
  }
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  if (!(width > 0 && height > 0)) {
    throw new FaceflowError('INVALID_IMAGE', `${format.toUpperCase()} image${source} has no valid dimensions (${width}x${height})`);
  }
  if (width * height > l.maxPixels) throw tooManyPixels(width, height, l.maxPixels);

  try {
    const { data, info } = await sharp(buf, { limitInputPixels: l.maxPixels, failOn: l.failOn })
      .timeout({ seconds: Math.max(1, Math.ceil(l.timeoutSeconds)) })
      .rotate()
      .flatten({ background: FLATTEN_BACKGROUND })
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || data.length !== info.width * info.height * 3) {
      throw new FaceflowError('INTERNAL', `decoder returned ${info.channels} channels and ${data.length} bytes for ${info.width}x${info.height}, expected RGB`);
    }
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height, format };
  } catch (e) {
    throw decodeError(e, format, l.maxPixels, buf);
  }
}

function checkRgb(image: RgbImage, what: string): void {
  const { data, width, height } = image ?? ({} as RgbImage);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new FaceflowError('INVALID_ARGUMENT', `${what}: width and height must be positive integers, got ${String(width)}x${String(height)}`);
  }
  if (!(data instanceof Uint8Array)) throw new FaceflowError('INVALID_ARGUMENT', `${what}: data must be a Uint8Array`);
  if (data.length !== width * height * 3) {
    throw new FaceflowError(
      'INVALID_ARGUMENT',
      `${what}: ${width}x${height} RGB needs ${width * height * 3} bytes, data has ${data.length}`,
      { details: { width, height, bytes: data.length } },
    );
  }
}

/** Wraps raw RGB (3 channels, HWC) as an RgbImage after checking that the sizes agree. Does not copy. */
export function imageFromRgb(data: Uint8Array, width: number, height: number): RgbImage {
  const image = { data, width, height };
  checkRgb(image, 'imageFromRgb');
  return image;
}

function fromRgb(image: RgbImage): sharp.Sharp {
  const buf = Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength);
  return sharp(buf, { raw: { width: image.width, height: image.height, channels: 3 } });
}

/** Encodes RGB pixels as PNG. */
export async function encodePng(image: RgbImage, options: { compressionLevel?: number } = {}): Promise<Buffer> {
  checkRgb(image, 'encodePng');
  return fromRgb(image).png({ compressionLevel: options.compressionLevel ?? 6 }).toBuffer();
}

/** Encodes RGB pixels as JPEG; quality 1..100 (default 90). */
export async function encodeJpeg(image: RgbImage, quality = 90): Promise<Buffer> {
  checkRgb(image, 'encodeJpeg');
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) {
    throw new FaceflowError('INVALID_ARGUMENT', `JPEG quality must be an integer 1..100, got ${String(quality)}`);
  }
  return fromRgb(image).jpeg({ quality }).toBuffer();
}

export interface ResizeOptions {
  /**
   * 'fill' (default) stretches to exactly width x height; 'contain' keeps the aspect ratio and pads with
   * `background`; 'cover' keeps the aspect ratio and crops the centre.
   */
  fit?: 'fill' | 'contain' | 'cover';
  /** Padding colour for 'contain', default black. */
  background?: { r: number; g: number; b: number };
  /** Resampling kernel, default 'lanczos3'; 'linear' is closest to a bilinear resize in TF.js. */
  kernel?: 'nearest' | 'linear' | 'cubic' | 'mitchell' | 'lanczos2' | 'lanczos3';
}

/** Resizes RGB pixels to exactly width x height. */
export async function resizeImage(image: RgbImage, width: number, height: number, options: ResizeOptions = {}): Promise<RgbImage> {
  checkRgb(image, 'resizeImage');
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new FaceflowError('INVALID_ARGUMENT', `resizeImage: target size must be positive integers, got ${String(width)}x${String(height)}`);
  }
  const bg = options.background ?? { r: 0, g: 0, b: 0 };
  const { data, info } = await fromRgb(image)
    .resize(width, height, { fit: options.fit ?? 'fill', kernel: options.kernel ?? 'lanczos3', background: { ...bg, alpha: 1 } })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.width !== width || info.height !== height || info.channels !== 3) {
    throw new FaceflowError('INTERNAL', `resize returned ${info.width}x${info.height}x${info.channels}, expected ${width}x${height}x3`);
  }
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width, height };
}
