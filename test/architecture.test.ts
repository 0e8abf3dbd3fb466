/**
 * The house rules of ../shared/DESIGN.md, checked on the sources: the engine never imports Kafka, Redis or
 * HTTP server code; a service never imports another service; only the runtime adapter loads TF.js, and only
 * the adapters load their third-party clients; the CLI imports no Kafka code and holds no benchmark (bench/);
 * `@faceflow/engine/match` and the matcher, which runs no model, reach no model runtime (issue 13).
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory() && e.name !== 'node_modules' && e.name !== 'dist') await walk(p);
      else if (e.isFile() && p.endsWith('.ts') && !/\.(test|testkit)\.ts$/.test(p)) out.push(p);
    }
  };
  await walk(path.join(root, dir));
  return out;
}

/** Value imports (not `import type`) and dynamic imports/requires of each file. */
async function valueImports(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8');
  const specs: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\s+(?!type\b)[^'"]*?from\s+['"]([^'"]+)['"]/gm)) specs.push(m[1]!);
  for (const m of text.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)) specs.push(m[1]!);
  for (const m of text.matchAll(/(?:require|import)\(\s*['"]([^'"]+)['"]\s*\)(?!\.[A-Z])/g)) specs.push(m[1]!); // import('x').Type is a type
  return specs;
}

/** The file a relative or workspace import of `from` resolves to (undefined: a third-party package or a builtin). */
function resolveImport(from: string, spec: string): string | undefined {
  if (spec.startsWith('.')) return path.resolve(path.dirname(from), spec.replace(/\.js$/, '.ts'));
  const ws: Record<string, string> = {
    '@faceflow/shared': 'packages/shared/src/index.ts',
    '@faceflow/shared/kafka': 'packages/shared/src/kafka.ts',
    '@faceflow/shared/redis': 'packages/shared/src/redis.ts',
    '@faceflow/engine': 'packages/engine/src/index.ts',
    '@faceflow/engine/match': 'packages/engine/src/match/index.ts',
  };
  const file = ws[spec];
  return file ? path.join(root, file) : undefined;
}

/**
 * Every third-party or builtin module a value import chain from `entries` reaches, with the chain that
 * reaches it. `follow(file)`: whether to look into a workspace file's imports (false: stop at it).
 */
async function reachable(entries: string[], follow: (file: string) => boolean = () => true): Promise<Map<string, string>> {
  const seen = new Set<string>();
  const out = new Map<string, string>();
  const visit = async (file: string, chain: string): Promise<void> => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const spec of await valueImports(file)) {
      const target = resolveImport(file, spec);
      const via = `${chain} -> ${spec}`;
      if (target === undefined) {
        if (!out.has(spec)) out.set(spec, via);
      } else if (follow(target)) {
        await visit(target, via);
      }
    }
  };
  for (const e of entries) await visit(e, path.relative(root, e));
  return out;
}

async function offenders(dir: string, banned: RegExp, allow: (file: string) => boolean = () => false): Promise<string[]> {
  const bad: string[] = [];
  for (const f of await sources(dir)) {
    if (allow(f)) continue;
    for (const s of await valueImports(f)) if (banned.test(s)) bad.push(`${path.relative(root, f)} imports ${s}`);
  }
  return bad;
}


/** Every module a value import reaches from `entry`, following relative imports; bare specifiers are listed as such. */
async function reachableFromEntry(entry: string): Promise<{ files: string[]; bare: string[] }> {
  const files = new Set<string>();
  const bare: string[] = [];
  const visit = async (file: string): Promise<void> => {
    if (files.has(file)) return;
    files.add(file);
    for (const s of await valueImports(file)) {
      if (s.startsWith('.')) await visit(path.resolve(path.dirname(file), s.replace(/\.js$/, '.ts')));
      else bare.push(`${path.relative(root, file)} imports ${s}`);
    }
  };
  await visit(path.join(root, entry));
  return { files: [...files], bare };
}

describe('architecture invariants', () => {
  it('the engine never imports Kafka, Redis or HTTP server code', async () => {
    expect(await offenders('packages/engine/src', /^(kafkajs|ioredis|@faceflow\/shared\/(kafka|redis)|fastify|express|@faceflow\/(ingest|embedder|matcher|alerts))$/)).toEqual([]);
  });

  it('the engine\'s folders import only the layers below them (packages/engine/README.md)', async () => {
    // value imports only: a type may cross a layer (registry/head-meta.ts names eval/far.ts's FarCalibration)
    const below: Record<string, string[]> = {
      runtime: [],
      registry: [],
      image: [],
      models: ['runtime', 'registry', 'image'],
      recognize: ['models', 'runtime', 'registry', 'image', 'match'],
      match: ['search', 'registry'],
      search: ['match'],
      segment: ['image', 'models'],
      redact: ['segment', 'match', 'image'],
      eval: ['image', 'segment', 'match'],
      train: ['runtime', 'models', 'eval', 'segment', 'image'],
    };
    const engine = path.join(root, 'packages/engine/src');
    const bad: string[] = [];
    for (const f of await sources('packages/engine/src')) {
      const folder = path.relative(engine, f).split(path.sep)[0]!;
      if (folder.endsWith('.ts') || folder === 'testkit') continue; // the root index; test helpers
      const allowed = below[folder];
      if (!allowed) {
        bad.push(`${path.relative(root, f)}: folder ${folder} is not in the layer map`);
        continue;
      }
      for (const s of await valueImports(f)) {
        if (!s.startsWith('.')) continue;
        const target = path.relative(engine, path.resolve(path.dirname(f), s)).split(path.sep)[0]!;
        if (target !== folder && !allowed.includes(target)) bad.push(`${path.relative(root, f)} imports ${s}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('only the runtime adapter loads TensorFlow.js', async () => {
    expect(await offenders('packages', /^@tensorflow\//, (f) => f.includes(`${path.sep}runtime${path.sep}`))).toEqual([]);
  });

  it('only the adapters load kafkajs, ioredis and prom-client', async () => {
    expect(await offenders('packages', /^kafkajs$/, (f) => f.endsWith('kafka-bus.ts'))).toEqual([]);
    expect(await offenders('packages', /^ioredis$/, (f) => f.endsWith('redis-gallery-store.ts'))).toEqual([]);
    expect(await offenders('packages', /^prom-client$/, (f) => f.endsWith(`shared${path.sep}src${path.sep}metrics.ts`))).toEqual([]);
    expect(await offenders('services', /^(kafkajs|ioredis|prom-client)$/)).toEqual([]);
  });

  it('the CLI imports no Kafka code and holds no benchmark', async () => {
    // issue 13: the benchmarks were the CLI's only reason to import Kafka; they live in the root bench/
    // workspace, which may import anything. The `gallery` command's Redis store (@faceflow/shared/redis) stays.
    expect(await offenders('packages/cli', /^(kafkajs|@faceflow\/shared\/kafka|@faceflow\/bench(\/.*)?)$/)).toEqual([]);
    const benches: string[] = [];
    for (const f of await sources('packages/cli')) if (f.split(path.sep).includes('bench') || /bench/i.test(path.basename(f))) benches.push(path.relative(root, f));
    expect(benches).toEqual([]);
    // Redis only where an operator manages the Redis gallery (`faceflow gallery --redis`: the source of truth
    // when no service runs, e.g. a restore after Redis lost its data), and only through the store adapter
    expect(await offenders('packages/cli', /^(ioredis|@faceflow\/shared\/redis)$/, (f) => f.endsWith(path.join('commands', 'gallery.ts')))).toEqual([]);
    expect(await offenders('packages/cli', /^ioredis$/)).toEqual([]);
  });

  it("@faceflow/shared's root reaches no third-party module and no HTTP code (those sit under /ops, /kafka, /redis)", async () => {
    // issue 13 step 5: a stage, a schema or a gallery contract can be imported without prom-client, kafkajs,
    // ioredis or node:http; Node's own file, crypto and path modules are not third-party
    const { files, bare } = await reachableFromEntry('packages/shared/src/index.ts');
    expect(files.length).toBeGreaterThan(10);
    expect(bare.filter((b) => !/ imports node:(fs|fs\/promises|path|url|crypto|util|os|events|timers|timers\/promises)$/.test(b))).toEqual([]);
  });

  it('the media adapter (@faceflow/shared/media) imports only Node builtins and its own package (issue 13)', async () => {
    expect(await offenders('packages/shared/src/media', /^(?!node:|\.)/)).toEqual([]);
  });

  it('the engine root exports a curated API of fewer than 40 names; the rest sits behind its subpaths (issue 13)', async () => {
    const ts = (await import('typescript')).default;
    const index = path.join(root, 'packages/engine/src/index.ts');
    const program = ts.createProgram([index], { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, noEmit: true });
    const checker = program.getTypeChecker();
    const names = checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(index)!)!).map((s) => s.name);
    expect(names.length).toBeGreaterThan(10);
    expect(names.length).toBeLessThan(40);
    // every subpath the package exports is a folder index (packages/engine/README.md)
    const pkg = JSON.parse(await readFile(path.join(root, 'packages/engine/package.json'), 'utf8')) as { exports: Record<string, { default: string }> };
    for (const [sub, target] of Object.entries(pkg.exports)) {
      if (sub === '.') continue;
      expect(target.default).toBe(`./dist/${sub.slice(2)}/index.js`);
    }
  }, 60_000);

  it('a service never imports another service', async () => {
    for (const s of ['ingest', 'embedder', 'matcher', 'alerts']) {
      const others = ['ingest', 'embedder', 'matcher', 'alerts'].filter((o) => o !== s).join('|');
      expect(await offenders(`services/${s}`, new RegExp(`^(@faceflow/(${others})|\\.\\./+(\\.\\./)*(services/)?(${others})(/|$))`))).toEqual([]);
    }
  });

  it('outside the engine a face is aligned by the engine\'s alignChip, the embedder\'s own chip', async () => {
    // a named aligner (dlib's 150 px chip, ArcFace's 112 px one) is right for one embedder only: with
    // --embedder sface a dlib chip is a wrong input that still runs (issue 11). `faceflow train` too: its
    // orchestration (engine train/projection-head-run.ts) aligns with the base engine's alignChip, and so do
    // the evaluation runs (issue 13).
    const bad: string[] = [];
    for (const dir of ['packages/cli/src', 'services', 'packages/engine/src/train', 'packages/engine/src/eval']) {
      for (const f of await sources(dir)) {
        if (/\balign(Dlib|ArcFace)Chip\b/.test(await readFile(f, 'utf8'))) bad.push(path.relative(root, f));
      }
    }
    expect(bad).toEqual([]);
  });

  // issue 13: the matcher runs no model, and `@faceflow/engine/match` (gallery, identify, the decision policy,
  // the track-identity rule) is importable without loading one
  const MODEL_RUNTIMES = /^(@tensorflow\/|@vladmandic\/|onnxruntime-(node|web|common)$|sharp$)/;

  it('no model runtime (TF.js, ONNX Runtime, sharp) is reachable from @faceflow/engine/match or the matcher', async () => {
    const entries = [...(await sources('packages/engine/src/match')), ...(await sources('services/matcher/src'))];
    expect(entries.length).toBeGreaterThan(0);
    const bad = [...(await reachable(entries))].filter(([m]) => MODEL_RUNTIMES.test(m)).map(([m, via]) => `${m} via ${via}`);
    expect(bad).toEqual([]);
  });

  it('@faceflow/engine/match reaches no metrics or HTTP server code', async () => {
    // through the engine's files and @faceflow/shared's root, which holds no ops code (issue 13 step 5)
    const reached = await reachable(await sources('packages/engine/src/match'));
    const bad = [...reached].filter(([m]) => /^(prom-client|(node:)?https?)$/.test(m)).map(([m, via]) => `${m} via ${via}`);
    expect(bad).toEqual([]);
  });

  it('the matcher imports the engine only as @faceflow/engine/match', async () => {
    expect(await offenders('services/matcher', /^@faceflow\/engine(?!\/match$)/)).toEqual([]);
  });
});
