/**
 * The embedder service's configuration (environment variables, checked at start-up, every problem reported
 * at once naming its variable). `faceflow run` derives its flags from the same fields (issue 13 step 4).
 */
import os from 'node:os';
import { baseConfigFields, defineConfig, field, galleryKeyConfigFields, optional, parsers, redactionConfigFields, serviceConfigFields, type ConfigOf } from '@faceflow/shared';
import { DEFAULT_GALLERY_KEY_PREFIX } from '@faceflow/shared/redis';
import { EMBEDDER_MASK_METHODS, type EmbedderMaskMethod } from './face-mask.js';
import { DEFAULT_FULL_DETECTION_EVERY_MS, DEFAULT_LATE_FRAME_MS, DEFAULT_REEMBED_EVERY_MS, LATE_REEMBED_FACTOR } from './scheduler.js';

export const embedderConfig = defineConfig({
  ...baseConfigFields,
  ...serviceConfigFields,
  groupId: field({ env: 'FACEFLOW_EMBEDDER_GROUP', default: 'faceflow-embedder', parse: parsers.string({ max: 255 }), doc: 'consumer group on the frames topic' }),
  workers: field({ env: 'FACEFLOW_EMBEDDER_WORKERS', default: os.availableParallelism(), parse: parsers.int({ min: 1, max: 256 }), doc: 'engine worker threads' }),
  maxBatch: field({ env: 'FACEFLOW_EMBEDDER_MAX_BATCH', default: 8, parse: parsers.int({ min: 1, max: 256 }), doc: 'frames per engine batch' }),
  maxWaitMs: field({ env: 'FACEFLOW_EMBEDDER_MAX_WAIT', default: 20, parse: parsers.durationMs({ max: 10_000 }), doc: 'how long a batch waits to fill' }),
  backend: optional({ env: 'FACEFLOW_BACKEND', parse: parsers.oneOf(['auto', 'tensorflow', 'wasm', 'cpu'] as const), doc: 'TF.js backend' }),
  cropDir: optional({ env: 'FACEFLOW_CROP_DIR', parse: parsers.string({ max: 4096 }), doc: 'keep a small crop of every face under this folder' }),
  mask: field({
    env: 'FACEFLOW_EMBEDDER_MASK',
    default: 'landmarks' as EmbedderMaskMethod,
    parse: parsers.oneOf(EMBEDDER_MASK_METHODS),
    doc: 'face outline in each Face message: landmarks (from the 68 landmarks, no model) | none; the face mesh is not wired in the pool',
  }),
  fullDetectionEveryMs: field({
    env: 'FACEFLOW_FULL_DETECTION_EVERY',
    default: DEFAULT_FULL_DETECTION_EVERY_MS,
    parse: parsers.durationMs({ max: 600_000 }),
    doc: 'capture time between full detections of a camera; in between, faces are looked for near the last ones (0: every frame)',
  }),
  reembedEveryMs: field({
    env: 'FACEFLOW_REEMBED_EVERY',
    default: DEFAULT_REEMBED_EVERY_MS,
    parse: parsers.durationMs({ max: 600_000 }),
    doc: 'a face followed from the previous frame is embedded and published again only after this much capture time (0: every frame)',
  }),
  lateFrameMs: field({
    env: 'FACEFLOW_LATE_FRAME',
    default: DEFAULT_LATE_FRAME_MS,
    parse: parsers.durationMs({ max: 600_000 }),
    doc: `a live frame (not one of a file or folder) that reaches the engine this long after ingest published it (the engine is behind) re-embeds the faces it follows ${LATE_REEMBED_FACTOR}x less often, shedding repeat work before new faces wait (0: never)`,
  }),
  minFaceSize: field({ env: 'FACEFLOW_MIN_FACE', default: 40, parse: parsers.int({ min: 8, max: 10_000 }), doc: 'smallest face side to find in a full detection, in pixels (smaller costs more tiles)' }),
  flip: field({ env: 'FACEFLOW_EMBED_FLIP', default: true, parse: parsers.boolean(), doc: 'average each embedding with the mirrored face (costs a second forward pass)' }),
  detector: optional({
    env: 'FACEFLOW_DETECTOR',
    parse: parsers.string({ max: 200 }),
    doc: 'face detector: yunet (the default; ONNX Runtime, installed by faceflow models pull yunet-2023mar) | blazeface (TF.js) | a registry name (issue 11)',
  }),
  head: optional({ env: 'FACEFLOW_HEAD', parse: parsers.string({ max: 4096 }), doc: 'folder of a projection head trained by faceflow train, applied to every embedding' }),
  ...redactionConfigFields,
  // enrolment by image (PUT /v1/identities/<id>): the same variables as the matcher's gallery API
  ...galleryKeyConfigFields,
  galleryPrefix: field({ env: 'FACEFLOW_GALLERY_PREFIX', default: DEFAULT_GALLERY_KEY_PREFIX, parse: parsers.string({ max: 200 }), doc: 'Redis key prefix of the gallery enrolment writes to' }),
  apiKeys: optional({
    env: 'FACEFLOW_GALLERY_API_KEYS_SHA256',
    parse: parsers.list(parsers.string({ pattern: /^[0-9a-f]{64}$/ })),
    secret: true,
    doc: 'hex SHA-256 of each gallery API key, for enrolment by image (none: no Redis is opened and the route refuses every call)',
  }),
});

export type EmbedderConfig = ConfigOf<typeof embedderConfig.fields>;
