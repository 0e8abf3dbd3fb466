/** faceflow models list | pull: the model registry from the command line. */
import { loadModelRegistry, pullModel, resolveModel, defaultCacheDir, type ModelEntry } from '@faceflow/engine';
import { type CommandSpec, runGroup, str } from '../cli.js';

const REGISTRY_FLAGS = { registry: { type: 'string' as const }, cache: { type: 'string' as const } };
const REGISTRY_HELP = [
  '  --registry FILE    add or override entries from a registry JSON file (env FACEFLOW_MODEL_REGISTRY)',
  '  --cache DIR        model cache folder (env FACEFLOW_MODEL_CACHE; default ~/.cache/faceflow/models)',
];

function opts(ctx: Parameters<CommandSpec['run']>[0]): { registryFile?: string; cacheDir?: string } {
  const registryFile = str(ctx, 'registry');
  const cacheDir = str(ctx, 'cache');
  return { ...(registryFile ? { registryFile } : {}), ...(cacheDir ? { cacheDir } : {}) };
}

const list: CommandSpec = {
  name: 'models list',
  summary: 'every model the engine knows: name, kind, input, licence, where it comes from, whether it is present',
  usage: 'faceflow models list [--registry FILE] [--json]',
  flags: { ...REGISTRY_FLAGS },
  help: [...REGISTRY_HELP],
  maxPositionals: 0,
  async run(ctx) {
    const o = opts(ctx);
    const registry = await loadModelRegistry(o.registryFile ? { registryFile: o.registryFile } : {});
    const rows = await Promise.all(
      registry.list().map(async (e: ModelEntry) => {
        let status: string;
        try {
          const r = await resolveModel(e, { registry, ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}) });
          status = r.location === 'npm' ? `npm ${e.npm?.package}@${e.npm?.version}` : 'cached';
        } catch (err) {
          status = `not present (${(err as { code?: string }).code ?? 'error'})`;
        }
        return { name: e.name, kind: e.kind, format: e.format, input: `${e.input.width}x${e.input.height}`, licence: e.licence, source: e.source, status, measured: e.measured ?? [] };
      }),
    );
    ctx.out(
      [`cache: ${o.cacheDir ?? defaultCacheDir()}`, ...rows.map((r) => `${r.name.padEnd(26)} ${r.kind.padEnd(10)} ${r.input.padEnd(8)} ${r.licence.padEnd(8)} ${r.status}`)].join('\n'),
      { cache: o.cacheDir ?? defaultCacheDir(), models: rows },
    );
  },
};

const pull: CommandSpec = {
  name: 'models pull',
  summary: 'download a model into the cache, verifying every file against its sha256',
  usage: 'faceflow models pull <name> [--mirror <folder|url>] [--registry FILE] [--cache DIR] [--force]',
  flags: { ...REGISTRY_FLAGS, mirror: { type: 'string' }, force: { type: 'boolean', default: false } },
  help: [
    '  --mirror SRC       fetch from a folder or http(s) base instead of the model\'s URL (air-gapped sites):',
    '                     SRC/<name>/<file> or SRC/<file>',
    '  --force            fetch again even if the cached files verify',
    ...REGISTRY_HELP,
  ],
  minPositionals: 1,
  maxPositionals: 1,
  async run(ctx) {
    const name = ctx.positionals[0]!;
    const o = opts(ctx);
    const mirror = str(ctx, 'mirror');
    const bar = ctx.progress(`pull ${name}`, 1);
    const r = await pullModel(name, { ...o, ...(mirror ? { mirror } : {}), force: ctx.values.force === true });
    bar.tick();
    bar.done();
    ctx.out(
      r.location === 'npm' ? `${name}: shipped in npm package ${r.entry.npm?.package}, verified in place (${r.dir})` : `${name}: ${r.downloaded.length} file(s) downloaded and verified into ${r.dir}`,
      { name, location: r.location, dir: r.dir, main: r.main, downloaded: r.downloaded },
    );
  },
};

const SUBCOMMANDS: Record<string, CommandSpec> = { list, pull };

export const MODELS_SUMMARY = 'the model registry: models list, models pull <name> [--mirror <folder|url>]';

export async function runModels(argv: string[]): Promise<number> {
  return runGroup('models', MODELS_SUMMARY, SUBCOMMANDS, argv);
}
