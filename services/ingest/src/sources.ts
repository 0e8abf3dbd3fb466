/**
 * Frame sources of the ingest stage, each an async iterable of captured images:
 * - ffmpegSource: a video file, an RTSP or HTTP(S) stream, through ffmpeg, which decodes, caps the frame
 *   rate, optionally scales down, and pipes JPEG frames (split here on their SOI/EOI markers). A file is
 *   read as fast as downstream takes it (the pipe's backpressure), with capture times on the video's own
 *   clock (start + frame index / fps); a live stream is stamped with the wall clock.
 * - folderSource: the images of a folder, in name order, stamped at 1/fps intervals.
 */
import { spawn, execFile, type ChildProcessByStdio } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { FaceflowError, type FrameContentType } from '@faceflow/shared';

export interface CapturedImage {
  image: Buffer;
  contentType: FrameContentType;
  captureTs: number;
  /** Position in the source (ms from its start), when it has one. */
  offsetMs?: number;
}

export interface FrameSource extends AsyncIterable<CapturedImage> {
  readonly cameraId: string;
  /** A live source cannot wait: frames that cannot be sent in time are dropped. */
  readonly live: boolean;
  /** Where the source's capture clock started (ms since the epoch). */
  readonly startTs: number;
  /** How many frames it will give, when that is known beforehand (a file's estimate; a folder's count). */
  readonly frames?: number;
  /** Stops the source (the iteration ends). */
  close(): void;
}

const run = promisify(execFile);

export function isStreamUrl(source: string): boolean {
  return /^(rtsps?|rtmp|https?|udp|tcp|srt):\/\//i.test(source);
}

export interface VideoInfo {
  width: number;
  height: number;
  fps: number;
  durationS: number | undefined;
}

export async function probeVideo(file: string): Promise<VideoInfo> {
  let out: string;
  try {
    ({ stdout: out } = await run(
      'ffprobe',
      ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height,avg_frame_rate,r_frame_rate:format=duration', '-of', 'json', file],
      { timeout: 30_000 },
    ));
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') throw new FaceflowError('INVALID_CONFIG', 'ffprobe (ffmpeg) is not installed or not on PATH: install ffmpeg (e.g. apt-get install -y ffmpeg)', { cause: e });
    throw new FaceflowError('INVALID_ARGUMENT', `cannot read video ${file}: ${(err.stderr ?? err.message).trim().split('\n')[0]}`, { cause: e });
  }
  const j = JSON.parse(out) as { streams?: { width?: number; height?: number; avg_frame_rate?: string; r_frame_rate?: string }[]; format?: { duration?: string } };
  const s = j.streams?.[0];
  if (!s?.width || !s.height) throw new FaceflowError('INVALID_ARGUMENT', `${file} has no video stream`);
  const rate = (r: string | undefined): number => {
    const [a, b] = (r ?? '0/1').split('/').map(Number);
    return b ? a! / b : 0;
  };
  const fps = rate(s.avg_frame_rate) || rate(s.r_frame_rate) || 25;
  const d = Number(j.format?.duration);
  return { width: s.width, height: s.height, fps, durationS: Number.isFinite(d) ? d : undefined };
}

const SOI = Buffer.from([0xff, 0xd8]);
const EOI = Buffer.from([0xff, 0xd9]);

/** Splits a stream of concatenated JPEGs (ffmpeg's image2pipe/mjpeg) into images. */
export async function* splitJpegs(stream: AsyncIterable<Buffer>, maxBytes = 16 * 1024 * 1024): AsyncGenerator<Buffer> {
  let buf: Buffer = Buffer.alloc(0);
  for await (const chunk of stream) {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    for (;;) {
      const start = buf.indexOf(SOI);
      if (start < 0) {
        buf = Buffer.alloc(0);
        break;
      }
      const end = buf.indexOf(EOI, start + 2);
      if (end < 0) {
        if (start > 0) buf = buf.subarray(start);
        if (buf.length > maxBytes) throw new FaceflowError('IMAGE_TOO_LARGE', `a frame from ffmpeg exceeds ${maxBytes} bytes`);
        break;
      }
      yield Buffer.from(buf.subarray(start, end + 2));
      buf = buf.subarray(end + 2);
    }
  }
}

export interface FfmpegSourceOptions {
  source: string;
  cameraId: string;
  /** Frame-rate cap (default 5). */
  fps?: number;
  /** Frames wider than this are scaled down (default 1280; 0 keeps the size). */
  maxWidth?: number;
  /** Live (default: true for stream URLs, false for files). */
  live?: boolean;
  /** JPEG quality for ffmpeg's -q:v, 2 (best) .. 31 (default 4). */
  jpegQ?: number;
  startTs?: number;
  onError?: (message: string) => void;
}

export async function ffmpegSource(o: FfmpegSourceOptions): Promise<FrameSource> {
  const live = o.live ?? isStreamUrl(o.source);
  const cap = o.fps ?? 5;
  if (!(cap > 0 && cap <= 120)) throw new FaceflowError('INVALID_ARGUMENT', `fps must be in (0, 120], got ${cap}`);
  const args = ['-hide_banner', '-loglevel', 'error', '-nostdin'];
  let fps = cap;
  let frames: number | undefined;
  const filters: string[] = [];
  if (live) {
    if (/^rtsps?:/i.test(o.source)) args.push('-rtsp_transport', 'tcp');
    args.push('-i', o.source);
    filters.push(`fps=${cap}`);
  } else {
    const info = await probeVideo(o.source);
    if (info.fps > cap) filters.push(`fps=${cap}`);
    else fps = info.fps;
    if (info.durationS !== undefined) frames = Math.max(1, Math.round(info.durationS * fps));
    args.push('-i', o.source);
  }
  const maxWidth = o.maxWidth ?? 1280;
  if (maxWidth > 0) filters.push(`scale='min(${maxWidth},iw)':-2`);
  if (filters.length) args.push('-vf', filters.join(','));
  args.push('-an', '-f', 'image2pipe', '-c:v', 'mjpeg', '-q:v', String(o.jpegQ ?? 4), 'pipe:1');

  let child: ChildProcessByStdio<null, Readable, Readable>;
  try {
    child = spawn('ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new FaceflowError('INVALID_CONFIG', `cannot start ffmpeg: ${(e as Error).message}`, { cause: e });
  }
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-4000);
  });
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', (e) => reject(new FaceflowError('INVALID_CONFIG', `cannot start ffmpeg (${e.message}): install ffmpeg (e.g. apt-get install -y ffmpeg) or put it on PATH`, { cause: e })));
  });
  await spawned;
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  let closed = false;
  const startTs = o.startTs ?? Date.now();
  return {
    cameraId: o.cameraId,
    live,
    startTs,
    ...(frames !== undefined ? { frames } : {}),
    close() {
      closed = true;
      child.kill('SIGTERM');
    },
    async *[Symbol.asyncIterator]() {
      let i = 0;
      try {
        for await (const jpeg of splitJpegs(child.stdout as AsyncIterable<Buffer>)) {
          if (closed) break;
          const offsetMs = Math.round((i++ * 1000) / fps);
          yield { image: jpeg, contentType: 'image/jpeg' as const, captureTs: live ? Date.now() : startTs + offsetMs, offsetMs: live ? Date.now() - startTs : offsetMs };
        }
      } finally {
        if (child.exitCode === null) child.kill('SIGTERM');
        const code = await exited;
        if (!closed && code !== 0 && code !== null) o.onError?.(`ffmpeg exited with code ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
      }
    },
  };
}

const IMAGE_TYPES: Record<string, FrameContentType> = { '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.png': 'image/png', '.webp': 'image/webp' };

export async function folderSource(o: { dir: string; cameraId: string; fps?: number; startTs?: number }): Promise<FrameSource> {
  let files: string[];
  try {
    files = (await readdir(o.dir)).filter((f) => IMAGE_TYPES[path.extname(f).toLowerCase()]).sort();
  } catch (e) {
    throw new FaceflowError('NOT_FOUND', `cannot read folder ${o.dir}: ${(e as Error).message}`, { cause: e });
  }
  if (files.length === 0) throw new FaceflowError('INVALID_ARGUMENT', `no .jpg, .png or .webp images in ${o.dir}`);
  const fps = o.fps ?? 5;
  const startTs = o.startTs ?? Date.now();
  let closed = false;
  return {
    cameraId: o.cameraId,
    live: false,
    startTs,
    frames: files.length,
    close() {
      closed = true;
    },
    async *[Symbol.asyncIterator]() {
      for (const [i, f] of files.entries()) {
        if (closed) return;
        const offsetMs = Math.round((i * 1000) / fps);
        yield { image: await readFile(path.join(o.dir, f)), contentType: IMAGE_TYPES[path.extname(f).toLowerCase()]!, captureTs: startTs + offsetMs, offsetMs };
      }
    },
  };
}

/** The content type of an image file by its name (.jpg, .jpeg, .png, .webp), or undefined. */
export function imageContentType(file: string): FrameContentType | undefined {
  return IMAGE_TYPES[path.extname(file).toLowerCase()];
}

/**
 * One image file as a source of one frame (`faceflow run --source photo.jpg`): ffmpeg's frame-rate cap
 * turns a single image into no frame at all (issue 12).
 */
export async function imageFileSource(o: { file: string; cameraId: string; startTs?: number }): Promise<FrameSource> {
  const contentType = imageContentType(o.file);
  if (!contentType) throw new FaceflowError('INVALID_ARGUMENT', `${o.file} is not a .jpg, .png or .webp image`);
  let image: Buffer;
  try {
    image = await readFile(o.file);
  } catch (e) {
    throw new FaceflowError('NOT_FOUND', `cannot read image ${o.file}: ${(e as Error).message}`, { cause: e });
  }
  const startTs = o.startTs ?? Date.now();
  let closed = false;
  return {
    cameraId: o.cameraId,
    live: false,
    startTs,
    frames: 1,
    close() {
      closed = true;
    },
    async *[Symbol.asyncIterator]() {
      if (!closed) yield { image, contentType, captureTs: startTs, offsetMs: 0 };
    },
  };
}
