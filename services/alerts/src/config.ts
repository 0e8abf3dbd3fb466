/**
 * The alerts service's configuration (environment variables, checked at start-up, every problem reported at
 * once naming its variable). `faceflow run` derives its flags from the same fields (issue 13 step 4).
 */
import { DEFAULT_GALLERY_KEY_PREFIX } from '@faceflow/shared/redis';
import { baseConfigFields, defineConfig, field, optional, parsers, redactionConfigFields, serviceConfigFields, trackConfigFields, type ConfigOf } from '@faceflow/shared';

const list = parsers.list(parsers.string({ max: 256 }), { min: 0 });

export const alertsConfig = defineConfig({
  ...baseConfigFields,
  ...serviceConfigFields,
  groupId: field({ env: 'FACEFLOW_ALERTS_GROUP', default: 'faceflow-alerts', parse: parsers.string({ max: 255 }), doc: 'consumer group on the matches topic' }),
  watch: field({ env: 'FACEFLOW_ALERT_WATCH', default: [] as string[], parse: list, doc: 'identities to announce, comma-separated (none: every identity)' }),
  unknown: field({ env: 'FACEFLOW_ALERT_UNKNOWN', default: true, parse: parsers.boolean(), doc: 'announce unknown faces' }),
  cameras: field({ env: 'FACEFLOW_ALERT_CAMERAS', default: [] as string[], parse: list, doc: 'cameras to announce, comma-separated (empty: all)' }),
  minConfidence: field({ env: 'FACEFLOW_ALERT_MIN_CONFIDENCE', default: 0, parse: parsers.number({ min: 0, max: 1 }), doc: 'smallest confidence to announce a named track' }),
  minFaces: field({ env: 'FACEFLOW_ALERT_MIN_FACES', default: 3, parse: parsers.int({ min: 1, max: 1000 }), doc: 'faces a track needs before it is announced' }),
  cooldownMs: field({ env: 'FACEFLOW_ALERT_COOLDOWN', default: 30_000, parse: parsers.durationMs({ max: 86_400_000 }), doc: 'no second enter of an identity on a camera within this time' }),
  ...trackConfigFields,
  idleMs: field({ env: 'FACEFLOW_ALERT_IDLE', default: 10_000, parse: parsers.durationMs({ min: 100 }), doc: 'a track whose camera sent nothing for this long (wall time) has left' }),
  cropDir: optional({ env: 'FACEFLOW_CROP_DIR', parse: parsers.string({ max: 4096 }), doc: "the embedder's crop folder (the same volume): crops no event points at are deleted from it" }),
  cropRetention: field({
    env: 'FACEFLOW_CROP_RETENTION',
    default: 'events' as 'events' | 'all',
    parse: parsers.oneOf(['events', 'all'] as const),
    doc: "events: keep only the crops identity events point at (enrolled people's thumbnails); all: keep every crop",
  }),
  ...redactionConfigFields,
  // issue 15 item 3: alerts follows the gallery's deletions (Redis pub/sub) to erase the person's tracks and thumbnails
  galleryPrefix: field({ env: 'FACEFLOW_GALLERY_PREFIX', default: DEFAULT_GALLERY_KEY_PREFIX, parse: parsers.string({ max: 200 }), doc: "Redis key prefix of the gallery whose deletions erase a person's thumbnails and tracks" }),
});

export type AlertsConfig = ConfigOf<typeof alertsConfig.fields>;
