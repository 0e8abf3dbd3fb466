import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FaceflowError } from '@faceflow/shared';
import {
  BUILTIN_MODELS,
  defaultCacheDir,
  findNpmPackage,
  loadModelRegistry,
  type ModelEntry,
  ModelRegistry,
  parseRegistryJson,
  pullModel,
  readRegistryFile,
  resolveModel,
  sha256File,
  validateModelEntry,
  verifyModelFiles,
} from './index.js';
import { failure } from '../testkit/failure.testkit.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function failureSync(f: () => unknown): FaceflowError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(FaceflowError);
    return e as FaceflowError;
  }
  throw new Error('expected a throw');
}

/** A fake two-file TF.js-style model, with a nested weights path. */
const modelJson = Buffer.from(JSON.stringify({ format: 'graph-model', weightsManifest: [{ paths: ['weights/shard1.bin'] }] }));
const shard = randomBytes(200_000);
const tampered = Buffer.from(shard);
tampered[1234] = (tampered[1234] ?? 0) ^ 0x01;

let server: Server;
let base: string;
let requests: string[] = [];
/** url path -> body; `/broken/` serves a tampered shard, `/big/` an oversized one, `/fail/` a 500 */
const routes = new Map<string, Buffer>();

let work: string;
let cacheDir: string;

function fakeEntry(overrides: Partial<ModelEntry> = {}): ModelEntry {
  return {
    name: 'fake-net',
    kind: 'embedder',
    format: 'tfjs-graph',
    source: 'https://example.org/fake-net',
    url: `${base}/models/fake/`,
    main: 'model.json',
    files: [
      { path: 'model.json', sha256: sha256(modelJson), bytes: modelJson.length },
      { path: 'weights/shard1.bin', sha256: sha256(shard), bytes: shard.length },
    ],
    licence: 'MIT',
    input: { width: 112, height: 112, channels: 3, normalisation: { mean: [127.5, 127.5, 127.5], std: [128, 128, 128] } },
    output: { description: '128-d embedding', embeddingDim: 128 },
    ...overrides,
  };
}

const registryWith = (...entries: ModelEntry[]) => new ModelRegistry(BUILTIN_MODELS, [{ file: 'test', entries }]);

async function listTree(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  return (await readdir(dir, { recursive: true })).map(String).sort();
}

beforeAll(async () => {
  for (const prefix of ['/models/fake/', '/broken/', '/big/']) routes.set(`${prefix}model.json`, modelJson);
  routes.set('/models/fake/weights/shard1.bin', shard);
  routes.set('/broken/weights/shard1.bin', tampered);
  routes.set('/big/weights/shard1.bin', Buffer.concat([shard, Buffer.alloc(10)]));
  // a mirror base that holds the model under its name (cache layout)
  routes.set('/mirror/fake-net/model.json', modelJson);
  routes.set('/mirror/fake-net/weights/shard1.bin', shard);
  server = createServer((req, res) => {
    const path = req.url ?? '/';
    requests.push(path);
    if (path.startsWith('/hang/')) return; // never answers
    if (path.startsWith('/stall/')) {
      // headers and half the body, then nothing
      res.writeHead(200, { 'content-length': modelJson.length });
      res.write(modelJson.subarray(0, 10));
      return;
    }
    if (path.startsWith('/fail/')) {
      res.writeHead(500).end('oops');
      return;
    }
    const body = routes.get(path);
    if (!body) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  work = await mkdtemp(join(tmpdir(), 'faceflow-registry-'));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  await rm(work, { recursive: true, force: true });
});

beforeEach(async () => {
  requests = [];
  cacheDir = await mkdtemp(join(work, 'cache-'));
});

describe('pullModel from an HTTP source', () => {
  it('downloads, verifies and caches every file, then resolves from the cache', async () => {
    const registry = registryWith(fakeEntry());
    const progress: number[] = [];
    const r = await pullModel('fake-net', { registry, cacheDir, env: {}, onProgress: (p) => progress.push(p.bytes) });
    expect(r.location).toBe('cache');
    expect(r.downloaded).toEqual(['model.json', 'weights/shard1.bin']);
    expect(r.dir).toBe(join(cacheDir, 'fake-net'));
    expect(r.main).toBe(join(cacheDir, 'fake-net', 'model.json'));
    expect(sha256(await readFile(join(cacheDir, 'fake-net', 'weights', 'shard1.bin')))).toBe(sha256(shard));
    expect(progress.at(-1)).toBe(shard.length);
    // nothing else in the cache (no temporary folder left)
    expect(await listTree(cacheDir)).toEqual(['fake-net', 'fake-net/model.json', 'fake-net/weights', 'fake-net/weights/shard1.bin']);

    // a second pull finds everything in place and fetches nothing
    requests = [];
    const again = await pullModel('fake-net', { registry, cacheDir, env: {} });
    expect(again.downloaded).toEqual([]);
    expect(requests).toEqual([]);

    const resolved = await resolveModel('fake-net', { registry, cacheDir, env: {} });
    expect(resolved.location).toBe('cache');
    expect(resolved.files).toEqual([join(cacheDir, 'fake-net', 'model.json'), join(cacheDir, 'fake-net', 'weights', 'shard1.bin')]);
  });

  it('refuses a hash mismatch with MODEL_INTEGRITY naming the file and both hashes, leaving nothing in the cache', async () => {
    const registry = registryWith(fakeEntry({ url: `${base}/broken/` }));
    const e = await failure(pullModel('fake-net', { registry, cacheDir, env: {} }));
    expect(e.code).toBe('MODEL_INTEGRITY');
    expect(e.retriable).toBe(false);
    expect(e.message).toContain('weights/shard1.bin');
    expect(e.message).toContain(sha256(shard));
    expect(e.message).toContain(sha256(tampered));
    expect(e.details).toMatchObject({ file: 'weights/shard1.bin', expected: sha256(shard), actual: sha256(tampered) });
    // model.json was fine, but nothing is cached unless every file passed; no partial files either
    expect(await listTree(cacheDir)).toEqual([]);
  });

  it('refuses a file larger than registered without writing more than that', async () => {
    const registry = registryWith(fakeEntry({ url: `${base}/big/` }));
    const e = await failure(pullModel('fake-net', { registry, cacheDir, env: {} }));
    expect(e.code).toBe('MODEL_INTEGRITY');
    expect(e.message).toMatch(/larger than the registered 200000 bytes/);
    expect(await listTree(cacheDir)).toEqual([]);
  });

  it('reports a 404 as NOT_FOUND naming the URL', async () => {
    const registry = registryWith(fakeEntry({ url: `${base}/nowhere/` }));
    const e = await failure(pullModel('fake-net', { registry, cacheDir, env: {} }));
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toContain(`${base}/nowhere/model.json`);
    expect(e.message).toContain('HTTP 404');
    expect(await listTree(cacheDir)).toEqual([]);
  });

  it('reports an HTTP 500 as a retriable TRANSPORT error and a refused connection as TRANSPORT', async () => {
    const e = await failure(pullModel('fake-net', { registry: registryWith(fakeEntry({ url: `${base}/fail/` })), cacheDir, env: {} }));
    expect(e.code).toBe('TRANSPORT');
    expect(e.retriable).toBe(true);
    expect(e.message).toContain('HTTP 500');

    // a port nobody listens on: open a server, note its port, close it
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const refused = await failure(pullModel('fake-net', { registry: registryWith(fakeEntry({ url: `http://127.0.0.1:${port}/` })), cacheDir, env: {} }));
    expect(refused.code).toBe('TRANSPORT');
    expect(await listTree(cacheDir)).toEqual([]);
  });

  it('gives up on a source that does not answer, or stops sending, with TIMEOUT and an empty cache', async () => {
    for (const route of ['hang', 'stall']) {
      const registry = registryWith(fakeEntry({ url: `${base}/${route}/` }));
      const t0 = Date.now();
      const e = await failure(pullModel('fake-net', { registry, cacheDir, env: {}, timeoutMs: 300 }));
      expect(e.code, route).toBe('TIMEOUT');
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(await listTree(cacheDir)).toEqual([]);
    }
  });

  it('uses the fetchImpl it is given', async () => {
    const seen: string[] = [];
    const fetchImpl: typeof fetch = async (input, init) => {
      seen.push(String(input));
      return fetch(input, init);
    };
    await pullModel('fake-net', { registry: registryWith(fakeEntry()), cacheDir, env: {}, fetchImpl });
    expect(seen).toEqual([`${base}/models/fake/model.json`, `${base}/models/fake/weights/shard1.bin`]);
  });

  it('re-fetches only a cached file that no longer verifies, after resolve and verify refused it', async () => {
    const registry = registryWith(fakeEntry());
    await pullModel('fake-net', { registry, cacheDir, env: {} });
    const shardPath = join(cacheDir, 'fake-net', 'weights', 'shard1.bin');
    await writeFile(shardPath, tampered);

    const v = await failure(verifyModelFiles(fakeEntry(), join(cacheDir, 'fake-net')));
    expect(v.code).toBe('MODEL_INTEGRITY');
    expect(v.message).toContain(sha256(tampered));
    const r = await failure(resolveModel('fake-net', { registry, cacheDir, env: {} }));
    expect(r.code).toBe('MODEL_INTEGRITY');
    // resolve without verification still finds it (the caller opted out)
    expect((await resolveModel('fake-net', { registry, cacheDir, env: {}, verify: false })).location).toBe('cache');

    requests = [];
    const healed = await pullModel('fake-net', { registry, cacheDir, env: {} });
    expect(healed.downloaded).toEqual(['weights/shard1.bin']);
    expect(requests).toEqual(['/models/fake/weights/shard1.bin']);
    expect(await sha256File(shardPath)).toBe(sha256(shard));
  });
});

describe('pullModel from a mirror', () => {
  it('takes a folder laid out like the cache (<mirror>/<name>/<path>)', async () => {
    const mirror = await mkdtemp(join(work, 'mirror-'));
    await mkdir(join(mirror, 'fake-net', 'weights'), { recursive: true });
    await writeFile(join(mirror, 'fake-net', 'model.json'), modelJson);
    await writeFile(join(mirror, 'fake-net', 'weights', 'shard1.bin'), shard);
    // url points nowhere: the mirror must be used, not the url
    const registry = registryWith(fakeEntry({ url: `${base}/nowhere/` }));
    const r = await pullModel('fake-net', { registry, cacheDir, env: {}, mirror });
    expect(r.downloaded).toHaveLength(2);
    expect(requests).toEqual([]);
    expect(await sha256File(r.files[1]!)).toBe(sha256(shard));
  });

  it('takes a flat folder (<mirror>/<path>) and an entry without url', async () => {
    const mirror = await mkdtemp(join(work, 'mirror-flat-'));
    await mkdir(join(mirror, 'weights'), { recursive: true });
    await writeFile(join(mirror, 'model.json'), modelJson);
    await writeFile(join(mirror, 'weights', 'shard1.bin'), shard);
    const { url: _url, ...noUrl } = fakeEntry();
    const r = await pullModel(noUrl, { cacheDir, env: {}, mirror });
    expect(r.downloaded).toHaveLength(2);
  });

  it('refuses a tampered file in a folder mirror and leaves the cache empty', async () => {
    const mirror = await mkdtemp(join(work, 'mirror-bad-'));
    await mkdir(join(mirror, 'weights'), { recursive: true });
    await writeFile(join(mirror, 'model.json'), modelJson);
    await writeFile(join(mirror, 'weights', 'shard1.bin'), tampered);
    const e = await failure(pullModel(fakeEntry(), { cacheDir, env: {}, mirror }));
    expect(e.code).toBe('MODEL_INTEGRITY');
    expect(await listTree(cacheDir)).toEqual([]);
  });

  it('reports a missing folder mirror or a file missing from it as NOT_FOUND', async () => {
    const gone = await failure(pullModel(fakeEntry(), { cacheDir, env: {}, mirror: join(work, 'no-such-mirror') }));
    expect(gone.code).toBe('NOT_FOUND');
    expect(gone.message).toContain('no-such-mirror');
    const empty = await mkdtemp(join(work, 'mirror-empty-'));
    const missing = await failure(pullModel(fakeEntry(), { cacheDir, env: {}, mirror: empty }));
    expect(missing.code).toBe('NOT_FOUND');
    expect(missing.message).toContain('model.json');
  });

  it('takes an http(s) URL base, trying <base>/<name>/<path>', async () => {
    const r = await pullModel(fakeEntry({ url: `${base}/nowhere/` }), { cacheDir, env: {}, mirror: `${base}/mirror` });
    expect(r.downloaded).toHaveLength(2);
    expect(requests).toEqual(['/mirror/fake-net/model.json', '/mirror/fake-net/weights/shard1.bin']);
  });

  it('without url or mirror is INVALID_ARGUMENT', async () => {
    const { url: _url, ...noUrl } = fakeEntry();
    const e = await failure(pullModel(noUrl, { cacheDir, env: {} }));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(/mirror/);
  });
});

describe('resolveModel', () => {
  it('says how to pull a model that is not in the cache', async () => {
    const e = await failure(resolveModel('fake-net', { registry: registryWith(fakeEntry()), cacheDir, env: {} }));
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toContain('faceflow models pull fake-net');
    expect(e.message).toContain(cacheDir);
  });

  it('refuses an unknown model name with NOT_FOUND listing the known ones', async () => {
    const e = await failure(resolveModel('no-such-model', { cacheDir, env: {} }));
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toContain('faceapi-recognition');
  });
});

describe('built-in npm-shipped models', () => {
  it('lists the models the engine uses', () => {
    expect(BUILTIN_MODELS.map((m) => m.name).sort()).toEqual([
      'centerface',
      'faceapi-landmarks68',
      'faceapi-landmarks68-onnx',
      'faceapi-recognition',
      'faceapi-recognition-onnx',
      'faceapi-ssd-mobilenetv1',
      'faceapi-tiny-detector',
      'facemesh',
      'facemesh-detection-full',
      'facemesh-detection-short',
      'faceres',
      'mobilefacenet',
      'selfie',
      'sface-2021dec-int8bq',
      'yunet-2023mar',
    ]);
    const recog = new ModelRegistry().get('faceapi-recognition');
    expect(recog.input).toMatchObject({ width: 150, height: 150 });
    expect(recog.output.embeddingDim).toBe(128);
  });

  it('are installed at the registered versions', () => {
    for (const m of BUILTIN_MODELS.filter((x) => x.npm)) {
      const found = findNpmPackage(m.npm!.package);
      expect(found, m.npm!.package).toBeDefined();
      expect(found!.version).toBe(m.npm!.version);
    }
  });

  it('resolve from node_modules to existing files whose sha256 and size match the registry', async () => {
    for (const m of BUILTIN_MODELS.filter((x) => x.npm)) {
      const r = await resolveModel(m.name, { cacheDir, env: {} }); // verifies
      expect(r.location).toBe('npm');
      expect(r.dir).toContain(join('node_modules', ...m.npm!.package.split('/')));
      // and independently of verifyModelFiles:
      for (const [i, f] of m.files.entries()) {
        const bytes = await readFile(r.files[i]!);
        expect(bytes.length, f.path).toBe(f.bytes);
        expect(sha256(bytes), f.path).toBe(f.sha256);
      }
      expect(existsSync(r.main)).toBe(true);
    }
  });

  it('need no pull: pullModel verifies them in node_modules and fetches nothing', async () => {
    const fetchImpl: typeof fetch = async () => {
      throw new Error('must not fetch');
    };
    const r = await pullModel('faceapi-tiny-detector', { cacheDir, env: {}, fetchImpl });
    expect(r.location).toBe('npm');
    expect(r.downloaded).toEqual([]);
    expect(await listTree(cacheDir)).toEqual([]);
  });

  it('a user entry that replaces a built-in one with other hashes is refused at verification', async () => {
    const builtin = new ModelRegistry().get('selfie');
    const wrong = { ...builtin, files: builtin.files.map((f) => ({ ...f, sha256: '0'.repeat(64) })) };
    const e = await failure(resolveModel('selfie', { registry: registryWith(wrong), cacheDir, env: {} }));
    expect(e.code).toBe('MODEL_INTEGRITY');
    expect(e.message).toContain('0'.repeat(64));
  });
});

describe('user registry files', () => {
  it('adds entries and replaces built-in ones; FACEFLOW_MODEL_REGISTRY names the file', async () => {
    const selfie = new ModelRegistry().get('selfie');
    const file = join(work, 'user-registry.json');
    const added = fakeEntry({ name: 'arcface-r100' });
    await writeFile(file, JSON.stringify({ models: [added, { ...selfie, description: 'my selfie' }] }));

    const viaOption = await loadModelRegistry({ registryFile: file, env: {} });
    expect(viaOption.get('arcface-r100').files[1]!.sha256).toBe(sha256(shard));
    expect(viaOption.get('selfie').description).toBe('my selfie');
    expect(viaOption.origin('selfie')).toEqual({ file });
    expect(viaOption.origin('faceres')).toBe('built-in');

    const viaEnv = await loadModelRegistry({ env: { FACEFLOW_MODEL_REGISTRY: file } });
    expect(viaEnv.has('arcface-r100')).toBe(true);
    expect((await loadModelRegistry({ env: {} })).has('arcface-r100')).toBe(false);
    expect(viaEnv.list('embedder').map((m) => m.name)).toContain('arcface-r100');
  });

  it('reports a missing registry file as NOT_FOUND and bad JSON as INVALID_CONFIG', async () => {
    expect((await failure(readRegistryFile(join(work, 'nope.json')))).code).toBe('NOT_FOUND');
    const bad = join(work, 'bad.json');
    await writeFile(bad, '{ "models": [ ');
    const e = await failure(loadModelRegistry({ registryFile: bad, env: {} }));
    expect(e.code).toBe('INVALID_CONFIG');
    expect(e.message).toContain(bad);
  });

  const invalid: [string, (e: Record<string, unknown>) => unknown, RegExp][] = [
    ['a short sha256', (e) => ({ ...e, files: [{ path: 'model.json', sha256: 'abc', bytes: 1 }] }), /models\[0\] \("fake-net"\)\.files\[0\]\.sha256: expected 64 hex characters, got "abc"/],
    ['a missing kind', ({ kind: _k, ...e }) => e, /\.kind: expected one of 'detector', 'landmarks', 'embedder', 'segmenter', 'mesh', got nothing/],
    ['an unknown format', (e) => ({ ...e, format: 'caffe' }), /\.format: expected one of 'tfjs-graph'/],
    ['a package source without a fix list', (e) => ({ ...e, fromPackage: { registry: 'pypi', package: 'x', version: '1', archiveSha256: 'a'.repeat(64), member: 'x/m.onnx', sha256: 'a'.repeat(64), bytes: 1 } }), /\.fromPackage\.fixes: expected an array/],
    ['an unknown graph fix', (e) => ({ ...e, fromPackage: { registry: 'pypi', package: 'x', version: '1', archiveSha256: 'a'.repeat(64), member: 'x/m.onnx', sha256: 'a'.repeat(64), bytes: 1, fixes: ['simplify'] } }), /\.fromPackage\.fixes\[0\]: expected one of 'symbolic-dims'/],
    ['a package source from an unknown registry', (e) => ({ ...e, fromPackage: { registry: 'conda', package: 'x', version: '1', archiveSha256: 'a'.repeat(64), member: 'x/m.onnx', sha256: 'a'.repeat(64), bytes: 1, fixes: [] } }), /\.fromPackage\.registry: expected one of 'pypi', 'npm'/],
    ['a misspelt field', (e) => ({ ...e, licence: undefined, license: 'MIT' }), /\.license: unknown field/],
    ['an embedder without embeddingDim', (e) => ({ ...e, output: { description: 'x' } }), /\.output\.embeddingDim: required for an embedder/],
    ['a path leaving the model folder', (e) => ({ ...e, files: [{ path: '../evil.json', sha256: 'a'.repeat(64), bytes: 1 }], main: '../evil.json' }), /\.files\[0\]\.path: expected a relative path/],
    ['an absolute path', (e) => ({ ...e, files: [{ path: '/etc/passwd', sha256: 'a'.repeat(64), bytes: 1 }], main: '/etc/passwd' }), /\.files\[0\]\.path/],
    ['main not among the files', (e) => ({ ...e, main: 'other.json' }), /\.main: expected one of the files' paths/],
    ['a non-http url', (e) => ({ ...e, url: 'ftp://example.org/x/' }), /\.url: expected an http\(s\) URL/],
    ['a bad std', (e) => ({ ...e, input: { width: 1, height: 1, channels: 3, normalisation: { mean: [0, 0, 0], std: [1, 0, 1] } } }), /\.input\.normalisation\.std\[1\]: expected a number > 0/],
    ['a bad name', (e) => ({ ...e, name: '../x' }), /\.name: expected letters, digits/],
    ['zero bytes', (e) => ({ ...e, files: [{ path: 'model.json', sha256: 'a'.repeat(64), bytes: 0 }] }), /\.files\[0\]\.bytes: expected an integer >= 1, got number 0/],
  ];
  for (const [what, mutate, message] of invalid) {
    it(`refuses ${what}, naming the field`, () => {
      const raw = JSON.parse(JSON.stringify(mutate(JSON.parse(JSON.stringify(fakeEntry())) as Record<string, unknown>)));
      const e = failureSync(() => parseRegistryJson(JSON.stringify({ models: [raw] }), 'my-registry.json'));
      expect(e.code).toBe('INVALID_CONFIG');
      expect(e.message.startsWith('my-registry.json: models[0]')).toBe(true);
      expect(e.message).toMatch(message);
    });
  }

  it('refuses duplicate names in one file and a file without "models"', () => {
    const twice = JSON.stringify({ models: [fakeEntry(), fakeEntry()] });
    expect(failureSync(() => parseRegistryJson(twice, 'r.json')).message).toMatch(/models\[1\]\.name: "fake-net" appears twice/);
    expect(failureSync(() => parseRegistryJson('{"entries": []}', 'r.json')).message).toMatch(/unknown top-level field "entries"/);
    expect(failureSync(() => parseRegistryJson('42', 'r.json')).code).toBe('INVALID_CONFIG');
  });

  it('normalises hashes to lower case', () => {
    const e = fakeEntry();
    const upper = { ...e, files: e.files.map((f) => ({ ...f, sha256: f.sha256.toUpperCase() })) };
    expect(validateModelEntry(upper).files[0]!.sha256).toBe(e.files[0]!.sha256);
  });
});

describe('defaultCacheDir', () => {
  it('follows FACEFLOW_MODEL_CACHE, then XDG_CACHE_HOME, then ~/.cache', () => {
    expect(defaultCacheDir({ FACEFLOW_MODEL_CACHE: '/srv/models' })).toBe('/srv/models');
    expect(defaultCacheDir({ XDG_CACHE_HOME: '/xdg' })).toBe(join('/xdg', 'faceflow', 'models'));
    expect(defaultCacheDir({})).toMatch(/\.cache[/\\]faceflow[/\\]models$/);
  });
});
