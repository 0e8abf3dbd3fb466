/**
 * The matcher service's configuration (environment variables, checked at start-up: every problem is reported
 * at once, naming its variable), and how it gives the gallery's model and the default threshold.
 *
 * With a projection head (FACEFLOW_HEAD, the same folder the embedder service is given): only head.json is
 * read, at start-up, and no model is loaded. The gallery's model becomes the head's embedder name (FACEFLOW_MODEL, the
 * base, + the head's name and weights hash: what the embedder stamps on every face), and the default threshold
 * the head's distance at FAR 1e-3 on its validation identities; a head trained before heads recorded one gives
 * its accuracy-optimal threshold instead (thresholdSource "head-accuracy-optimal", logged as a warning).
 * FACEFLOW_MATCH_THRESHOLD overrides either.
 */
import { clusterThreshold, decisionThreshold, FALLBACK_THRESHOLD, headEmbedderInfo, parseHeadEmbedderName, readHeadMetaSync, type HeadMeta } from '@faceflow/engine/match';
import { baseConfigFields, defineConfig, field, galleryKeyConfigFields, optional, parsers, serviceConfigFields, trackConfigFields, type ConfigOf } from '@faceflow/shared';
import { DEFAULT_GALLERY_KEY_PREFIX } from '@faceflow/shared/redis';
import { DEFAULT_MATCH_QUALITY_FLOOR } from './stage.js';

/** FACEFLOW_HEAD: the folder, and its head.json read and checked at start-up. */
function parseHead(raw: string): { dir: string; meta: HeadMeta } {
  return { dir: raw, meta: readHeadMetaSync(raw) };
}

export const matcherConfig = defineConfig({
  ...baseConfigFields,
  ...serviceConfigFields,
  ...galleryKeyConfigFields,
  groupId: field({ env: 'FACEFLOW_MATCHER_GROUP', default: 'faceflow-matcher', parse: parsers.string({ max: 255 }), doc: 'consumer group on the faces topic' }),
  model: field({ env: 'FACEFLOW_MODEL', default: 'faceapi-recognition', parse: parsers.string({ max: 128 }), doc: 'base embedding model of the gallery (its calibration gives the threshold unless FACEFLOW_HEAD is set)' }),
  head: optional({
    env: 'FACEFLOW_HEAD',
    parse: parseHead,
    doc: "folder of the projection head the embedder applies (set the same FACEFLOW_HEAD on both): only head.json is read; the gallery model becomes the head's and the default threshold its distance at FAR 1e-3",
  }),
  threshold: optional({ env: 'FACEFLOW_MATCH_THRESHOLD', parse: parsers.number({ min: 0, max: 2 }), doc: "L2 distance under which a track is named (default: the head's distance at FAR 1e-3 with FACEFLOW_HEAD, else the model calibration at FAR 1e-3)" }),
  margin: field({ env: 'FACEFLOW_MATCH_MARGIN', default: 0.03, parse: parsers.number({ min: 0, max: 2 }), doc: 'the nearest identity must beat the second by this distance' }),
  qualityFloor: field({
    env: 'FACEFLOW_MATCH_QUALITY_FLOOR',
    default: DEFAULT_MATCH_QUALITY_FLOOR,
    parse: parsers.number({ min: 0, max: 1 }),
    doc: "faces under this quality score (0..1) are tracked but never named (0 turns it off; the default is the engine's enrolment floor)",
  }),
  ...trackConfigFields,
  galleryPrefix: field({ env: 'FACEFLOW_GALLERY_PREFIX', default: DEFAULT_GALLERY_KEY_PREFIX, parse: parsers.string({ max: 200 }), doc: 'Redis key prefix of the gallery' }),
  galleryRefreshMs: field({ env: 'FACEFLOW_GALLERY_REFRESH', default: 10_000, parse: parsers.durationMs({ min: 100 }), doc: 'backstop: compare the gallery version this often' }),
  searchMethod: field({
    env: 'FACEFLOW_SEARCH_METHOD',
    default: 'auto' as const,
    parse: parsers.oneOf(['auto', 'exact', 'int8', 'hnsw', 'ivf'] as const),
    doc: 'how the gallery is searched (issue 14): exact (every embedding, float), int8 (every embedding on an int8 copy, best candidates re-scored in float), hnsw (an HNSW graph, built in the background, int8 meanwhile), ivf (k-means lists, the nearest scanned on int8, widened where the decision is in doubt; built in the background, int8 meanwhile), auto (exact below FACEFLOW_SEARCH_APPROX_ROWS embeddings, FACEFLOW_SEARCH_APPROX from there)',
  }),
  searchApprox: field({ env: 'FACEFLOW_SEARCH_APPROX', default: 'int8' as const, parse: parsers.oneOf(['int8', 'hnsw', 'ivf'] as const), doc: 'the method auto uses for a large gallery' }),
  searchApproxRows: field({ env: 'FACEFLOW_SEARCH_APPROX_ROWS', default: 50_000, parse: parsers.int({ min: 0 }), doc: 'gallery embeddings from which auto leaves the exact search' }),
  apiKeys: optional({ env: 'FACEFLOW_GALLERY_API_KEYS_SHA256', parse: parsers.list(parsers.string({ pattern: /^[0-9a-f]{64}$/ })), secret: true, doc: 'hex SHA-256 of each gallery API key (none: the API refuses every call)' }),
}, [
  {
    envs: ['FACEFLOW_HEAD', 'FACEFLOW_MODEL'],
    check: (c) =>
      c.head && c.head.meta.baseModel !== c.model
        ? `the head at ${c.head.dir} was trained on "${c.head.meta.baseModel}" embeddings, but FACEFLOW_MODEL is "${c.model}": set FACEFLOW_MODEL=${c.head.meta.baseModel}`
        : undefined,
  },
  {
    envs: ['FACEFLOW_MODEL'],
    check: (c) => {
      const named = parseHeadEmbedderName(c.model);
      return named.head
        ? `"${c.model}" is the embedder name of a projection head: set FACEFLOW_MODEL=${named.base} and FACEFLOW_HEAD to the folder of head "${named.head.name}" (its thresholds come with it)`
        : undefined;
    },
  },
]);

export type MatcherConfig = ConfigOf<typeof matcherConfig.fields>;

/**
 * Recurring strangers (issue 14): the matcher groups the unknown tracks that end into clusters and puts the
 * cluster on later unknown tracks' Matches (`track.unknownCluster`). A config of its own, read by main.ts
 * beside matcherConfig, and by `faceflow run` (its flags --unknown-cluster-retention/-threshold come from these
 * fields). The clusters live in the matcher's memory only, for the retention (ended tracks' mean embeddings,
 * never written anywhere); a restart starts them empty.
 */
export const unknownClusterConfig = defineConfig({
  retentionMs: field({
    env: 'FACEFLOW_UNKNOWN_CLUSTER_RETENTION',
    default: 86_400_000,
    parse: parsers.durationMs({ min: 0, max: 30 * 86_400_000 }),
    doc: "how long an ended unknown track's mean embedding is kept for recurring-stranger clustering (capture time; 0 turns clustering off)",
  }),
  threshold: optional({
    env: 'FACEFLOW_UNKNOWN_CLUSTER_THRESHOLD',
    parse: parsers.number({ min: 0.01, max: 2 }),
    doc: "L2 distance under which an unknown track joins a cluster (default: the model's distance at FAR 1e-4, else at FAR 1e-3)",
  }),
});

export type UnknownClusterConfig = ConfigOf<typeof unknownClusterConfig.fields>;

/**
 * The prefix of this process's cluster ids. Clusters live as long as the process that holds them, so their ids
 * are unique per instance and per start: two matchers' (or a restarted one's) "u1" are never taken for the
 * same stranger by a consumer that keeps events.
 */
export function clusterIdPrefix(now: number = Date.now(), pid: number = process.pid): string {
  return `u-${now.toString(36)}${pid.toString(36)}-`;
}

/**
 * The clustering threshold of the gallery's model (the engine's clusterThreshold: FAR 1e-4, where measured),
 * FACEFLOW_UNKNOWN_CLUSTER_THRESHOLD overriding it; `warning` to log when the model has no FAR-1e-4 distance.
 */
export function matcherClusterThreshold(
  config: { model: string; head?: { dir: string; meta: HeadMeta } | undefined },
  override?: number,
): { threshold: number; source: string; warning?: string } {
  const info = config.head ? headEmbedderInfo(config.model, config.head.meta) : { name: config.model };
  const t = clusterThreshold(info, override, { fallback: FALLBACK_THRESHOLD, fix: 'set FACEFLOW_UNKNOWN_CLUSTER_THRESHOLD' });
  return { threshold: t.value, source: t.source === 'override' ? 'FACEFLOW_UNKNOWN_CLUSTER_THRESHOLD' : t.source, ...(t.warning ? { warning: t.warning } : {}) };
}

/**
 * The gallery's model and the default threshold, from FACEFLOW_MODEL, FACEFLOW_HEAD and FACEFLOW_MATCH_THRESHOLD:
 * the engine's one decision policy (decisionThreshold) for identify, over the head's head.json or the model's
 * calibration, with the dlib fallback.
 */
export function matcherModelAndThreshold(config: { model: string; head?: { dir: string; meta: HeadMeta } | undefined; threshold?: number | undefined }): {
  model: string;
  threshold: number;
  thresholdSource: 'FACEFLOW_MATCH_THRESHOLD' | 'head-far-1e-3' | 'head-accuracy-optimal' | 'calibration-far-1e-3' | 'fallback';
} {
  const info = config.head ? headEmbedderInfo(config.model, config.head.meta) : { name: config.model };
  const chosen = decisionThreshold(info, 'identify', config.threshold, { fallback: FALLBACK_THRESHOLD, fix: 'set FACEFLOW_MATCH_THRESHOLD' });
  // identify's sources only (verify's and redact's never come from this purpose)
  const source = chosen.source === 'override' ? 'FACEFLOW_MATCH_THRESHOLD' : (chosen.source as 'head-far-1e-3' | 'head-accuracy-optimal' | 'calibration-far-1e-3' | 'fallback');
  return { model: info.name, threshold: chosen.value, thresholdSource: source };
}
