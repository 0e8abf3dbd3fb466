/**
 * Video in and out through ffmpeg (Debian package `ffmpeg`; scripts/setup.sh installs it): ffprobe for the
 * stream's size and rate, ffmpeg decoding to raw RGB frames on a pipe, and ffmpeg encoding raw RGB frames
 * from a pipe to H.264, taking the audio (if any) from the original file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { FaceflowError } from '@faceflow/shared';

export interface VideoInfo {
  width: number;
  height: number;
  /** frames per second as ffmpeg's fraction, e.g. "25/1" or "30000/1001" */
  rate: string;
  fps: number;
  /** the container's frame count, when it says */
  frames?: number;
  hasAudio: boolean;
}

function run(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      reject(e);
      return;
    }
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function missing(tool: string, e: unknown): FaceflowError {
  return new FaceflowError('INVALID_CONFIG', `${tool} is not installed or not on PATH (install the Debian package ffmpeg: apt-get install -y ffmpeg)`, { cause: e });
}

/** Reads the first video stream's size and rate; a file that is not a video is INVALID_ARGUMENT. */
export async function probeVideo(file: string): Promise<VideoInfo> {
  let r: Awaited<ReturnType<typeof run>>;
  try {
    r = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type,width,height,r_frame_rate,avg_frame_rate,nb_frames', '-of', 'json', file]);
  } catch (e) {
    throw missing('ffprobe', e);
  }
  const reason = r.stderr.trim().split('\n').pop() ?? '';
  if (r.code !== 0) {
    if (/No such file/i.test(reason)) throw new FaceflowError('NOT_FOUND', `input not found: ${file}`);
    throw new FaceflowError('INVALID_ARGUMENT', `${file} is neither an image (JPEG, PNG, WebP) nor a video ffmpeg can read${reason ? `: ${reason}` : ''}`);
  }
  let streams: Array<Record<string, unknown>>;
  try {
    streams = (JSON.parse(r.stdout) as { streams?: Array<Record<string, unknown>> }).streams ?? [];
  } catch (e) {
    throw new FaceflowError('INTERNAL', `ffprobe printed something that is not JSON for ${file}`, { cause: e });
  }
  const v = streams.find((s) => s.codec_type === 'video');
  if (!v || !(Number(v.width) > 0) || !(Number(v.height) > 0)) {
    throw new FaceflowError('INVALID_ARGUMENT', `${file} has no video stream (it is neither an image nor a video)`);
  }
  const rate = String(v.avg_frame_rate && v.avg_frame_rate !== '0/0' ? v.avg_frame_rate : v.r_frame_rate ?? '25/1');
  const [num, den] = rate.split('/').map(Number);
  const fps = num && den ? num / den : 25;
  const frames = Number(v.nb_frames);
  return {
    width: Number(v.width),
    height: Number(v.height),
    rate: num && den ? rate : '25/1',
    fps,
    ...(Number.isFinite(frames) && frames > 0 ? { frames } : {}),
    hasAudio: streams.some((s) => s.codec_type === 'audio'),
  };
}

/**
 * Decodes `file` to RGB frames of `info.width` x `info.height` (ffmpeg applies the stream's rotation, so the
 * size is taken from the first frame's byte count only as a check). Yields one Uint8Array per frame.
 */
export async function* decodeFrames(file: string, info: VideoInfo): AsyncGenerator<Uint8Array> {
  const frameBytes = info.width * info.height * 3;
  const child = spawn('ffmpeg', ['-v', 'error', '-nostdin', '-i', file, '-map', '0:v:0', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${info.width}x${info.height}`, 'pipe:1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', (e) => reject(missing('ffmpeg', e)));
    child.on('close', resolve);
  });
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      pending.push(chunk);
      pendingBytes += chunk.length;
      while (pendingBytes >= frameBytes) {
        const all = Buffer.concat(pending, pendingBytes);
        let offset = 0;
        while (all.length - offset >= frameBytes) {
          yield new Uint8Array(all.subarray(offset, offset + frameBytes));
          offset += frameBytes;
        }
        pending = offset < all.length ? [all.subarray(offset)] : [];
        pendingBytes = all.length - offset;
      }
    }
    const code = await exited;
    if (code !== 0) throw new FaceflowError('INVALID_ARGUMENT', `ffmpeg could not decode ${file}: ${stderr.trim().split('\n').pop() ?? `exit ${code}`}`);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

export interface FrameWriter {
  write(frame: Uint8Array): Promise<void>;
  /** closes the pipe and waits for ffmpeg; throws when the encode failed */
  close(): Promise<void>;
  abort(): void;
}

/**
 * Encodes RGB frames to `out` (H.264, yuv420p, CRF 20); the audio of `audioFrom` is kept (`-map 1:a?`,
 * re-encoded to AAC so any source audio fits the output container).
 */
export function encodeFrames(out: string, info: VideoInfo, audioFrom: string): FrameWriter {
  const args = [
    '-v', 'error', '-y',
    '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${info.width}x${info.height}`, '-framerate', info.rate, '-i', 'pipe:0',
    '-i', audioFrom,
    '-map', '0:v:0', '-map', '1:a?',
    // yuv420p needs even sides: an odd-sized input gets one black column or row
    '-vf', 'pad=ceil(iw/2)*2:ceil(ih/2)*2',
    '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '20', '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-b:a', '128k',
    '-shortest',
    out,
  ];
  const child = spawn('ffmpeg', args, { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  let failure: Error | undefined;
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', (e) => {
      failure = missing('ffmpeg', e);
      resolve(null);
    });
    child.on('close', resolve);
  });
  child.stdin.on('error', (e) => {
    failure ??= e;
  });
  const fail = (): FaceflowError =>
    failure instanceof FaceflowError ? failure : new FaceflowError('INVALID_ARGUMENT', `ffmpeg could not write ${out}: ${stderr.trim().split('\n').pop() ?? failure?.message ?? 'failed'}`);
  return {
    async write(frame) {
      if (failure || child.exitCode !== null) {
        await exited;
        throw fail();
      }
      if (!child.stdin.write(frame)) {
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
