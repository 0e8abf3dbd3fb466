import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaceflowError } from '@faceflow/shared';
import { decodeImage, encodeJpeg, encodePng, imageFromRgb, resizeImage, sniffImageFormat } from './image.js';
import { failure } from '../testkit/failure.testkit.js';

sharp.concurrency(1); // two shared cores

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'faceflow-image-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Resolves to the FaceflowError that `p` rejects with (fails the test if it resolves or throws anything else). */
function noise(width = 256, height = 256): sharp.Sharp {
  return sharp({ create: { width, height, channels: 3, background: '#888888', noise: { type: 'gaussian', mean: 128, sigma: 40 } } });
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const typeAndData = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typeAndData));
  return Buffer.concat([len, typeAndData, crc]);
}

/** A PNG whose header says width x height; `idat` is its (already deflated) pixel data. */
function craftPng(width: number, height: number, bitDepth: number, colourType: number, idat: Buffer): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = colourType;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', idat),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('decodeImage: formats and conversions', () => {
  it('decodes a JPEG, a PNG and a WebP to RGB HWC', async () => {
    const base = noise(40, 30);
    for (const [format, buf] of [
      ['jpeg', await base.clone().jpeg().toBuffer()],
      ['png', await base.clone().png().toBuffer()],
      ['webp', await base.clone().webp().toBuffer()],
    ] as const) {
      const img = await decodeImage(buf);
      expect(img.format).toBe(format);
      expect([img.width, img.height]).toEqual([40, 30]);
      expect(img.data).toBeInstanceOf(Uint8Array);
      expect(img.data.length).toBe(40 * 30 * 3);
    }
  });

  it('keeps pixels exactly for a lossless PNG, row-major RGB', async () => {
    const data = new Uint8Array(4 * 2 * 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 37) % 256;
    const png = await encodePng(imageFromRgb(data, 4, 2));
    const img = await decodeImage(png);
    expect([img.width, img.height, img.format]).toEqual([4, 2, 'png']);
    expect(Array.from(img.data)).toEqual(Array.from(data));
  });

  it('honours EXIF orientation: orientation 6 decodes to the upright (rotated) size and content', async () => {
    // Stored 64x48: left half red, right half blue. Orientation 6 = rotate 90 degrees clockwise to display,
    // so upright it is 48x64 with red on top and blue below.
    const stored = Buffer.alloc(64 * 48 * 3);
    for (let y = 0; y < 48; y++) {
      for (let x = 0; x < 64; x++) {
        const o = (y * 64 + x) * 3;
        if (x < 32) stored[o] = 255;
        else stored[o + 2] = 255;
      }
    }
    const jpg = await sharp(stored, { raw: { width: 64, height: 48, channels: 3 } }).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    expect((await sharp(jpg).metadata()).orientation).toBe(6);
    const img = await decodeImage(jpg);
    expect([img.width, img.height]).toEqual([48, 64]);
    const px = (x: number, y: number) => Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));
    const top = px(24, 8);
    const bottom = px(24, 56);
    expect(top[0]).toBeGreaterThan(200);
    expect(top[2]).toBeLessThan(60);
    expect(bottom[2]).toBeGreaterThan(200);
    expect(bottom[0]).toBeLessThan(60);
  });

  it('flattens alpha onto white and drops the alpha channel', async () => {
    const rgba = Buffer.from([255, 0, 0, 255, 0, 0, 255, 0]); // opaque red, fully transparent blue
    const png = await sharp(rgba, { raw: { width: 2, height: 1, channels: 4 } }).png().toBuffer();
    const img = await decodeImage(png);
    expect(img.data.length).toBe(2 * 3);
    expect(Array.from(img.data)).toEqual([255, 0, 0, 255, 255, 255]);
  });

  it('promotes greyscale (and grey + alpha) to RGB', async () => {
    const grey = await sharp(Buffer.from([0, 100, 200, 255]), { raw: { width: 2, height: 2, channels: 1 } })
      .toColourspace('b-w')
      .png()
      .toBuffer();
    expect((await sharp(grey).metadata()).channels).toBe(1);
    const img = await decodeImage(grey);
    expect(Array.from(img.data)).toEqual([0, 0, 0, 100, 100, 100, 200, 200, 200, 255, 255, 255]);

    const greyAlpha = await sharp(Buffer.from([100, 255, 100, 0]), { raw: { width: 2, height: 1, channels: 2 } })
      .toColourspace('b-w')
      .png()
      .toBuffer();
    const img2 = await decodeImage(greyAlpha);
    expect(Array.from(img2.data)).toEqual([100, 100, 100, 255, 255, 255]);
  });

  it('reduces a 16-bit PNG to 8 bits per channel', async () => {
    const png16 = await noise(8, 4).png().toColourspace('rgb16').toBuffer();
    expect((await sharp(png16).metadata()).depth).toBe('ushort');
    const img = await decodeImage(png16);
    expect(img.data.length).toBe(8 * 4 * 3);
  });

  it('reads a file path, recognising the format from the bytes, not the extension', async () => {
    const p = join(dir, 'really-a-png.jpg');
    await writeFile(p, await noise(10, 10).png().toBuffer());
    const img = await decodeImage(p);
    expect([img.format, img.width, img.height]).toEqual(['png', 10, 10]);
  });

  it('accepts a plain Uint8Array (not a Buffer)', async () => {
    const buf = await noise(5, 5).png().toBuffer();
    const img = await decodeImage(new Uint8Array(buf));
    expect(img.width).toBe(5);
  });
});

describe('decodeImage: refusals', () => {
  it('refuses a text file named .jpg as UNSUPPORTED_FORMAT', async () => {
    const p = join(dir, 'notes.jpg');
    await writeFile(p, 'this is not a picture\n');
    const e = await failure(decodeImage(p));
    expect(e.code).toBe('UNSUPPORTED_FORMAT');
    expect(e.retriable).toBe(false);
    expect(e.message).toContain('JPEG, PNG and WebP');
  });

  it('refuses an empty buffer, a GIF, a BMP and a TIFF as UNSUPPORTED_FORMAT, naming what it saw', async () => {
    const empty = await failure(decodeImage(Buffer.alloc(0)));
    expect(empty.code).toBe('UNSUPPORTED_FORMAT');
    expect(empty.message).toMatch(/empty/);

    const gif = await failure(decodeImage(await noise(8, 8).gif().toBuffer()));
    expect(gif.code).toBe('UNSUPPORTED_FORMAT');
    expect(gif.message).toContain('GIF');

    // a minimal 1x1 24-bit BMP
    const bmp = Buffer.alloc(58);
    bmp.write('BM', 0, 'latin1');
    bmp.writeUInt32LE(58, 2);
    bmp.writeUInt32LE(54, 10);
    bmp.writeUInt32LE(40, 14);
    bmp.writeInt32LE(1, 18);
    bmp.writeInt32LE(1, 22);
    bmp.writeUInt16LE(1, 26);
    bmp.writeUInt16LE(24, 28);
    const b = await failure(decodeImage(bmp));
    expect(b.code).toBe('UNSUPPORTED_FORMAT');
    expect(b.message).toContain('BMP');

    const tiff = await failure(decodeImage(await noise(8, 8).tiff().toBuffer()));
    expect(tiff.code).toBe('UNSUPPORTED_FORMAT');
    expect(tiff.message).toContain('TIFF');
  });

  it('refuses a missing path as NOT_FOUND and a directory as INVALID_ARGUMENT', async () => {
    const missing = await failure(decodeImage(join(dir, 'no-such-file.png')));
    expect(missing.code).toBe('NOT_FOUND');
    expect(missing.message).toContain('no-such-file.png');
    const isDir = await failure(decodeImage(dir));
    expect(isDir.code).toBe('INVALID_ARGUMENT');
  });

  it('refuses a truncated JPEG (baseline and progressive) as INVALID_IMAGE', async () => {
    for (const progressive of [false, true]) {
      const jpg = await noise().jpeg({ progressive }).toBuffer();
      const e = await failure(decodeImage(jpg.subarray(0, Math.floor(jpg.length * 0.7))));
      expect(e.code).toBe('INVALID_IMAGE');
      expect(e.message).toMatch(/truncated JPEG/);
      expect(e.message).toMatch(/premature end/i);
    }
  });

  it('refuses a truncated PNG as INVALID_IMAGE, including one cut inside its header', async () => {
    const png = await noise().png().toBuffer();
    const mid = await failure(decodeImage(png.subarray(0, Math.floor(png.length * 0.7))));
    expect(mid.code).toBe('INVALID_IMAGE');
    expect(mid.message).toMatch(/^truncated PNG image/);
    expect(mid.details).toMatchObject({ format: 'png', truncated: true });
    const head = await failure(decodeImage(png.subarray(0, 20)));
    expect(head.code).toBe('INVALID_IMAGE');
  });

  it('refuses a JPEG with corrupt entropy-coded data as INVALID_IMAGE (failOn warning), accepts it with failOn truncated', async () => {
    const jpg = Buffer.from(await noise().jpeg().toBuffer());
    // a stray restart marker in the middle of the entropy-coded data: libjpeg warns "Corrupt JPEG data"
    const at = Math.floor(jpg.length / 2);
    jpg[at] = 0xff;
    jpg[at + 1] = 0xd4;
    const e = await failure(decodeImage(jpg));
    expect(e.code).toBe('INVALID_IMAGE');
    expect(e.message).toMatch(/^corrupt JPEG image: .*Corrupt JPEG data/);
    const lenient = await decodeImage(jpg, { failOn: 'truncated' });
    expect(lenient.width).toBe(256);
  });

  it('refuses a truncated WebP as INVALID_IMAGE', async () => {
    const webp = await noise().webp().toBuffer();
    const e = await failure(decodeImage(webp.subarray(0, Math.floor(webp.length * 0.7))));
    expect(e.code).toBe('INVALID_IMAGE');
    expect(e.message).toMatch(/^truncated WEBP image/);
  });

  it('refuses input over the byte limit, saying the size and the limit, before reading a file', async () => {
    const png = await noise(64, 64).png().toBuffer();
    const e = await failure(decodeImage(png, { maxBytes: 1000 }));
    expect(e.code).toBe('IMAGE_TOO_LARGE');
    expect(e.message).toContain(`${png.length} bytes`);
    expect(e.message).toContain('1000 bytes');
    const p = join(dir, 'big.png');
    await writeFile(p, png);
    const f = await failure(decodeImage(p, { maxBytes: 1000 }));
    expect(f.code).toBe('IMAGE_TOO_LARGE');
    expect(f.details).toMatchObject({ bytes: png.length, maxBytes: 1000 });
  });

  it('refuses a 20000x20000 PNG (header only) as IMAGE_TOO_LARGE without decoding it', async () => {
    const bomb = craftPng(20000, 20000, 8, 2, deflateSync(Buffer.alloc(1)));
    expect(bomb.length).toBeLessThan(100);
    const e = await failure(decodeImage(bomb));
    expect(e.code).toBe('IMAGE_TOO_LARGE');
    expect(e.message).toContain('20000x20000');
    expect(e.message).toContain('400.0 megapixels');
    expect(e.message).toContain('40.0 megapixels');
  });

  it('refuses a valid, fully decodable 20000x20000 PNG bomb quickly and without allocating its pixels', async () => {
    // 1-bit greyscale: 2500 bytes a row + 1 filter byte; 20000 rows of zeros deflate to about 50 KB, but
    // would decode to 20000 * 20000 * 3 = 1.2 GB of RGB.
    const raw = Buffer.alloc(20000 * 2501);
    const bomb = craftPng(20000, 20000, 1, 0, deflateSync(raw, { level: 9 }));
    expect(bomb.length).toBeLessThan(200_000);
    const before = process.memoryUsage().rss;
    const t0 = Date.now();
    const e = await failure(decodeImage(bomb));
    expect(e.code).toBe('IMAGE_TOO_LARGE');
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024);
    // the pixel limit is configurable
    const small = await noise(100, 100).png().toBuffer();
    const s = await failure(decodeImage(small, { maxPixels: 9999 }));
    expect(s.code).toBe('IMAGE_TOO_LARGE');
    expect(s.message).toContain('100x100');
  });

  it('rejects bad limits as INVALID_ARGUMENT', async () => {
    const png = await noise(4, 4).png().toBuffer();
    expect((await failure(decodeImage(png, { maxPixels: 0 }))).code).toBe('INVALID_ARGUMENT');
    expect((await failure(decodeImage(png, { maxBytes: Number.NaN }))).code).toBe('INVALID_ARGUMENT');
  });
});

describe('sniffImageFormat', () => {
  it('recognises magic bytes', () => {
    expect(sniffImageFormat(Buffer.from([0xff, 0xd8, 0xff, 0xe0]))).toBe('jpeg');
    expect(sniffImageFormat(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe('png');
    expect(sniffImageFormat(Buffer.from('RIFF\0\0\0\0WEBPVP8 ', 'latin1'))).toBe('webp');
    expect(sniffImageFormat(Buffer.from('RIFF\0\0\0\0WAVEfmt ', 'latin1'))).toBeUndefined();
    expect(sniffImageFormat(Buffer.from('GIF89a', 'latin1'))).toBe('gif');
    expect(sniffImageFormat(Buffer.from('hello'))).toBeUndefined();
    expect(sniffImageFormat(Buffer.alloc(0))).toBeUndefined();
  });
});

describe('helpers', () => {
  it('imageFromRgb checks sizes', () => {
    expect(() => imageFromRgb(new Uint8Array(11), 2, 2)).toThrow(FaceflowError);
    expect(() => imageFromRgb(new Uint8Array(12), 0, 2)).toThrow(/positive integers/);
    const img = imageFromRgb(new Uint8Array(12), 2, 2);
    expect([img.width, img.height]).toEqual([2, 2]);
  });

  it('encodeJpeg round-trips approximately and checks quality', async () => {
    const data = new Uint8Array(16 * 16 * 3).fill(128);
    const jpg = await encodeJpeg(imageFromRgb(data, 16, 16), 95);
    const img = await decodeImage(jpg);
    expect(img.format).toBe('jpeg');
    expect(Math.abs((img.data[0] ?? 0) - 128)).toBeLessThanOrEqual(2);
    await expect(encodeJpeg(imageFromRgb(data, 16, 16), 0)).rejects.toThrow(/quality/);
  });

  it('resizeImage gives exactly the requested size for each fit', async () => {
    const src = await decodeImage(await noise(40, 20).png().toBuffer());
    for (const fit of ['fill', 'contain', 'cover'] as const) {
      const out = await resizeImage(src, 16, 16, { fit, kernel: 'linear' });
      expect([out.width, out.height, out.data.length]).toEqual([16, 16, 16 * 16 * 3]);
    }
    const contain = await resizeImage(imageFromRgb(new Uint8Array(40 * 20 * 3).fill(255), 40, 20), 16, 16, { fit: 'contain' });
    expect(contain.data[0]).toBe(0); // padded with black at the top-left
    expect(contain.data[(8 * 16 + 8) * 3]).toBe(255); // the picture in the middle
  });
});
