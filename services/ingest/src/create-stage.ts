/**
 * The ingest stage made from its configuration (issue 13 step 4): the service's main.ts runs it over Kafka,
 * `faceflow run` over the in-process bus; the same fields, the same defaults. Ingest is the intake of the
 * pipeline, not a consumer: it has no input topic, and publishes the frames its sources give (`pump`) or
 * that are pushed to it (`push`).
 */
import type { Logger, Metrics, OutgoingMessage, Topics } from '@faceflow/shared';
import type { IngestConfig } from './config.js';
import { IngestStage } from './stage.js';

export type IngestStageConfig = Pick<IngestConfig, 'maxQueue' | 'maxAgeMs' | 'maxInFlight' | 'pushTimeoutMs'>;

export interface IngestDeps {
  /** Where frames go: the bus's publish. */
  publish: (topic: string, messages: OutgoingMessage[]) => Promise<void>;
  /** Whether the bus can take frames now (the broker check); false refuses pushes at once. */
  available?: () => boolean;
  topics: Pick<Topics, 'frames'>;
  metrics?: Metrics;
  logger?: Logger;
  now?: () => number;
}

export function createStage(config: IngestStageConfig, deps: IngestDeps): IngestStage {
  return new IngestStage({
    publish: deps.publish,
    framesTopic: deps.topics.frames,
    maxQueue: config.maxQueue,
    maxAgeMs: config.maxAgeMs,
    maxInFlight: config.maxInFlight,
    pushTimeoutMs: config.pushTimeoutMs,
    ...(deps.available ? { available: deps.available } : {}),
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
    ...(deps.logger ? { logger: deps.logger } : {}),
    ...(deps.now ? { now: deps.now } : {}),
  });
}
