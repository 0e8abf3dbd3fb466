/**
 * faceflow clusters list | show ID | name ID NAME: a matcher's recurring-stranger clusters (issue 14 item 3),
 * over its HTTP API (the matcher's clusters-api.ts; shared's clustersClient makes the one call). `name`
 * enrols the cluster as identity NAME (its kept member embeddings) and removes it from the clusters.
 */
import { clustersClient, readApiKeyFile, type ClusterSummary } from '@faceflow/shared/ops';
import { runGroup, str, UsageError, type CommandContext, type CommandSpec } from '../cli.js';

const FLAGS = { matcher: { type: 'string' as const }, 'api-key-file': { type: 'string' as const }, append: { type: 'boolean' as const, default: false } };
const HELP = [
  '  --matcher URL          the matcher service (its ops port, FACEFLOW_HTTP_PORT); default FACEFLOW_MATCHER_URL',
  '  --api-key-file FILE    a gallery API key, one line (never printed); default FACEFLOW_GALLERY_API_KEY_FILE',
];

function client(ctx: CommandContext): ReturnType<typeof clustersClient> {
  const url = str(ctx, 'matcher') ?? process.env.FACEFLOW_MATCHER_URL;
  if (!url) throw new UsageError('give the matcher as --matcher URL (or set FACEFLOW_MATCHER_URL)');
  if (!/^https?:$/.test(URL.canParse(url) ? new URL(url).protocol : '')) throw new UsageError(`--matcher must be an http:// or https:// URL, got "${url}"`);
  const keyFile = str(ctx, 'api-key-file') ?? process.env.FACEFLOW_GALLERY_API_KEY_FILE;
  if (!keyFile) throw new UsageError('give a gallery API key as --api-key-file FILE (or set FACEFLOW_GALLERY_API_KEY_FILE)');
  return clustersClient(url, readApiKeyFile(keyFile));
}

const when = (ms: number): string => new Date(ms).toISOString();
const line = (c: ClusterSummary): string =>
  `${c.id}  ${c.members} member(s)  ${when(c.firstSeen)} .. ${when(c.lastSeen)}  cameras ${Object.entries(c.cameras).map(([k, n]) => `${k || '-'}:${n}`).join(' ')}`;

const spec = (name: string, summary: string, usage: string, n: number, run: CommandSpec['run'], extra: string[] = []): CommandSpec => ({
  name: `clusters ${name}`, summary, usage: `faceflow clusters ${usage} [--matcher URL] [--api-key-file FILE]`, flags: FLAGS, help: [...extra, ...HELP], minPositionals: n, maxPositionals: n, run,
});

const SUBCOMMANDS: Record<string, CommandSpec> = {
  list: spec('list', "the matcher's recurring-stranger clusters, oldest first", 'list', 0, async (ctx) => {
    const r = await client(ctx).list();
    const human = !r.clustering ? 'this matcher does not cluster unknown faces (FACEFLOW_UNKNOWN_CLUSTER_RETENTION=0)' : r.clusters.length === 0 ? 'no clusters yet' : r.clusters.map(line).join('\n');
    ctx.out(human, r);
  }),
  show: spec('show', 'one cluster', 'show ID', 1, async (ctx) => {
    const c = await client(ctx).show(ctx.positionals[0]!);
    ctx.out(`${line(c)}${c.mergedFrom.length > 0 ? `\nmerged from ${c.mergedFrom.join(', ')}` : ''}`, c);
  }),
  name: spec('name', 'enrol a cluster as identity NAME in the gallery, and remove it from the clusters', 'name ID NAME [--append]', 2, async (ctx) => {
    const [id, name] = ctx.positionals as [string, string];
    const r = await client(ctx).enrol(id, name, ctx.values.append === true);
    ctx.out(`enrolled cluster ${r.cluster} as "${r.identity}" (${r.embeddings} embeddings, gallery version ${r.version})`, r);
  }, ['  --append               add to an identity NAME that is already enrolled (else that is refused)']),
};

export const CLUSTERS_SUMMARY = "a matcher's recurring-stranger clusters: clusters list | show ID | name ID NAME";
export const runClusters = (argv: string[]): Promise<number> => runGroup('clusters', CLUSTERS_SUMMARY, SUBCOMMANDS, argv);
