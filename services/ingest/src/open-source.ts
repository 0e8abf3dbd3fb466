/**
 * One source named on a command line (`faceflow run --source S`): a stream URL, a folder of images, one image
 * or a video file, told apart and checked before anything slow starts (not found, a folder with no images, a
 * broken image, not a video, no ffmpeg), then opened when its frames can be taken (issue 13: moved from the
 * CLI, since ingest owns the sources).
 */
import { stat } from 'node:fs/promises';
import { FaceflowError } from '@faceflow/shared';
import { probeVideo } from '@faceflow/shared/media';
import { ffmpegSource, folderSource, imageContentType, imageFileSource, isStreamUrl, type FrameSource } from './sources.js';

export interface SourceSpec {
  source: string;
  cameraId: string;
  fps?: number;
  /** checks one image before it is taken (a broken one is the command's error, not a frame dead-lettered in passing) */
  checkImage?: (file: string) => Promise<unknown>;
}

export interface PreparedSource {
  kind: 'stream' | 'folder' | 'image' | 'video';
  /** A live stream's frames cannot wait. */
  live: boolean;
  /**
   * Opens the source. ffmpeg is started only here, once the caller reads its output: Node drops what a child
   * process wrote to a pipe nobody was reading when the child exits, so a short video decoded while models
   * load would give no frame at all; a live stream's frames would go stale.
   */
  open(): Promise<FrameSource>;
  /**
   * What went wrong once it was read: ffmpeg's errors (a source that failed part-way), and a warning for a
   * file that gave far fewer frames than its header promised (ffmpeg decodes what it can of a damaged file
   * and exits 0). `stopped`: the reading was stopped early, so a short count says nothing.
   */
  report(read: number, stopped: boolean): { errors: string[]; warning?: string };
}

export async function prepareSource(spec: SourceSpec): Promise<PreparedSource> {
  const { source, cameraId } = spec;
  const fps = spec.fps ?? 5;
  const errors: string[] = [];
  let opened: FrameSource | undefined;
  const prepared = (kind: PreparedSource['kind'], open: () => Promise<FrameSource>): PreparedSource => ({
    kind,
    live: kind === 'stream',
    open: async () => (opened = await open()),
    report(read, stopped) {
      const frames = opened?.frames;
      const short = opened !== undefined && !stopped && !opened.live && frames !== undefined && read < frames / 2;
      return { errors: errors.filter(Boolean), ...(short ? { warning: `${source} gave ${read} of the ${frames} frames its header announces: is it truncated or damaged?` } : {}) };
    },
  });
  const viaFfmpeg = (kind: 'stream' | 'video'): PreparedSource => prepared(kind, () => ffmpegSource({ source, cameraId, fps, onError: (m) => errors.push(m) }));
  if (isStreamUrl(source)) return viaFfmpeg('stream');
  const s = await stat(source).catch((e: unknown) => {
    throw new FaceflowError('NOT_FOUND', `source not found: ${source}`, { cause: e });
  });
  if (s.isDirectory()) {
    const folder = await folderSource({ dir: source, cameraId, fps });
    return prepared('folder', async () => folder);
  }
  if (imageContentType(source) !== undefined) {
    await spec.checkImage?.(source);
    const image = await imageFileSource({ file: source, cameraId });
    return prepared('image', async () => image);
  }
  await probeVideo(source);
  return viaFfmpeg('video');
}
