/** Worker-thread side of EnginePool: one FaceEngine (one TF.js runtime) per thread. */
import { parentPort, workerData } from 'node:worker_threads';
import { toFaceflowError } from '@faceflow/shared';
import { FaceEngine, type EngineConfig, type RunOptions } from './engine.js';
import type { RgbImage } from '../image/geometry.js';

interface Request {
  id: number;
  op: 'run' | 'embedChips';
  images?: RgbImage[];
  chips?: Uint8Array[];
  options?: RunOptions;
}

const port = parentPort;
if (!port) throw new Error('pool-worker must run in a worker thread');

const ready = FaceEngine.load(workerData as EngineConfig);
ready.then(
  (engine) => port.postMessage({ type: 'ready', runtime: engine.runtime, embedder: engine.embedderInfo, models: engine.models }),
  (e) => port.postMessage({ type: 'ready', error: toFaceflowError(e, 'MODEL_LOAD').toJSON() }),
);

port.on('message', async (req: Request) => {
  try {
    const engine = await ready;
    const result = req.op === 'run' ? await engine.run(req.images ?? [], req.options) : await engine.embedChips(req.chips ?? []);
    port.postMessage({ type: 'result', id: req.id, result });
  } catch (e) {
    port.postMessage({ type: 'result', id: req.id, error: toFaceflowError(e).toJSON() });
  }
});
