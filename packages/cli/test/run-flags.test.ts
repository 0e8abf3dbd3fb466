/**
 * `faceflow run` and the services read one definition of each setting (issue 13 step 4: today's run.ts
 * restated every default, so the two modes could drift): run's flags, their help and their defaults come from
 * the services' config fields.
 */
import { alertsConfig } from '@faceflow/alerts';
import { embedderConfig } from '@faceflow/embedder';
import { ingestConfig } from '@faceflow/ingest';
import { matcherConfig, unknownClusterConfig } from '@faceflow/matcher';
import { kafkaConfigFields, redisConfigFields } from '@faceflow/shared';
import { describe, expect, it } from 'vitest';
import { helpText, UsageError } from '../src/cli.js';
import { RUN_CONFIG_FLAGS, runConfigs, runPipeline } from '../src/commands/run.js';
import { flagName, shownDefault } from '../src/config-flags.js';

/**
 * Every other field of the four configs, and why it is not a `faceflow run` flag (a field a service gains
 * must be put in run.ts's RUN_CONFIG_FLAGS or here; issue 13: the list lives beside the test that reads it). Fields not flags keep their
 * defaults in `faceflow run` (they still reach createStage through the loaded configs).
 */
/** How a service reaches Kafka and Redis (brokers, URL, TLS, SASL and ACL logins): run has neither. */
const TRANSPORT = Object.fromEntries(Object.keys({ ...kafkaConfigFields, ...redisConfigFields }).map((k) => [k, 'service transport']));

const NOT_RUN_FLAGS: Readonly<Record<'ingest' | 'embedder' | 'matcher' | 'alerts' | 'clusters', Readonly<Record<string, string>>>> = {
  ingest: {
    ...TRANSPORT, topicPrefix: 'one process, no shared topics', logLevel: 'run logs warnings only',
    httpPort: 'run: --metrics-port', httpHost: 'run serves on 127.0.0.1', partitions: 'service transport', graceMs: 'run: --grace, which drains a whole pipeline',
    sources: 'run: --source, one camera', apiKeys: 'the push API is the service\'s', maxBytes: 'the push API is the service\'s', maxPixels: 'the push API is the service\'s',
    pushTimeoutMs: 'the push API is the service\'s', maxInFlight: 'the push API is the service\'s', sourceRetryMaxMs: 'run fails on a source error, it does not retry',
    maxWidth: 'run decodes frames at their size', maxQueue: 'default kept (live sources)', maxAgeMs: 'default kept (live sources)',
  },
  embedder: {
    ...TRANSPORT, topicPrefix: 'one process', logLevel: 'run logs warnings only', httpPort: 'run: --metrics-port',
    httpHost: 'run serves on 127.0.0.1', partitions: 'service transport', graceMs: 'run: --grace', groupId: 'service transport',
    workers: 'the engine flags: --workers', backend: 'the engine flags: --backend', minFaceSize: 'the engine flags: --min-face', flip: 'the engine flags: --no-flip',
    detector: 'the engine flags: --detector', head: 'the engine flags: --head', cropDir: 'run: --crops', mask: 'default kept', redactExemptCameras: 'run: --no-redact, for its one camera',
    galleryKey: 'run: --gallery-key-file (the gallery file)', galleryPrefix: 'run reads a gallery file, not Redis', apiKeys: 'enrolment by photo is the service\'s HTTP API',
  },
  matcher: {
    ...TRANSPORT, topicPrefix: 'one process', logLevel: 'run logs warnings only', httpPort: 'run: --metrics-port',
    httpHost: 'run serves on 127.0.0.1', partitions: 'service transport', graceMs: 'run: --grace', groupId: 'service transport',
    galleryKey: 'run: --gallery-key-file (the gallery file)', model: 'run: the engine flags (--embedder, --head)',
    head: 'the engine flags: --head', threshold: 'run: --threshold (the decision policy)', galleryPrefix: 'run reads a gallery file, not Redis',
    galleryRefreshMs: 'run reads a gallery file, not Redis', searchMethod: 'default kept', searchApprox: 'default kept', searchApproxRows: 'default kept',
    apiKeys: 'the gallery API is the service\'s',
  },
  alerts: {
    ...TRANSPORT, topicPrefix: 'one process', logLevel: 'run logs warnings only', httpPort: 'run: --metrics-port',
    httpHost: 'run serves on 127.0.0.1', partitions: 'service transport', graceMs: 'run: --grace', groupId: 'service transport',
    cameras: 'run has one camera: --camera', idleMs: 'run: from the source (a file ends its tracks itself)', cropDir: 'run: --crops',
    cropRetention: 'run: --keep-all-crops', redactExemptCameras: 'run: --no-redact, for its one camera',
    galleryPrefix: 'run reads a gallery file and has no Redis change notifications to follow',
  },
  // the matcher's recurring-stranger settings (issue 14): both are run flags
  clusters: {},
};

const specs = { ingest: ingestConfig, embedder: embedderConfig, matcher: matcherConfig, alerts: alertsConfig, clusters: unknownClusterConfig } as const;

describe('faceflow run and the services share their settings', () => {
  it('every_run_flag_of_a_service_setting_shows_that_fields_default_and_variable_in_help', () => {
    const help = helpText(runPipeline).split('\n');
    expect(RUN_CONFIG_FLAGS.length).toBeGreaterThanOrEqual(13);
    for (const f of RUN_CONFIG_FLAGS) {
      expect(runPipeline.flags[f.flag], f.flag).toBeDefined();
      const at = help.findIndex((l) => l.startsWith(`  --${f.flag} `) || l === `  --${f.flag}`);
      expect(at, f.flag).toBeGreaterThanOrEqual(0);
      // the entry with its continuation lines
      let entry = help[at]!;
      for (let i = at + 1; i < help.length && /^ {3,}/.test(help[i]!); i++) entry += ` ${help[i]!.trim()}`;
      expect(entry).toContain(f.env);
      if (!f.negated && f.field.default !== undefined) expect(entry, f.flag).toContain(`(default ${shownDefault(f)}`);
      // an optional setting without a default: its doc says what applies, and no "default undefined" shows
      if (f.field.default === undefined) expect(entry, f.flag).not.toMatch(/default undefined/);
    }
  });

  it('the_flag_of_a_setting_is_its_variable_without_the_service_prefix', () => {
    expect(flagName('FACEFLOW_TRACK_TIMEOUT')).toBe('track-timeout');
    expect(flagName('FACEFLOW_TRACK_TIMEOUT_MS')).toBe('track-timeout-ms');
    expect(flagName('FACEFLOW_ALERT_MIN_FACES')).toBe('min-faces');
    expect(flagName('FACEFLOW_EMBEDDER_MAX_BATCH')).toBe('max-batch');
    expect(RUN_CONFIG_FLAGS.find((f) => f.env === 'FACEFLOW_ALERT_UNKNOWN')?.flag).toBe('no-unknown');
  });

  it('every_service_setting_is_a_run_flag_or_listed_as_not_one_with_why', () => {
    const flagged = new Set(RUN_CONFIG_FLAGS.map((f) => f.env));
    const unaccounted: string[] = [];
    for (const [service, spec] of Object.entries(specs)) {
      const notFlags = NOT_RUN_FLAGS[service as keyof typeof specs];
      for (const [key, field] of Object.entries(spec.fields)) {
        if (flagged.has(field.env) === (key in notFlags)) unaccounted.push(`${service}.${key} (${field.env})`);
      }
      for (const key of Object.keys(notFlags)) if (!(key in spec.fields)) unaccounted.push(`${service}.${key}: listed, but no such field`);
    }
    expect(unaccounted).toEqual([]);
  });

  it('with_no_flag_run_runs_with_the_services_defaults_and_a_flag_changes_both_services_that_read_it', () => {
    const none = runConfigs({});
    for (const [service, spec] of Object.entries(specs)) {
      expect(none[service as keyof typeof specs], service).toEqual(spec.load({}));
    }
    const some = runConfigs({ 'track-timeout': '3s', 'min-faces': '5', 'no-unknown': true, watch: 'ann, bob', 'max-batch': '4' });
    expect(some.matcher.trackTimeoutMs).toBe(3000);
    expect(some.alerts.trackTimeoutMs).toBe(3000);
    expect(some.alerts.minFaces).toBe(5);
    expect(some.alerts.unknown).toBe(false);
    expect(some.alerts.watch).toEqual(['ann', 'bob']);
    expect(some.embedder.maxBatch).toBe(4);
  });

  it('a_changed_service_default_changes_what_run_runs_with', () => {
    const field = alertsConfig.fields.minFaces;
    const before = field.default;
    try {
      field.default = 7;
      expect(runConfigs({}).alerts.minFaces).toBe(7);
    } finally {
      field.default = before;
    }
    expect(runConfigs({}).alerts.minFaces).toBe(before);
  });

  it('a_bad_flag_value_is_a_usage_error_naming_the_flag_and_the_fields_rule', () => {
    expect(() => runConfigs({ 'track-timeout': '5' })).toThrow(UsageError);
    expect(() => runConfigs({ 'track-timeout': '5' })).toThrow(/^--track-timeout must be >= 100ms \(got "5"\)$/);
    expect(() => runConfigs({ 'max-batch': '1.5' })).toThrow(/--max-batch must be an integer/);
    expect(() => runConfigs({ margin: '-1' })).toThrow(/--margin must be >= 0/);
  });
});
