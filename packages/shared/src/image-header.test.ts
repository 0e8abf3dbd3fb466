import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { checkImagePixels, imageSize } from './image-header.js';

const has = (cmd: string): boolean => {
  try {
    execFileSync(cmd, ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

describe('image header sizes', () => {
  it.skipIf(!has('ffmpeg'))('reads the width and height of real JPEG, PNG and WebP files', () => {
    for (const [codec, ext] of [['mjpeg', 'jpg'], ['png', 'png'], ['libwebp', 'webp']] as const) {
      const img = execFileSync('ffmpeg', ['-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=321x123', '-frames:v', '1', '-c:v', codec, '-f', 'image2pipe', '-'], { maxBuffer: 1 << 24 });
      expect([ext, imageSize(img)]).toEqual([ext, { width: 321, height: 123 }]);
    }
  });

  it('refuses a header over the pixel limit, passes one that says nothing', () => {
    const png = Buffer.alloc(33);
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(png);
    png.write('IHDR', 12, 'latin1');
    png.writeUInt32BE(50_000, 16);
    png.writeUInt32BE(50_000, 20);
    expect(() => checkImagePixels(png, 40_000_000)).toThrow(/50000x50000 = 2500000000 pixels, over the limit of 40000000/);
    expect(checkImagePixels(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 4, 0, 0, 0xff, 0xd9]))).toBeUndefined();
  });
});
