/**
 * `node bench/dist/regions.js --video FILE [--fps 5] [--frames 150] [--full-detection-every 1000]
 * [--min-face 40] [--detector yunet|blazeface] [--region-detector same|blazeface-short]`: what detecting near
 * the last faces (the embedder's video scheduling, scheduler.ts) costs in faces, against a full detection of
 * every frame. A benchmark, not a test: it asserts nothing.
 *
 * The reference is the full detector itself (whole frame, zoomed-out view and tiles) on every frame, not
 * ground truth: the figures say which of the faces the full detection finds the scheduled detection also
 * finds (IoU >= 0.5), and what it finds that the full one does not. Frames are processed one after another
 * (each frame knows its predecessor's result, as a live camera keeping up does). `--detector` is the full
 * detector (default yunet, the engine's default); `--region-detector same` looks near the last faces with it
 * (what the engine does), `blazeface-short` with BlazeFace's short-range model instead (the alternative
 * measured when YuNet became the default, issue 11).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { decodeImage, initRuntime, resolveModel } from '@faceflow/engine';
import { iou } from '@faceflow/engine/match';
import { BlazeFaceDetector, YuNetDetector, type Detection } from '@faceflow/engine/models';
import { DEFAULT_MODELS, defaultModelPaths, type FaceDetector } from '@faceflow/engine/recognize';
import { DetectionScheduler } from '@faceflow/embedder';

const run = promisify(execFile);

async function frames(video: string, fps: number, max: number): Promise<Buffer[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-regions-'));
  try {
    await run('ffmpeg', ['-y', '-loglevel', 'error', '-i', video, '-vf', `fps=${fps}`, '-frames:v', String(max), '-q:v', '3', path.join(dir, 'f%05d.jpg')], { timeout: 300_000 });
    const files = (await readdir(dir)).filter((f) => f.endsWith('.jpg')).sort();
    if (files.length === 0) throw new Error(`no frames from ${video}`);
    return Promise.all(files.map((f) => readFile(path.join(dir, f))));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      video: { type: 'string' },
      fps: { type: 'string', default: '5' },
      frames: { type: 'string', default: '150' },
      'full-detection-every': { type: 'string', default: '1000' },
      'min-face': { type: 'string', default: '40' },
      detector: { type: 'string', default: 'yunet' },
      'region-detector': { type: 'string', default: 'same' },
    },
  });
  if (!['yunet', 'blazeface'].includes(values.detector!)) throw new Error('--detector must be yunet or blazeface');
  if (!['same', 'blazeface-short'].includes(values['region-detector']!)) throw new Error('--region-detector must be same or blazeface-short');
  if (!values.video) throw new Error('--video FILE is required');
  const fps = Number(values.fps);
  const every = Number(values['full-detection-every']);
  const minFace = Number(values['min-face']);
  const runtime = await initRuntime({});
  const paths = await defaultModelPaths();
  const blazeface = () => BlazeFaceDetector.load({ modelPath: paths.blazeface, regionModelPath: paths.regionDetector, minFaceSize: minFace });
  const detector: FaceDetector =
    values.detector === 'yunet' ? await YuNetDetector.load({ modelPath: (await resolveModel(DEFAULT_MODELS.detector)).main, minFaceSize: minFace }) : await blazeface();
  const regionDetector: FaceDetector = values['region-detector'] === 'same' ? detector : await blazeface();
  const jpegs = await frames(values.video, fps, Number(values.frames));
  const scheduler = new DetectionScheduler(every);
  let refFaces = 0;
  let found = 0;
  let extra = 0;
  let fullMs = 0;
  let schedMs = 0;
  let fullFrames = 0;
  let regionDetections = 0;
  for (const [i, jpeg] of jpegs.entries()) {
    const img = await decodeImage(jpeg);
    const ts = Math.round((i * 1000) / fps);
    let t = performance.now();
    const [ref] = (await detector.run([img])) as [Detection[]];
    fullMs += performance.now() - t;
    const full = scheduler.wantsFull('cam', ts);
    const regions = full ? undefined : scheduler.regions('cam', ts);
    t = performance.now();
    const [got] = (await (regions ? regionDetector : detector).run([img], [regions])) as [Detection[]];
    schedMs += performance.now() - t;
    scheduler.observe(
      'cam',
      ts,
      got.map((d) => ({ box: d.box, embedded: true })),
      full,
    );
    if (full) {
      scheduler.fullDone('cam');
      fullFrames++;
    }
    if (regions) regionDetections += got.length;
    refFaces += ref.length;
    found += ref.filter((r) => got.some((g) => iou(r.box, g.box) >= 0.5)).length;
    extra += got.filter((g) => !ref.some((r) => iou(r.box, g.box) >= 0.5)).length;
  }
  await detector.dispose();
  if (regionDetector !== detector) await regionDetector.dispose();
  const n = jpegs.length;
  process.stdout.write(
    `${JSON.stringify({
      video: path.basename(values.video),
      backend: runtime.backend,
      detector: values.detector,
      regionDetector: values['region-detector'],
      regionDetections,
      frames: n,
      fps,
      fullDetectionEveryMs: every,
      minFace,
      fullDetectionsScheduled: fullFrames,
      referenceFaces: refFaces,
      foundByScheduled: found,
      recallVsFull: Number((found / Math.max(1, refFaces)).toFixed(3)),
      extraDetections: extra,
      msPerFrameFull: Number((fullMs / n).toFixed(1)),
      msPerFrameScheduled: Number((schedMs / n).toFixed(1)),
    })}\n`,
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`bench regions failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
