/**
 * The one ffmpeg adapter (issue 13 step 2), used by the CLI (`faceflow redact` on a video) and the ingest
 * service alike: ffprobe for a video's size, rate and streams; ffmpeg decoding to raw RGB frames or to a pipe
 * of JPEGs; ffmpeg encoding raw RGB frames to H.264. Node builtins only (ffmpeg is the Debian package
 * `ffmpeg`; scripts/setup.sh installs it), so importing it loads nothing else.
 *
 * Errors: ffmpeg or ffprobe missing is INVALID_CONFIG, one line that says what to install; a file that is not
 * a video, or that ffmpeg cannot decode or write, is INVALID_ARGUMENT with ffmpeg's last line; a file that
 * does not exist is NOT_FOUND.
 *
 * Every ffmpeg started here has a reader on its stdout from the moment it starts: Node throws away what a
 * child process wrote to a pipe that nobody read once the child exits, so a short video decoded before its
 * consumer got to it (`faceflow run` while the models load) gave no frame at all (issue 12). The reader
 * takes no data itself: the pipe's backpressure still holds ffmpeg back until the frames are consumed.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { FaceflowError } from '../errors.js';

export interface VideoInfo {
  width: number;
  height: number;
  /** frames per second as ffmpeg's fraction, e.g. "25/1" or "30000/1001" */
  rate: string;
  fps: number;
  /** the container's frame count, when it says */
  frames?: number;
  /** the container's duration in seconds, when it says */
  durationS?: number;
  hasAudio: boolean;
}

/** One decoded frame: RGB, 3 bytes a pixel, row-major (the engine's RgbImage has this shape). */
export interface RgbFrame {
  data: Uint8Array;
  width: number;
  height: number;
}

export type FfmpegTool = 'ffmpeg' | 'ffprobe';

/** How long ffprobe may take on a file before the file counts as unreadable. */
const PROBE_TIMEOUT_MS = 30_000;
/** How much of a tool's stderr is kept for its error message. */
const STDERR_KEEP = 4000;

/** The one line for a tool that cannot be started, with the fix. */
export function ffmpegNotFound(tool: FfmpegTool, cause: unknown): FaceflowError {
  const e = cause as NodeJS.ErrnoException | undefined;
  const why = e?.code === 'ENOENT' || e === undefined ? 'is not installed or not on PATH' : `failed to start (${e.message})`;
  // ffprobe is named with the package it comes in; ffmpeg is what the reader was about to start
  const what = tool === 'ffprobe' ? `ffprobe (ffmpeg) ${why}` : `cannot start ffmpeg: it ${why}`;
  return new FaceflowError('INVALID_CONFIG', `${what}: install ffmpeg (e.g. apt-get install -y ffmpeg) or put it on PATH`, { cause });
}

function lastLines(stderr: string, n: number): string {
  return stderr.trim().split('\n').slice(-n).join(' | ');
}

/** A running ffmpeg or ffprobe whose stdout is read by the caller. */
export interface ToolProcess {
  /** stdout, as chunks (iterate it once) */
  readonly stdout: AsyncIterable<Buffer>;
  /** the exit code once the process ended (its output may still be unread); null when it was killed */
  readonly exited: Promise<number | null>;
  /** the exit code once the process ended and its stdout and stderr were read to the end */
  readonly closed: Promise<number | null>;
  /** the last `lines` lines of its stderr (one line, joined by " | "); '' when it printed nothing */
  stderrTail(lines?: number): string;
  /** stops it (no-op once it exited) */
  kill(signal?: NodeJS.Signals): void;
}

/**
 * Starts `tool` with `args`, stdout piped. Resolves once the process runs; rejects with `ffmpegNotFound` when it
 * cannot start. A reader is attached to stdout at once (see the module comment).
 */
export function startTool(tool: FfmpegTool, args: string[]): Promise<ToolProcess> {
  return new Promise((resolve, reject) => {
    let child: ChildProcessByStdio<null, Readable, Readable>;
    try {
      child = spawn(tool, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      reject(ffmpegNotFound(tool, e));
      return;
    }
    // a 'readable' listener is a reader to Node: the output stays buffered (up to the stream's high-water
    // mark, then in the pipe) for the caller, even after the process exited
    child.stdout.on('readable', () => undefined);
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString('utf8')).slice(-STDERR_KEEP);
    });
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    const closed = new Promise<number | null>((done) => child.once('close', (code) => done(code)));
    child.on('error', (e) => reject(ffmpegNotFound(tool, e)));
    child.once('spawn', () =>
      resolve({
        stdout: child.stdout as AsyncIterable<Buffer>,
        exited,
        closed,
        stderrTail: (lines = 1) => lastLines(stderr, lines),
        kill: (signal = 'SIGTERM') => {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        },
      }),
    );
  });
}

function parseRate(r: unknown): { rate: string; fps: number } | undefined {
  if (typeof r !== 'string') return undefined;
  const [num, den] = r.split('/').map(Number);
  if (!num || !den || !Number.isFinite(num / den) || num / den <= 0) return undefined;
  return { rate: r, fps: num / den };
}

/**
 * The first video stream's size and rate, the container's frame count and duration, and whether it has audio.
 * Not a video: INVALID_ARGUMENT "cannot read video ..." (or "... has no video stream"); not there: NOT_FOUND.
 */
export async function probeVideo(source: string, options: { timeoutMs?: number } = {}): Promise<VideoInfo> {
  const p = await startTool('ffprobe', [
    '-v', 'error',
    '-show_entries', 'stream=codec_type,width,height,r_frame_rate,avg_frame_rate,nb_frames:format=duration',
    '-of', 'json',
    source,
  ]);
  const timeoutMs = options.timeoutMs ?? PROBE_TIMEOUT_MS;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    p.kill('SIGKILL');
  }, timeoutMs);
  let out = '';
  let code: number | null;
  try {
    for await (const chunk of p.stdout) out += chunk.toString('utf8');
    code = await p.closed;
  } finally {
    clearTimeout(timer);
  }
  if (timedOut) throw new FaceflowError('INVALID_ARGUMENT', `cannot read video ${source}: ffprobe gave no answer in ${Math.round(timeoutMs / 1000)} s`);
  const reason = p.stderrTail();
  if (code !== 0) {
    if (/No such file or directory/i.test(reason)) throw new FaceflowError('NOT_FOUND', `video not found: ${source}`);
    throw new FaceflowError('INVALID_ARGUMENT', `cannot read video ${source}: ${reason || `ffprobe exited with code ${code}`}`);
  }
  let parsed: { streams?: Array<Record<string, unknown>>; format?: { duration?: string } };
  try {
    parsed = JSON.parse(out) as typeof parsed;
  } catch (e) {
    throw new FaceflowError('INTERNAL', `ffprobe printed something that is not JSON for ${source}`, { cause: e });
  }
  const streams = parsed.streams ?? [];
  const v = streams.find((s) => s.codec_type === 'video');
  if (!v || !(Number(v.width) > 0) || !(Number(v.height) > 0)) throw new FaceflowError('INVALID_ARGUMENT', `${source} has no video stream`);
  // the average rate when the container gives one, else the stream's base rate, else 25 fps
  const { rate, fps } = parseRate(v.avg_frame_rate) ?? parseRate(v.r_frame_rate) ?? { rate: '25/1', fps: 25 };
  const frames = Number(v.nb_frames);
  const durationS = Number(parsed.format?.duration);
  return {
    width: Number(v.width),
    height: Number(v.height),
    rate,
    fps,
    ...(Number.isFinite(frames) && frames > 0 ? { frames } : {}),
    ...(Number.isFinite(durationS) && durationS > 0 ? { durationS } : {}),
    hasAudio: streams.some((s) => s.codec_type === 'audio'),
  };
}

/**
 * The frames of a video file as RGB frames of `info.width` x `info.height`. Re-iterable: every iteration starts a new ffmpeg from the first frame (a two-pass reader reads the
 * file twice). A file ffmpeg cannot decode to the end: INVALID_ARGUMENT "ffmpeg could not decode ...".
 */
export function decodeRgbFrames(file: string, info: Pick<VideoInfo, 'width' | 'height'>): AsyncIterable<RgbFrame> {
  return { [Symbol.asyncIterator]: () => rgbFrames(file, info) };
}

async function* rgbFrames(file: string, info: Pick<VideoInfo, 'width' | 'height'>): AsyncGenerator<RgbFrame> {
  const { width, height } = info;
  const frameBytes = width * height * 3;
  const p = await startTool('ffmpeg', ['-v', 'error', '-nostdin', '-i', file, '-map', '0:v:0', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${info.width}x${info.height}`, 'pipe:1']);
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  try {
    for await (const chunk of p.stdout) {
      pending.push(chunk);
      pendingBytes += chunk.length;
      while (pendingBytes >= frameBytes) {
        const all = Buffer.concat(pending, pendingBytes);
        let offset = 0;
        while (all.length - offset >= frameBytes) {
          yield { data: new Uint8Array(all.subarray(offset, offset + frameBytes)), width, height };
          offset += frameBytes;
        }
        pending = offset < all.length ? [all.subarray(offset)] : [];
        pendingBytes = all.length - offset;
      }
    }
    const code = await p.closed;
    if (code !== 0) throw new FaceflowError('INVALID_ARGUMENT', `ffmpeg could not decode ${file}: ${p.stderrTail() || `exit ${code}`}`);
  } finally {
    p.kill('SIGKILL');
  }
}

export interface JpegStreamOptions {
  /** an RTSP source is read over TCP */
  rtspOverTcp?: boolean;
  /** cap the frame rate at this many frames a second (ffmpeg's fps filter) */
  fps?: number;
  /** scale frames wider than this down (0 or absent: keep the size) */
  maxWidth?: number;
  /** JPEG quality, ffmpeg's -q:v, 2 (best) .. 31 (default 4) */
  jpegQ?: number;
}

/** ffmpeg decoding a file or stream to JPEG frames: iterate it for the JPEGs (once). */
export interface JpegStream extends AsyncIterable<Buffer> {
  /** the exit code once ffmpeg ended (its JPEGs may still be unread); null when it was killed */
  readonly exited: Promise<number | null>;
  /** the exit code once ffmpeg ended and its output was read to the end */
  readonly closed: Promise<number | null>;
  stderrTail(lines?: number): string;
  kill(): void;
}

/** Starts ffmpeg decoding `source` (a file or a stream URL) to a pipe of JPEGs. */
export async function openJpegStream(source: string, options: JpegStreamOptions = {}): Promise<JpegStream> {
  const args = ['-hide_banner', '-loglevel', 'error', '-nostdin'];
  if (options.rtspOverTcp) args.push('-rtsp_transport', 'tcp');
  args.push('-i', source);
  const filters: string[] = [];
  if (options.fps !== undefined) filters.push(`fps=${options.fps}`);
  if (options.maxWidth) filters.push(`scale='min(${options.maxWidth},iw)':-2`);
  if (filters.length) args.push('-vf', filters.join(','));
  args.push('-an', '-f', 'image2pipe', '-c:v', 'mjpeg', '-q:v', String(options.jpegQ ?? 4), 'pipe:1');
  const p = await startTool('ffmpeg', args);
  return {
    exited: p.exited,
    closed: p.closed,
    stderrTail: p.stderrTail,
    kill: () => p.kill('SIGTERM'),
    [Symbol.asyncIterator]: () => splitJpegs(p.stdout)[Symbol.asyncIterator](),
  };
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

export interface FrameWriter {
  /** one RGB frame of the writer's size; waits while ffmpeg is behind */
  write(frame: RgbFrame): Promise<void>;
  /** closes the pipe and waits for ffmpeg; throws when the encode failed */
  close(): Promise<void>;
  /** stops ffmpeg (the output is left incomplete) */
  abort(): void;
}

/**
 * Encodes RGB frames of `info`'s size and rate to `out` (H.264, yuv420p, CRF 20). With `audioFrom`, the audio of
 * that file (if any) is kept (`-map 1:a?`, re-encoded to AAC so any source audio fits the output container).
 * ffmpeg starts at once; the first write or the close reports it missing.
 */
export function encodeRgbFrames(out: string, info: Pick<VideoInfo, 'width' | 'height' | 'rate'>, options: { audioFrom?: string } = {}): FrameWriter {
  const args = [
    '-v', 'error', '-y',
    '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${info.width}x${info.height}`, '-framerate', info.rate, '-i', 'pipe:0',
    ...(options.audioFrom !== undefined ? ['-i', options.audioFrom] : []),
    '-map', '0:v:0',
    ...(options.audioFrom !== undefined ? ['-map', '1:a?'] : []),
    // yuv420p needs even sides: an odd-sized input gets one black column or row
    '-vf', 'pad=ceil(iw/2)*2:ceil(ih/2)*2',
    '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '20', '-pix_fmt', 'yuv420p',
    ...(options.audioFrom !== undefined ? ['-c:a', 'aac', '-b:a', '128k', '-shortest'] : []),
    out,
  ];
  const child: ChildProcessByStdio<Writable, null, Readable> = spawn('ffmpeg', args, { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  let failure: Error | undefined;
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-STDERR_KEEP);
  });
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', (e) => {
      failure = ffmpegNotFound('ffmpeg', e);
      resolve(null);
    });
    child.on('close', resolve);
  });
  child.stdin.on('error', (e) => {
    failure ??= e;
  });
  const fail = (): FaceflowError =>
    failure instanceof FaceflowError ? failure : new FaceflowError('INVALID_ARGUMENT', `ffmpeg could not write ${out}: ${lastLines(stderr, 1) || failure?.message || 'failed'}`);
  return {
    async write(frame) {
      if (frame.width !== info.width || frame.height !== info.height) {
        throw new FaceflowError('INVALID_ARGUMENT', `a ${frame.width}x${frame.height} frame for ${out}, which is ${info.width}x${info.height}`);
      }
      if (failure || child.exitCode !== null) {
        await exited;
        throw fail();
      }
      if (!child.stdin.write(frame.data)) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            child.stdin.off('drain', done);
            child.off('close', done);
            resolve();
          };
          child.stdin.on('drain', done);
          child.on('close', done);
        });
      }
    },
    async close() {
      child.stdin.end();
      const code = await exited;
      if (code !== 0 || failure) throw fail();
    },
    abort() {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}
