/**
 * One engine in this thread or a pool of worker threads behind one interface, for a job of a few images or
 * of many (issue 13: moved from the CLI's engine-setup.ts, so every command starts its engine one way).
 */
import type { RgbImage } from '../image/geometry.js';
import { FaceEngine, type DetectedFace, type EmbedderInfo, type EngineConfig, type EngineModels, type RunOptions } from './engine.js';
import { EnginePool } from './pool.js';

export interface Runner {
  run(images: RgbImage[], options?: RunOptions): Promise<DetectedFace[][]>;
  close(): Promise<void>;
  embedder: EmbedderInfo;
  /** the detector, landmarks and embedder and the runtime of each */
  models: EngineModels;
  workers: number;
}

/** A pool of `workers` worker threads when `workers` > 1, else one engine in this thread. */
export async function startRunner(cfg: EngineConfig, workers: number): Promise<Runner> {
  if (workers > 1) {
    const pool = await EnginePool.start(cfg, workers);
    return { run: (images, options) => pool.run(images, options), close: () => pool.close(), embedder: pool.embedderInfo, models: pool.models, workers };
  }
  const engine = await FaceEngine.load(cfg);
  return { run: (images, options) => engine.run(images, options), close: async () => engine.dispose(), embedder: engine.embedderInfo, models: engine.models, workers: 1 };
}
