/** What the evaluation runs need of an engine, and their bounded concurrency. */
import type { DetectedFace, EmbedderInfo, EngineModels, RunOptions } from '../recognize/engine.js';
import type { RgbImage } from '../image/geometry.js';

/** A FaceEngine or an EnginePool behind one shape (the CLI's runner; openEngine's handle with `embedder`). */
export interface EvalRunner {
  run(images: RgbImage[], options?: RunOptions): Promise<DetectedFace[][]>;
  close(): Promise<void>;
  embedder: EmbedderInfo;
  models: EngineModels;
  workers: number;
}

/** A progress bar: `progress(label, total)` starts one. */
export type EvalProgress = (label: string, total: number) => { tick(): void; done(): void };

/** Runs `fn` over `items` with at most `limit` in flight, so a large job holds bounded memory. */
export async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
