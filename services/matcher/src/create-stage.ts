/**
 * The matcher stage made from its configuration (issue 13 step 4): the service's main.ts runs it over Kafka,
 * `faceflow run` over the in-process bus; the same fields, the same defaults.
 */
import type { Metrics, StageBinding, Topics } from '@faceflow/shared';
import type { MatcherConfig } from './config.js';
import { MatcherStage, type GalleryView } from './stage.js';

export type MatcherStageConfig = Pick<MatcherConfig, 'groupId' | 'margin' | 'qualityFloor' | 'trackTimeoutMs'>;

export interface MatcherDeps {
  /** The gallery, searched in memory (a GalleryCache over the gallery store). */
  gallery: GalleryView;
  /** The gallery's embedding model (faces of another are refused) and the distance under which a track is named. */
  decision: { model: string; threshold: number };
  topics: Pick<Topics, 'faces' | 'matches'>;
  /** recurring-stranger clustering of ended unknown tracks (issue 14); absent: off */
  unknownClusters?: { threshold: number; retentionMs: number; idPrefix?: string };
  metrics?: Metrics;
}

export function createStage(config: MatcherStageConfig, deps: MatcherDeps): StageBinding<MatcherStage> {
  const stage = new MatcherStage({
    gallery: deps.gallery,
    matchesTopic: deps.topics.matches,
    model: deps.decision.model,
    threshold: deps.decision.threshold,
    margin: config.margin,
    qualityFloor: config.qualityFloor,
    tracker: { timeoutMs: config.trackTimeoutMs },
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
    ...(deps.unknownClusters && deps.unknownClusters.retentionMs > 0 ? { unknownClusters: deps.unknownClusters } : {}),
  });
  return { stage, input: deps.topics.faces, groupId: config.groupId, subscribe: { maxBatchSize: 200 } };
}
