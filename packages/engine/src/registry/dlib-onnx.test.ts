/**
 * faceflow's conversions to ONNX (issue 11): the dlib ResNet (step 1) and the 68-point landmark net
 * (pipeline latency), each made by faceflow's own code from the verified face-api weights, the same bytes on
 * every run, recorded in the registry by its sha256, installed by `models pull` like a download (checked
 * before it enters the cache); for the dlib file, a damaged file is refused and made again.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertDlibResNetToOnnx } from './dlib-onnx.js';
import { convertLandmark68ToOnnx } from './landmarks-onnx.js';
import { BUILTIN_MODELS, ModelRegistry, parseRegistryJson, pullModel, resolveModel, type ModelEntry } from './index.js';
import { failure } from '../testkit/failure.testkit.js';

const NAME = 'faceapi-recognition-onnx';
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** one model cache per converted model under it */
let cacheRoot: string;
beforeAll(async () => {
  cacheRoot = await mkdtemp(join(tmpdir(), 'faceflow-derived-onnx-'));
});
afterAll(async () => {
  await rm(cacheRoot, { recursive: true, force: true });
});

describe.each([
  { name: NAME, source: 'faceapi-recognition', convert: convertDlibResNetToOnnx, file: 'dlib_face_recognition_resnet.onnx' },
  { name: 'faceapi-landmarks68-onnx', source: 'faceapi-landmarks68', convert: convertLandmark68ToOnnx, file: 'face_landmark_68.onnx' },
])('$name, converted by faceflow from $source', ({ name, source, convert, file }) => {
  it('is the same bytes on every run, the ones the registry entry records', async () => {
    const from = await resolveModel(source);
    const a = await convert(from.main);
    const b = await convert(from.main);
    expect(sha256(a)).toBe(sha256(b));
    const recorded = new ModelRegistry().get(name).files[0]!;
    expect({ bytes: a.length, sha256: sha256(a) }).toEqual({ bytes: recorded.bytes, sha256: recorded.sha256 });
  });

  it('is made by models pull, verified into the cache, and not made again when it verifies', async () => {
    const cacheDir = join(cacheRoot, name);
    const r = await pullModel(name, { cacheDir, env: {} });
    expect(r.location).toBe('cache');
    expect(r.downloaded).toEqual([file]);
    expect(await readdir(cacheDir)).toEqual([name]);
    expect((await pullModel(name, { cacheDir, env: {} })).downloaded).toEqual([]);
    expect((await resolveModel(name, { cacheDir, env: {} })).main).toBe(r.main);
  });
});

describe('the dlib ResNet converted to ONNX', () => {
  let cacheDir: string;
  beforeAll(() => {
    cacheDir = join(cacheRoot, NAME);
  });

  it('a truncated or altered converted file is one line naming the file, and pull makes it again', async () => {
    const main = (await resolveModel(NAME, { cacheDir, env: {} })).main;
    await truncate(main, 1000);
    const short = await failure(resolveModel(NAME, { cacheDir, env: {} }));
    expect(short.code).toBe('MODEL_INTEGRITY');
    expect(short.message).toMatch(/dlib_face_recognition_resnet\.onnx is 1000 bytes, expected 22442712/);
    expect(short.message.split('\n')).toHaveLength(1);
    expect((await pullModel(NAME, { cacheDir, env: {} })).downloaded).toHaveLength(1);
    const bytes = await readFile(main);
    bytes[bytes.length - 5] ^= 1;
    await writeFile(main, bytes);
    const altered = await failure(resolveModel(NAME, { cacheDir, env: {} }));
    expect(altered.code).toBe('MODEL_INTEGRITY');
    expect(altered.message).toMatch(/has sha256 [0-9a-f]{64}, expected 76ae09a5/);
    expect((await pullModel(NAME, { cacheDir, env: {} })).downloaded).toHaveLength(1);
    await expect(resolveModel(NAME, { cacheDir, env: {} })).resolves.toBeDefined();
  });

  it('a conversion that does not give the recorded sha256 is refused and leaves nothing in the cache', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'faceflow-dlib-onnx-wrong-'));
    try {
      const entry = new ModelRegistry().get(NAME);
      const wrong: ModelEntry = { ...entry, files: [{ ...entry.files[0]!, sha256: '0'.repeat(64) }] };
      const e = await failure(pullModel(wrong, { cacheDir: empty, env: {} }));
      expect(e.code).toBe('MODEL_INTEGRITY');
      expect(e.message).toContain(`dlib-resnet-onnx made dlib_face_recognition_resnet.onnx of 22442712 bytes with sha256 ${entry.files[0]!.sha256} from "faceapi-recognition", expected 22442712 bytes with ${'0'.repeat(64)}; refused`);
      expect(await readdir(empty)).toEqual([]);
      // not installed: the one line says which command installs it
      const missing = await failure(resolveModel(NAME, { cacheDir: empty, env: {} }));
      expect(missing.code).toBe('NOT_FOUND');
      expect(missing.message).toContain(`faceflow models pull ${NAME}`);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  it('a registry entry with a bad derived origin is refused naming the field', () => {
    const entry = BUILTIN_MODELS.find((m) => m.name === NAME)!;
    const parse = (e: unknown) => {
      try {
        parseRegistryJson(JSON.stringify({ models: [e] }), 'r.json');
      } catch (err) {
        return (err as Error).message;
      }
      return 'accepted';
    };
    expect(parse({ ...entry, derived: { from: 'faceapi-recognition', converter: 'tf2onnx' } })).toMatch(/\.derived\.converter: expected one of 'dlib-resnet-onnx'/);
    expect(parse({ ...entry, derived: { from: NAME, converter: 'dlib-resnet-onnx' } })).toMatch(/\.derived\.from: a model cannot be derived from itself/);
    expect(parse({ ...entry, derived: { from: 'faceapi-recognition' } })).toMatch(/\.derived\.converter: expected one of/);
    expect(parse(entry)).toBe('accepted');
  });
});
