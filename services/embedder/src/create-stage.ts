/**
 * The embedder stage made from its configuration (issue 13 step 4): the service's main.ts runs it over Kafka,
 * `faceflow run` over the in-process bus; the same fields, the same defaults.
 */
import type { CropStore, Logger, Metrics, StageBinding, Topics } from '@faceflow/shared';
import type { EmbedderConfig } from './config.js';
import { EmbedderStage, type FaceRunner } from './stage.js';

export type EmbedderStageConfig = Pick<
  EmbedderConfig,
  'groupId' | 'partitions' | 'maxBatch' | 'maxWaitMs' | 'fullDetectionEveryMs' | 'reembedEveryMs' | 'lateFrameMs' | 'mask' | 'redactExemptCameras'
>;

export interface EmbedderDeps {
  /** The engine (an EnginePool in both modes). */
  runner: FaceRunner;
  /** Its worker threads: a batch per worker in flight, so a slow full detection on one does not leave another idle. */
  workers: number;
  topics: Pick<Topics, 'frames' | 'faces'>;
  crops?: CropStore;
  metrics?: Metrics;
  logger?: Logger;
}

export function createStage(config: EmbedderStageConfig, deps: EmbedderDeps): StageBinding<EmbedderStage> {
  const stage = new EmbedderStage({
    runner: deps.runner,
    facesTopic: deps.topics.faces,
    maxBatch: config.maxBatch,
    maxWaitMs: config.maxWaitMs,
    maxFacesPerFrame: 32,
    fullDetectionEveryMs: config.fullDetectionEveryMs,
    reembedEveryMs: config.reembedEveryMs,
    lateFrameMs: config.lateFrameMs,
    maxInFlight: deps.workers,
    mask: config.mask,
    redactExemptCameras: config.redactExemptCameras,
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
    ...(deps.logger ? { logger: deps.logger } : {}),
    ...(deps.crops ? { crops: deps.crops } : {}),
  });
  // several partitions at once, so that frames of several cameras meet in one engine batch
  return { stage, input: deps.topics.frames, groupId: config.groupId, subscribe: { maxBatchSize: config.maxBatch, concurrency: config.partitions } };
}
