/**
 * One engine in this thread, or a pool of worker threads for many images: the same calls either way, for the
 * long jobs (training, evaluations) that take the worker count as a flag (issue 13: the choice out of the CLI).
 */
import type { Point, RgbImage } from '../image/geometry.js';
import { alignEmbedderChip } from './align.js';
import { FaceEngine, type DetectedFace, type EmbedderInfo, type EngineConfig, type EngineModels, type RunOptions } from './engine.js';
import { EnginePool } from './pool.js';

export interface EngineHandle {
  run(images: RgbImage[], options?: RunOptions): Promise<DetectedFace[][]>;
  /** the chip this embedder takes (FaceEngine.alignChip; a pool's is aligned in this thread) */
  alignChip(image: RgbImage, landmarks68: Point[]): Uint8Array;
  embedChips(chips: Uint8Array[]): Promise<Float32Array[]>;
  embedderInfo: EmbedderInfo;
  models: EngineModels;
  workers: number;
  close(): Promise<void>;
}

/** A FaceEngine when `workers` is 1, else an EnginePool of `workers` threads. */
export async function openEngine(config: EngineConfig, workers: number): Promise<EngineHandle> {
  if (workers > 1) {
    const pool = await EnginePool.start(config, workers);
    return {
      run: (images, options) => pool.run(images, options),
      alignChip: (image, landmarks) => alignEmbedderChip(pool.embedderInfo, image, landmarks, config.chipPadding ?? 0.25),
      embedChips: (chips) => pool.embedChips(chips),
      embedderInfo: pool.embedderInfo,
      models: pool.models,
      workers,
      close: () => pool.close(),
    };
  }
  const engine = await FaceEngine.load(config);
  return {
    run: (images, options) => engine.run(images, options),
    alignChip: (image, landmarks) => engine.alignChip(image, landmarks),
    embedChips: (chips) => engine.embedChips(chips),
    embedderInfo: engine.embedderInfo,
    models: engine.models,
    workers: 1,
    close: async () => engine.dispose(),
  };
}
