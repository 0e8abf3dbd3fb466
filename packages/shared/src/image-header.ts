/**
 * An image's width and height read from its header (JPEG SOF, PNG IHDR, WebP VP8/VP8L/VP8X), without
 * decoding it, and the one pixel limit of faceflow. The engine refuses an image over the limit before it
 * decodes (packages/engine/src/image.ts); ingest refuses a pushed frame over it at once (413), so that a
 * decompression bomb (a small file that decodes to gigapixels) is not accepted with 202 and dead-lettered
 * later by the embedder (issue 12).
 */
import { FaceflowError } from './errors.js';

/** The largest width x height faceflow decodes (engine and ingest). */
export const MAX_IMAGE_PIXELS = 40_000_000;

export interface ImageSize {
  width: number;
  height: number;
}

const SOF = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

function jpegSize(b: Uint8Array): ImageSize | undefined {
  let i = 2;
  while (i + 3 < b.length) {
    if (b[i] !== 0xff) return undefined;
    const marker = b[i + 1]!;
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2; // no length
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) return undefined; // end, or scan data before any frame header
    const len = (b[i + 2]! << 8) | b[i + 3]!;
    if (len < 2) return undefined;
    if (SOF.has(marker)) {
      if (i + 8 >= b.length) return undefined;
      return { height: (b[i + 5]! << 8) | b[i + 6]!, width: (b[i + 7]! << 8) | b[i + 8]! };
    }
    i += 2 + len;
  }
  return undefined;
}

const u32be = (b: Uint8Array, i: number): number => ((b[i]! << 24) >>> 0) + (b[i + 1]! << 16) + (b[i + 2]! << 8) + b[i + 3]!;
const u24le = (b: Uint8Array, i: number): number => b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16);
const tag = (b: Uint8Array, i: number): string => String.fromCharCode(b[i]!, b[i + 1]!, b[i + 2]!, b[i + 3]!);

function pngSize(b: Uint8Array): ImageSize | undefined {
  if (b.length < 24 || tag(b, 12) !== 'IHDR') return undefined;
  return { width: u32be(b, 16), height: u32be(b, 20) };
}

function webpSize(b: Uint8Array): ImageSize | undefined {
  if (b.length < 30) return undefined;
  const chunk = tag(b, 12);
  if (chunk === 'VP8X') return { width: u24le(b, 24) + 1, height: u24le(b, 27) + 1 };
  if (chunk === 'VP8L' && b[20] === 0x2f) {
    const bits = b[21]! | (b[22]! << 8) | (b[23]! << 16) | (b[24]! << 24);
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (chunk === 'VP8 ' && b[23] === 0x9d && b[24] === 0x01 && b[25] === 0x2a) {
    return { width: (b[26]! | (b[27]! << 8)) & 0x3fff, height: (b[28]! | (b[29]! << 8)) & 0x3fff };
  }
  return undefined;
}

/** The size a JPEG, PNG or WebP header declares; undefined when the header does not say (or is not one). */
export function imageSize(b: Uint8Array): ImageSize | undefined {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return jpegSize(b);
  if (b.length >= 8 && b[0] === 0x89 && tag(b, 1) === 'PNG\r') return pngSize(b);
  if (b.length >= 12 && tag(b, 0) === 'RIFF' && tag(b, 8) === 'WEBP') return webpSize(b);
  return undefined;
}

/**
 * Refuses (IMAGE_TOO_LARGE) an image whose header declares more than `maxPixels`; an image whose header says
 * nothing passes (the decoder, with the same limit, is the judge of those).
 */
export function checkImagePixels(b: Uint8Array, maxPixels = MAX_IMAGE_PIXELS, what = 'image'): ImageSize | undefined {
  const size = imageSize(b);
  if (size && size.width * size.height > maxPixels) {
    throw new FaceflowError('IMAGE_TOO_LARGE', `${what} is ${size.width}x${size.height} = ${size.width * size.height} pixels, over the limit of ${maxPixels} pixels`, {
      details: { width: size.width, height: size.height, maxPixels },
    });
  }
  return size;
}
