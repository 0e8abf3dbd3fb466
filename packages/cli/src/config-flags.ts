/**
 * Command-line flags made from the services' config fields (issue 13 step 4: `faceflow run` and the services
 * read one definition of each setting, so the two modes cannot drift). A field's flag is its environment
 * variable without FACEFLOW_ and the service's own prefix, in kebab case: FACEFLOW_TRACK_TIMEOUT <->
 * --track-timeout, FACEFLOW_ALERT_MIN_FACES <-> --min-faces, FACEFLOW_EMBEDDER_MAX_BATCH <-> --max-batch. A
 * boolean that is on by default gets a --no- flag (FACEFLOW_ALERT_UNKNOWN <-> --no-unknown). The value goes
 * through the field's own parser, range and default; help shows its doc, default and variable.
 */
import { isFaceflowError, type ConfigField, type ConfigProblem } from '@faceflow/shared';
import { UsageError, type Flags } from './cli.js';

/** The services' prefixes of their own variables (FACEFLOW_<prefix>_...). */
const SERVICE_PREFIX = /^FACEFLOW_(?:INGEST_|EMBEDDER_|MATCH_|ALERT_)?/;

export interface ConfigFlag {
  flag: string;
  env: string;
  field: ConfigField<unknown>;
  /** A boolean on by default: the flag turns it off. */
  negated: boolean;
}

export function flagName(env: string): string {
  return env.replace(SERVICE_PREFIX, '').toLowerCase().replace(/_/g, '-');
}

const isBooleanField = (f: ConfigField<unknown>): boolean => typeof f.default === 'boolean';

/** The flags of `fields` (one per environment variable: a field two services share gives one flag). */
export function configFlags(fields: readonly ConfigField<unknown>[]): ConfigFlag[] {
  const byEnv = new Map<string, ConfigFlag>();
  for (const field of fields) {
    if (byEnv.has(field.env)) continue;
    const negated = isBooleanField(field) && field.default === true;
    byEnv.set(field.env, { flag: `${negated ? 'no-' : ''}${flagName(field.env)}`, env: field.env, field, negated });
  }
  return [...byEnv.values()];
}

/** parseArgs options; no default, so that a flag given can be told from one left out. */
export function flagOptions(flags: readonly ConfigFlag[]): Flags {
  return Object.fromEntries(flags.map((f) => [f.flag, { type: isBooleanField(f.field) ? ('boolean' as const) : ('string' as const) }]));
}

/** How a default reads in help. */
export function shownDefault(f: ConfigFlag): string {
  const d = f.field.default;
  if (f.negated) return 'off';
  if (Array.isArray(d)) return d.length ? d.join(',') : 'none';
  if (typeof d === 'boolean') return d ? 'on' : 'off';
  return String(d);
}

function metavar(f: ConfigFlag): string {
  const d = f.field.default;
  if (typeof d === 'boolean') return '';
  if (Array.isArray(d)) return ' A,B';
  return /_(TIMEOUT|COOLDOWN|WAIT|EVERY|AGE|IDLE|RETENTION)$|_MS$/.test(f.env) ? ' MS' : ' N';
}

const WIDTH = 112;
const INDENT = 21;

/** Help lines: `--flag N  doc (default D[; note]; env VAR)`, wrapped, continuation lines indented. */
export function flagHelp(flags: readonly ConfigFlag[], notes: Readonly<Record<string, string>> = {}): string[] {
  const lines: string[] = [];
  for (const f of flags) {
    const head = `  --${f.flag}${metavar(f)}`;
    const note = notes[f.flag] ? `; ${notes[f.flag]}` : '';
    // an optional field without a default says in its doc what applies when it is not given
    const given = f.field.default === undefined ? (note ? `${note.slice(2)}; ` : '') : `default ${shownDefault(f)}${note}; `;
    const doc = f.negated ? `${f.field.doc}: on unless this flag is given${note} (env ${f.env}=false)` : `${f.field.doc} (${given}env ${f.env})`;
    let line = head.length < INDENT - 1 ? head.padEnd(INDENT) : `${head} `;
    for (const word of doc.split(' ')) {
      if (line.length + word.length > WIDTH && line.trim().length > head.trim().length) {
        lines.push(line.trimEnd());
        line = ' '.repeat(INDENT);
      }
      line += `${word} `;
    }
    lines.push(line.trimEnd());
  }
  return lines;
}

/** The environment the flags given stand for (only those given: the rest keeps the fields' defaults). */
export function flagEnv(flags: readonly ConfigFlag[], values: Readonly<Record<string, unknown>>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const f of flags) {
    const v = values[f.flag];
    if (v === undefined) continue;
    if (isBooleanField(f.field)) {
      if (v === true) env[f.env] = f.negated ? 'false' : 'true';
    } else if (typeof v === 'string') {
      if (v === '') throw new UsageError(`--${f.flag} needs a value`);
      env[f.env] = v;
    }
  }
  return env;
}

/** Runs `load`, turning a configuration error into a usage error that names the flag instead of the variable. */
export function loadWithFlags<T>(flags: readonly ConfigFlag[], load: () => T): T {
  try {
    return load();
  } catch (e) {
    const problems = isFaceflowError(e) && e.code === 'INVALID_CONFIG' ? ((e.details as { problems?: ConfigProblem[] } | undefined)?.problems ?? []) : [];
    if (!problems.length) throw e;
    const byEnv = new Map(flags.map((f) => [f.env, f.flag]));
    throw new UsageError(problems.map((p) => `${p.env.split(', ').map((env) => (byEnv.has(env) ? `--${byEnv.get(env)}` : env)).join(', ')} ${p.problem}`).join('; '));
  }
}
