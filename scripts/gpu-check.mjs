// The measuring half of scripts/gpu-check.sh (issue 11 item 6): SFace and dlib ResNet (faceflow's ONNX
// conversion, faceapi-recognition-onnx) embedding faces/s and YuNet 720p full-detection frames/s on ONNX
// Runtime's CUDA execution provider and on its CPU provider, in one process, through the engine's own load
// path (FaceEngine with onnxProvider). Then the dlib ResNet's TF.js weights on tfjs-node-gpu when that
// package is installed. Prints a markdown table; asserts nothing.
// Input needs nothing outside the repository: chips are random 112x112 and 150x150 RGB (an embedder's cost does not
// depend on the pixels) and frames are @vladmandic/face-api's demo photos scaled and cropped to 1280x720.
// The CPU provider runs one session with --cpu-threads intra-op threads (default: every core).
// Usage (after `npm run build` and the models): node scripts/gpu-check.mjs [--providers cuda,cpu] [--faces N] [--frames N] [--cpu-threads T]
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { decodeImage, FaceEngine } = await import(path.join(root, 'packages/engine/dist/index.js'));
const sharp = require('sharp');

const { values } = parseArgs({
  options: {
    providers: { type: 'string', default: 'cuda,cpu' },
    faces: { type: 'string', default: '500' },
    frames: { type: 'string', default: '60' },
    'cpu-threads': { type: 'string', default: String(os.availableParallelism()) },
  },
});
const nFaces = Number(values.faces);
const nFrames = Number(values.frames);

const chips = Array.from({ length: nFaces }, (_, i) => {
  const c = new Uint8Array(112 * 112 * 3);
  let s = i + 1;
  for (let k = 0; k < c.length; k++) c[k] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
  return c;
});
const dlibChips = Array.from({ length: nFaces }, (_, i) => {
  const c = new Uint8Array(150 * 150 * 3);
  for (let k = 0; k < c.length; k++) c[k] = (k * 31 + i * 7) & 255;
  return c;
});
const demo = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'demo');
const photos = await Promise.all(
  [1, 2, 3, 4, 5, 6].map(async (i) =>
    decodeImage(await sharp(path.join(demo, `sample${i}.jpg`)).resize(1280, 720, { fit: 'cover' }).jpeg({ quality: 90 }).toBuffer()),
  ),
);
const frames = Array.from({ length: nFrames }, (_, i) => photos[i % photos.length]);

const seconds = async (fn) => {
  const t = process.hrtime.bigint();
  const v = await fn();
  return [v, Number(process.hrtime.bigint() - t) / 1e9];
};
const rows = [];
const embeddings = {};
for (const provider of values.providers.split(',')) {
  let engine;
  try {
    engine = await FaceEngine.load({ backend: 'wasm', flip: false, onnxProvider: provider, onnxThreads: provider === 'cpu' ? Number(values['cpu-threads']) : 1, models: { detector: 'yunet-2023mar', embedder: 'sface-2021dec-int8bq' } });
  } catch (e) {
    console.error(`gpu-check: ONNX Runtime ${provider} provider did not load: ${e.message}`);
    process.exitCode = 1;
    continue;
  }
  try {
    await engine.embedChips(chips.slice(0, 4)); // warm-up: the first calls set up kernels (and on CUDA its handles)
    await engine.run(frames.slice(0, 2), { detectOnly: true });
    const [emb, te] = await seconds(() => engine.embedChips(chips));
    embeddings[provider] = emb;
    rows.push({ job: 'embed (SFace, 112 px chips, batch 1)', provider, items: chips.length, s: te, unit: 'faces/s' });
    const [det, td] = await seconds(() => engine.run(frames, { detectOnly: true }));
    rows.push({ job: 'YuNet 720p full detection, min face 40', provider, items: frames.length, s: td, unit: 'frames/s', note: `${det.flat().length} faces` });
  } finally {
    engine.dispose();
  }
  // the default embedder, the dlib ResNet, on the same provider (batches of 16, the wrapper's default)
  try {
    engine = await FaceEngine.load({ backend: 'wasm', runtime: 'onnx', flip: false, onnxProvider: provider, onnxThreads: provider === 'cpu' ? Number(values['cpu-threads']) : 1, models: { detector: 'yunet-2023mar' } });
  } catch (e) {
    console.error(`gpu-check: the dlib ResNet on ONNX Runtime ${provider} did not load: ${e.message}`);
    process.exitCode = 1;
    continue;
  }
  try {
    await engine.embedChips(dlibChips.slice(0, 16));
    const [emb, te] = await seconds(() => engine.embedChips(dlibChips));
    embeddings[`dlib ${provider}`] = emb;
    rows.push({ job: 'embed (dlib ResNet ONNX, 150 px chips, batches of 16)', provider, items: dlibChips.length, s: te, unit: 'faces/s' });
  } finally {
    engine.dispose();
  }
}
if (embeddings['dlib cuda'] && embeddings['dlib cpu']) {
  let worst = 1;
  embeddings['dlib cuda'].forEach((a, i) => {
    const b = embeddings['dlib cpu'][i];
    let d = 0;
    for (let k = 0; k < a.length; k++) d += a[k] * b[k];
    worst = Math.min(worst, d);
  });
  console.log(`dlib ResNet embeddings, CUDA vs CPU: lowest cosine similarity over ${dlibChips.length} chips ${worst.toFixed(5)}`);
}
if (embeddings.cuda && embeddings.cpu) {
  let worst = 1;
  embeddings.cuda.forEach((a, i) => {
    const b = embeddings.cpu[i];
    let d = 0;
    for (let k = 0; k < a.length; k++) d += a[k] * b[k];
    worst = Math.min(worst, d);
  });
  console.log(`SFace embeddings, CUDA vs CPU: lowest cosine similarity over ${chips.length} chips ${worst.toFixed(5)}`);
}

// the dlib ResNet on tfjs-node-gpu, if the user installed it (faceflow does not depend on it)
let tfjsGpu = false;
try {
  require.resolve('@tensorflow/tfjs-node-gpu', { paths: [root] });
  tfjsGpu = true;
} catch {
  console.log('tfjs-node-gpu: not installed (skipped; `npm install @tensorflow/tfjs-node-gpu` to include it)');
}
if (tfjsGpu) {
  for (const backend of ['tensorflow', 'wasm']) {
    try {
      // runtime tfjs: the TF.js weights, not the ONNX conversion that auto would pick
      const engine = await FaceEngine.load({ backend, runtime: 'tfjs', flip: false });
      const dchips = dlibChips.slice(0, 200);
      await engine.embedChips(dchips.slice(0, 16));
      const [, t] = await seconds(() => engine.embedChips(dchips));
      rows.push({ job: 'embed (dlib ResNet, 150 px chips, one batch)', provider: `tfjs ${engine.runtime.backend}${engine.runtime.nativePackage ? ` (${engine.runtime.nativePackage})` : ''}`, items: dchips.length, s: t, unit: 'faces/s' });
      engine.dispose();
    } catch (e) {
      console.error(`gpu-check: dlib ResNet on tfjs backend ${backend} failed: ${e.message}`);
    }
  }
}

console.log(`\nMachine: ${os.cpus().length} CPU threads (${os.cpus()[0]?.model ?? '?'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${new Date().toISOString()}\n`);
console.log(`ONNX Runtime CPU provider: ${values['cpu-threads']} intra-op thread(s); CUDA provider: device 0\n`);
console.log('| job | provider | items | seconds | throughput |');
console.log('|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.job} | ${r.provider} | ${r.items} | ${r.s.toFixed(2)} | ${(r.items / r.s).toFixed(1)} ${r.unit}${r.note ? ` (${r.note})` : ''} |`);
const by = (job, p) => rows.find((r) => r.job.startsWith(job) && r.provider === p);
for (const job of ['embed (SFace', 'embed (dlib ResNet ONNX', 'YuNet']) {
  const g = by(job, 'cuda');
  const c = by(job, 'cpu');
  if (g && c) console.log(`${job.replace('(', '').trim()}: CUDA / CPU = ${(g.items / g.s / (c.items / c.s)).toFixed(2)}x`);
}
