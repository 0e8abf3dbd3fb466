/**
 * The ONNX models from registry packages on ONNX Runtime (issue 11), with the real files that
 * scripts/fetch-models.sh installs (`faceflow models pull --all`; a missing one fails here with the command
 * that installs it): each verifies against its registry entry, loads with the input shape its wrapper
 * needs, releases its session on dispose and keeps RSS flat over repeated calls; YuNet finds the faces of
 * the npm demo photos where an independent model (BlazeFace) puts their eyes.
 */
import { describe, expect, it } from 'vitest';
import { FaceflowError } from '@faceflow/shared';
import { decodeImage } from '../image/image.js';
import { resolveModel } from '../registry/index.js';
import { OnnxModel, parseProviderName, parseRuntimeName } from '../runtime/onnx.js';
import { YuNetDetector } from './yunet.js';
import { SFaceEmbedder } from './sface.js';
import { BlazeFaceDetector } from './detector.js';
import { defaultModelPaths, FaceEngine } from '../recognize/engine.js';
import { initRuntime } from '../runtime/tf.js';
import { GROUP_PHOTOS } from '../testkit/fixtures.testkit.js';
import { failure } from '../testkit/failure.testkit.js';
import { rssGrowthMb } from '../testkit/rss.testkit.js';

const noise = (n: number): Float32Array => Float32Array.from({ length: n }, (_, i) => (i * 2654435761) % 251);

describe('ONNX models from registry packages', () => {
  it('yunet_releases_its_session_and_keeps_rss_flat_over_repeated_calls', async () => {
    const det = await YuNetDetector.load({ modelPath: (await resolveModel('yunet-2023mar')).main, minFaceSize: 20 });
    const img = { width: 640, height: 480, data: Uint8Array.from(noise(640 * 480 * 3)) };
    const near = [{ x: 100, y: 100, width: 60, height: 60 }];
    const growth = await rssGrowthMb(() => det.run([img, img], [undefined, near]), 5, 40);
    // 40 calls move some 300 MB of tensors through ONNX Runtime; a leak of them shows here
    expect(growth).toBeLessThan(48);
    await det.dispose();
    await expect(det.run([img])).rejects.toThrow(/after dispose/);
  });

  it('centerface_releases_its_session_and_keeps_rss_flat_over_repeated_calls', async () => {
    const m = await OnnxModel.load((await resolveModel('centerface')).main, 'centerface', { channels: 3, symbolicSpatial: true });
    expect(m.batchable).toBe(true);
    const x = noise(2 * 3 * 320 * 320);
    const first = await m.run(x, [2, 3, 320, 320]);
    expect(Object.values(first).map((o) => o.dims)).toEqual([
      [2, 1, 80, 80],
      [2, 2, 80, 80],
      [2, 2, 80, 80],
      [2, 10, 80, 80],
    ]);
    const growth = await rssGrowthMb(() => m.run(x, [2, 3, 320, 320]), 3, 25);
    expect(growth).toBeLessThan(48);
    await m.dispose();
    await expect(m.run(x, [2, 3, 320, 320])).rejects.toThrow(/after dispose/);
  });

  it('sface_has_one_input_after_its_fix_releases_its_session_and_keeps_rss_flat', async () => {
    const m = await OnnxModel.load((await resolveModel('sface-2021dec-int8bq')).main, 'sface-2021dec-int8bq', { channels: 3, height: 112, width: 112 });
    expect(m.inputName).toBe('data');
    const x = noise(3 * 112 * 112);
    const out = await m.run(x, [1, 3, 112, 112]);
    expect(out.fc1!.dims).toEqual([1, 128]);
    await m.dispose();
    const emb = await SFaceEmbedder.load({ modelPath: (await resolveModel('sface-2021dec-int8bq')).main });
    const chip = Uint8Array.from(noise(112 * 112 * 3));
    const [single] = await emb.run([chip]);
    const batch = await emb.run([chip.map((v) => 255 - v), chip]);
    // the same chip gives the same embedding alone or inside a batch; unit length
    for (let i = 0; i < 128; i++) expect(batch[1]![i]).toBeCloseTo(single![i]!, 5);
    expect(Math.hypot(...single!)).toBeCloseTo(1, 5);
    const growth = await rssGrowthMb(() => emb.run([chip, chip]), 3, 20);
    expect(growth).toBeLessThan(48);
    await emb.dispose();
    await expect(emb.run([chip])).rejects.toThrow(/after dispose/);
  });

  it('sface_in_the_engine_embeds_arcface_aligned_chips_same_face_close_different_faces_far', async () => {
    const engine = await FaceEngine.load({ backend: 'wasm', models: { detector: 'yunet', embedder: 'sface-2021dec-int8bq' }, detector: { minFaceSize: 20, scoreThreshold: 0.8 } });
    try {
      expect(engine.models.embedder).toEqual({ name: 'sface-2021dec-int8bq', runtime: 'onnx' });
      expect(engine.embedderInfo).toMatchObject({ dim: 128, chipSize: 112, alignment: 'arcface' });
      const img = await decodeImage(GROUP_PHOTOS[0]!.file);
      // the same photo at 70% size: the same three people
      const small = await import('sharp').then(async ({ default: sharp }) => {
        const w = Math.round(img.width * 0.7);
        const h = Math.round(img.height * 0.7);
        const data = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).resize(w, h).raw().toBuffer();
        return { width: w, height: h, data: new Uint8Array(data) };
      });
      const [a, b] = await engine.run([img, small]);
      expect(a).toHaveLength(3);
      expect(b).toHaveLength(3);
      const cos = (p: Float32Array, q: Float32Array) => p.reduce((s, v, i) => s + v * q[i]!, 0);
      for (const f of a!) {
        const sims = b!.map((g) => cos(f.embedding!, g.embedding!)).sort((x, y) => y - x);
        expect(sims[0]).toBeGreaterThan(0.8);
        expect(sims[1]).toBeLessThan(0.5);
      }
    } finally {
      engine.dispose();
    }
  });

  it('an_onnx_file_with_the_wrong_input_shape_is_one_line_naming_the_shape', async () => {
    // SFace's input is fixed at 112x112: YuNet's wrapper needs a symbolic height and width
    const e = await failure(YuNetDetector.load({ modelPath: (await resolveModel('sface-2021dec-int8bq')).main, name: 'sface-as-detector' }));
    expect(e.code).toBe('MODEL_LOAD');
    expect(e.message).toContain('input shape [1,3,112,112] has a fixed size, expected symbolic height and width');
    expect(e.message.split('\n')).toHaveLength(1);
  });

  it('a_file_that_is_not_an_onnx_model_is_a_model_load_error_naming_the_fix', async () => {
    const dir = (await resolveModel('faceapi-landmarks68')).dir;
    const e = await failure(OnnxModel.load(`${dir}/face_landmark_68_model.bin`, 'junk', { channels: 3 }));
    expect(e.code).toBe('MODEL_LOAD');
    expect(e.message).toContain('faceflow models pull --force junk');
  });

  it('unknown_runtime_and_provider_names_are_refused_naming_the_accepted_ones', () => {
    expect(parseRuntimeName(undefined, {})).toBe('auto');
    expect(parseRuntimeName(undefined, { FACEFLOW_RUNTIME: 'onnx' })).toBe('onnx');
    expect(() => parseRuntimeName('tensorrt', {})).toThrow('unknown runtime "tensorrt" (--runtime); use one of: auto, onnx, tfjs');
    expect(() => parseRuntimeName(undefined, { FACEFLOW_RUNTIME: 'ort' })).toThrow(/FACEFLOW_RUNTIME/);
    expect(() => parseProviderName('rocm', {})).toThrow(/use one of: cpu, cuda/);
  });

  it('the_cuda_provider_without_its_libraries_is_a_clear_error_not_a_silent_cpu_run', async () => {
    const main = (await resolveModel('yunet-2023mar')).main;
    let outcome: OnnxModel | unknown;
    try {
      outcome = await OnnxModel.load(main, 'yunet-2023mar', { channels: 3 }, { provider: 'cuda' });
    } catch (e) {
      outcome = e;
    }
    // where the CUDA provider is installed the load succeeds on it; everywhere else it says what is missing
    if (outcome instanceof OnnxModel) {
      expect(outcome.provider).toBe('cuda');
      await outcome.dispose();
    } else {
      expect(outcome).toBeInstanceOf(FaceflowError);
      expect((outcome as FaceflowError).code).toBe('BACKEND_UNAVAILABLE');
      expect((outcome as FaceflowError).message).toMatch(/CUDA provider not installed: libonnxruntime_providers_cuda\.so/);
    }
  });

  it('yunet_finds_every_face_of_the_demo_photos_with_the_eyes_where_blazeface_puts_them', async () => {
    await initRuntime({ backend: 'wasm' });
    const yunet = await YuNetDetector.load({ modelPath: (await resolveModel('yunet-2023mar')).main, minFaceSize: 20, scoreThreshold: 0.8 });
    const paths = await defaultModelPaths();
    const blaze = await BlazeFaceDetector.load({ modelPath: paths.blazeface, minFaceSize: 40 });
    try {
      for (const photo of GROUP_PHOTOS.slice(0, 3)) {
        const img = await decodeImage(photo.file);
        const [found] = await yunet.run([img]);
        const [reference] = await blaze.run([img]);
        expect(found!.length, photo.file).toBe(photo.faces);
        for (const f of found!) {
          // the same face in the other detector: eyes within a fifth of the (larger) face width of each other
          const dist = (a: { x: number; y: number }, b: { x: number; y: number }) => Math.hypot(a.x - b.x, a.y - b.y);
          const match = reference!.find((r) => {
            const tol = Math.max(r.box.width, f.box.width) / 5;
            return dist(r.keypoints[0]!, f.keypoints[0]!) < tol && dist(r.keypoints[1]!, f.keypoints[1]!) < tol;
          });
          expect(match, `${photo.file}: YuNet face at ${Math.round(f.box.x)},${Math.round(f.box.y)} has no BlazeFace face with the same eyes`).toBeDefined();
          // the box holds both eyes and the mouth corners
          for (const k of f.keypoints) {
            expect(k.x).toBeGreaterThan(f.box.x);
            expect(k.x).toBeLessThan(f.box.x + f.box.width);
            expect(k.y).toBeGreaterThan(f.box.y);
            expect(k.y).toBeLessThan(f.box.y + f.box.height);
          }
          expect(f.score).toBeGreaterThan(0.6);
        }
      }
    } finally {
      await yunet.dispose();
      blaze.dispose();
    }
  });

  it('yunet_feeds_the_68_landmark_alignment_and_the_embedder_like_blazeface', async () => {
    // YuNet is the default detector (issue 11): an engine with no detector named runs it
    const yunet = await FaceEngine.load({ backend: 'wasm', detector: { minFaceSize: 20, scoreThreshold: 0.8 } });
    const blaze = await FaceEngine.load({ backend: 'wasm', models: { detector: 'blazeface' } });
    try {
      expect(yunet.models.detector).toMatchObject({ name: 'yunet-2023mar', runtime: 'onnx', provider: 'cpu' });
      expect(blaze.models.detector).toMatchObject({ name: 'facemesh-detection-full', runtime: 'tfjs' });
      const img = await decodeImage(GROUP_PHOTOS[0]!.file);
      const [a] = await yunet.run([img]);
      const [b] = await blaze.run([img]);
      expect(a).toHaveLength(GROUP_PHOTOS[0]!.faces);
      for (const f of a!) {
        expect(f.keypoints).toHaveLength(5);
        expect(f.landmarks).toHaveLength(68);
        // the same person through either detector: the refined landmarks converge, so the embeddings agree
        const best = Math.max(...b!.map((g) => g.embedding!.reduce((s, v, i) => s + v * f.embedding![i]!, 0)));
        expect(best).toBeGreaterThan(0.9);
      }
    } finally {
      yunet.dispose();
      blaze.dispose();
    }
  });

  it('a_forced_runtime_that_does_not_fit_the_detector_is_one_line_naming_the_fix', async () => {
    await expect(FaceEngine.load({ backend: 'wasm', runtime: 'tfjs', models: { detector: 'yunet' } })).rejects.toThrow(
      'detector "yunet-2023mar" is an ONNX model but the runtime is forced to tfjs; use --detector blazeface or --runtime auto',
    );
    await expect(FaceEngine.load({ backend: 'wasm', runtime: 'onnx', models: { detector: 'blazeface' } })).rejects.toThrow(/use --detector yunet/);
    // a forced tfjs runtime without a named detector takes the TF.js detector instead of refusing the default
    const tfjs = await FaceEngine.load({ backend: 'wasm', runtime: 'tfjs' });
    try {
      expect(tfjs.models.detector).toMatchObject({ name: 'facemesh-detection-full', runtime: 'tfjs' });
    } finally {
      tfjs.dispose();
    }
    await expect(FaceEngine.load({ backend: 'wasm', runtime: 'tensorrt' })).rejects.toThrow(/unknown runtime "tensorrt"/);
  });
});
