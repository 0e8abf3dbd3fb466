/**
 * Frame sources of the ingest stage, each an async iterable of captured images:
 * - ffmpegSource: a video file, an RTSP or HTTP(S) stream, through ffmpeg, which decodes, caps the frame
 *   rate, optionally scales down, and pipes JPEG frames (@faceflow/shared/media: the one ffmpeg adapter). A file is
 *   read as fast as downstream takes it (the pipe's backpressure), with capture times on the video's own
 *   clock (start + frame index / fps); a live stream is stamped with the wall clock.
 * - folderSource: the images of a folder, in name order, stamped at 1/fps intervals.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { FaceflowError, type FrameContentType } from '@faceflow/shared';
import { openJpegStream, probeVideo } from '@faceflow/shared/media';

// the one ffmpeg adapter is @faceflow/shared/media (issue 13); its prober is re-exported for `faceflow run`
export { probeVideo, type VideoInfo } from '@faceflow/shared/media';

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

export function isStreamUrl(source: string): boolean {
  return /^(rtsps?|rtmp|https?|udp|tcp|srt):\/\//i.test(source);
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
  let fps = cap;
  let filterFps: number | undefined = cap;
  let frames: number | undefined;
  if (!live) {
    const info = await probeVideo(o.source);
    if (info.fps <= cap) {
      fps = info.fps;
      filterFps = undefined;
    }
    if (info.durationS !== undefined) frames = Math.max(1, Math.round(info.durationS * fps));
  }
  const stream = await openJpegStream(o.source, {
    rtspOverTcp: live && /^rtsps?:/i.test(o.source),
    ...(filterFps !== undefined ? { fps: filterFps } : {}),
    maxWidth: o.maxWidth ?? 1280,
    jpegQ: o.jpegQ ?? 4,
  });
  let closed = false;
  const startTs = o.startTs ?? Date.now();
  return {
    cameraId: o.cameraId,
    live,
    startTs,
    ...(frames !== undefined ? { frames } : {}),
    close() {
      closed = true;
      stream.kill();
    },
    async *[Symbol.asyncIterator]() {
      let i = 0;
      try {
        for await (const jpeg of stream) {
          if (closed) break;
          const offsetMs = Math.round((i++ * 1000) / fps);
          yield { image: jpeg, contentType: 'image/jpeg' as const, captureTs: live ? Date.now() : startTs + offsetMs, offsetMs: live ? Date.now() - startTs : offsetMs };
        }
      } finally {
        stream.kill();
        const code = await stream.closed;
        if (!closed && code !== 0 && code !== null) o.onError?.(`ffmpeg exited with code ${code}: ${stream.stderrTail(3)}`);
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
