/**
 * The alerts stage made from its configuration (issue 13 step 4): the service's main.ts runs it over Kafka,
 * `faceflow run` over the in-process bus; the same fields, the same defaults.
 */
import type { CropStore, Logger, Metrics, StageBinding, Topics } from '@faceflow/shared';
import type { AlertsConfig } from './config.js';
import { AlertsStage } from './stage.js';

export type AlertsStageConfig = Pick<
  AlertsConfig,
  'groupId' | 'watch' | 'unknown' | 'cameras' | 'minConfidence' | 'minFaces' | 'cooldownMs' | 'trackTimeoutMs' | 'idleMs' | 'redactExemptCameras' | 'cropRetention'
>;

export interface AlertsDeps {
  topics: Pick<Topics, 'matches' | 'identityEvents'>;
  /** The embedder's crop store (the same folder): crops no event points at are deleted from it. */
  crops?: CropStore;
  /**
   * Consecutive matches a track's identity must keep before it is announced (default the rules' 3). Not a
   * setting: `faceflow run` on one image has one face per track, confirmed by that face or never.
   */
  minStable?: number;
  metrics?: Metrics;
  logger?: Logger;
  now?: () => number;
}

/** How often the tracks of silent cameras are looked for (AlertsStage.sweep). */
const SWEEP_EVERY_MS = 1000;

export function createStage(config: AlertsStageConfig, deps: AlertsDeps): StageBinding<AlertsStage> {
  const stage = new AlertsStage({
    eventsTopic: deps.topics.identityEvents,
    rules: {
      watch: [...config.watch],
      unknown: config.unknown,
      cameras: [...config.cameras],
      minConfidence: config.minConfidence,
      minFaces: config.minFaces,
      cooldownMs: config.cooldownMs,
      ...(deps.minStable !== undefined ? { minStable: deps.minStable } : {}),
    },
    trackTimeoutMs: config.trackTimeoutMs,
    idleMs: config.idleMs,
    redactExemptCameras: config.redactExemptCameras,
    ...(deps.crops ? { crops: deps.crops } : {}),
    keepAllCrops: config.cropRetention === 'all',
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
    ...(deps.logger ? { logger: deps.logger } : {}),
    ...(deps.now ? { now: deps.now } : {}),
  });
  return {
    stage,
    input: deps.topics.matches,
    groupId: config.groupId,
    subscribe: { maxBatchSize: 200 },
    sweep: { everyMs: SWEEP_EVERY_MS, run: () => stage.sweep(), pendingMetric: 'alerts_pending_events', what: 'identity events' },
    flush: () => stage.flush(),
    settled: () => stage.settled(),
  };
}
