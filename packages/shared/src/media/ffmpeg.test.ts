/**
 * The ffmpeg adapter on clips made here with ffmpeg's test source (skipped where ffmpeg is not installed; CI
 * installs it), and with a PATH that has no ffmpeg.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaceflowError } from '../errors.js';
import { decodeRgbFrames, encodeRgbFrames, openJpegStream, probeVideo, splitJpegs } from './ffmpeg.js';

function hasFfmpeg(): boolean {
  try {
    execFileSync('ffmpeg', ['-version'], { stdio: 'ignore' });
    execFileSync('ffprobe', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const FFMPEG = hasFfmpeg();

let dir: string;
let clip: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-media-'));
  clip = path.join(dir, 'clip.mp4');
  if (FFMPEG) {
    // 2 s at 10 fps, 160x120: 20 frames, a few kB
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=10:duration=2', '-pix_fmt', 'yuv420p', clip]);
  }
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

async function failure(p: Promise<unknown>): Promise<FaceflowError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(FaceflowError);
    return e as FaceflowError;
  }
  throw new Error('expected a failure');
}

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('splitJpegs', () => {
  it('splits concatenated JPEGs across arbitrary chunk boundaries', async () => {
    const jpeg = (n: number): Buffer => Buffer.from([0xff, 0xd8, 0xff, 0xe0, n, 0x00, 0xff, 0xd9]);
    const joined = Buffer.concat([jpeg(1), jpeg(2), jpeg(3)]);
    const chunks = [joined.subarray(0, 3), joined.subarray(3, 11), joined.subarray(11)];
    expect(await all(splitJpegs(Readable.from(chunks)))).toEqual([jpeg(1), jpeg(2), jpeg(3)]);
  });
});

describe.skipIf(!FFMPEG)('the ffmpeg adapter (needs ffmpeg to make its clips)', () => {
  it('probes size, rate, frame count, duration and audio', async () => {
    const info = await probeVideo(clip);
    expect(info).toMatchObject({ width: 160, height: 120, rate: '10/1', fps: 10, frames: 20, hasAudio: false });
    expect(info.durationS).toBeCloseTo(2, 1);
  });

  it('a_reader_started_after_ffmpeg_exited_still_gets_every_frame', async () => {
    // the consumer comes late (models loading): ffmpeg has decoded the whole clip and exited by then
    const stream = await openJpegStream(clip);
    expect(await stream.exited).toBe(0);
    const jpegs = await all(stream);
    expect(jpegs).toHaveLength(20);
    expect(jpegs.every((j) => j[0] === 0xff && j[1] === 0xd8)).toBe(true);
  });

  it('the JPEG stream caps the frame rate and scales wide frames down', async () => {
    const stream = await openJpegStream(clip, { fps: 5, maxWidth: 80 });
    const jpegs = await all(stream);
    expect(jpegs).toHaveLength(10);
    const first = path.join(dir, 'first.jpg');
    await writeFile(first, jpegs[0]!);
    expect(await probeVideo(first)).toMatchObject({ width: 80, height: 60 });
  });

  it('decodes RGB frames, again on a second iteration, and encodes them back', async () => {
    const info = await probeVideo(clip);
    const frames = decodeRgbFrames(clip, info);
    const first = await all(frames);
    const second = await all(frames);
    expect(first).toHaveLength(20);
    expect(first.every((f) => f.width === 160 && f.height === 120 && f.data.length === 160 * 120 * 3)).toBe(true);
    expect(second.map((f, i) => Buffer.from(f.data).equals(first[i]!.data))).toEqual(first.map(() => true));
    const out = path.join(dir, 'out.mp4');
    const writer = encodeRgbFrames(out, info, { audioFrom: clip });
    for (const f of first) await writer.write(f);
    await writer.close();
    expect(await probeVideo(out)).toMatchObject({ width: 160, height: 120, frames: 20, hasAudio: false });
  });

  it('a file that is not there, not a video, cut short, or has no video stream is a clear error', async () => {
    expect((await failure(probeVideo(path.join(dir, 'nope.mp4')))).code).toBe('NOT_FOUND');
    await writeFile(path.join(dir, 'notes.txt'), 'this is not a video\n');
    const text = await failure(probeVideo(path.join(dir, 'notes.txt')));
    expect([text.code, text.message]).toEqual(['INVALID_ARGUMENT', expect.stringMatching(/^cannot read video .*notes\.txt: /)]);
    const wav = path.join(dir, 'audio.wav');
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'sine=duration=1', wav]);
    expect((await failure(probeVideo(wav))).message).toMatch(/audio\.wav has no video stream/);
    // the first bytes only: no moov atom (ffmpeg writes it at the end)
    const truncated = path.join(dir, 'truncated.mp4');
    await writeFile(truncated, (await readFile(clip)).subarray(0, 1500));
    expect((await failure(probeVideo(truncated))).message).toMatch(/cannot read video .*truncated\.mp4/);
    const decode = await failure(all(decodeRgbFrames(truncated, { width: 160, height: 120 })));
    expect([decode.code, decode.message]).toEqual(['INVALID_ARGUMENT', expect.stringMatching(/^ffmpeg could not decode .*truncated\.mp4: /)]);
  });

  it('an output ffmpeg cannot write is INVALID_ARGUMENT naming it', async () => {
    const writer = encodeRgbFrames(path.join(dir, 'no', 'such', 'dir', 'out.mp4'), { width: 160, height: 120, rate: '10/1' });
    const e = await failure((async () => {
      await writer.write({ data: new Uint8Array(160 * 120 * 3), width: 160, height: 120 });
      await writer.close();
    })());
    expect([e.code, e.message]).toEqual(['INVALID_ARGUMENT', expect.stringMatching(/^ffmpeg could not write .*out\.mp4/)]);
  });
});

describe('ffmpeg missing', () => {
  it('ffmpeg_missing_is_one_line_naming_what_to_install', async () => {
    const saved = process.env.PATH;
    process.env.PATH = path.join(dir, 'no-bin-here');
    try {
      const probe = await failure(probeVideo(clip));
      expect([probe.code, probe.message]).toEqual(['INVALID_CONFIG', expect.stringMatching(/^ffprobe \(ffmpeg\) is not installed or not on PATH: install ffmpeg/)]);
      const stream = await failure(openJpegStream('rtsp://127.0.0.1:9/cam'));
      expect([stream.code, stream.message]).toEqual(['INVALID_CONFIG', expect.stringMatching(/^cannot start ffmpeg: it is not installed or not on PATH: install ffmpeg/)]);
      expect((await failure(all(decodeRgbFrames(clip, { width: 160, height: 120 })))).code).toBe('INVALID_CONFIG');
      const writer = encodeRgbFrames(path.join(dir, 'x.mp4'), { width: 2, height: 2, rate: '1/1' });
      const enc = await failure((async () => {
        await writer.write({ data: new Uint8Array(12), width: 2, height: 2 });
        await writer.close();
      })());
      expect([enc.code, enc.message.split('\n')]).toEqual(['INVALID_CONFIG', [expect.stringMatching(/^cannot start ffmpeg: .*install ffmpeg/)]]);
    } finally {
      process.env.PATH = saved;
    }
  });
});
