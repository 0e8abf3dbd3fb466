/**
 * Command-line plumbing: flag parsing with per-command help, --json output, one-line errors and exit
 * codes (0 ok, 1 the command failed, 2 usage error), and a progress bar on stderr.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { FaceflowError, isFaceflowError, parsers } from '@faceflow/shared';

export type Flags = NonNullable<ParseArgsConfig['options']>;

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  flags: Flags;
  /** lines of help after the usage line, one per flag or note */
  help: string[];
  minPositionals?: number;
  maxPositionals?: number;
  run(ctx: CommandContext): Promise<void>;
}

export interface CommandContext {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  json: boolean;
  out: (human: string, json?: unknown) => void;
  progress: (label: string, total: number) => Progress;
}

export const COMMON_FLAGS: Flags = {
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  progress: { type: 'boolean', default: false },
  'no-progress': { type: 'boolean', default: false },
};

export const COMMON_HELP = [
  '  --json             machine-readable JSON on stdout',
  '  --progress         a progress bar on stderr even when stderr is not a terminal (default: only on one)',
  '  --no-progress      no progress bar on stderr',
  '  -h, --help         this help',
];

/**
 * `lines` without the help entries of `flags`: each entry's flag line and its continuation lines (indented
 * further), so a command that drops a shared flag leaves no orphaned description behind (issue 12).
 */
export function dropHelp(lines: readonly string[], ...flags: string[]): string[] {
  const out: string[] = [];
  let dropping = false;
  for (const line of lines) {
    const entry = /^ {2}(?:-\w, )?--([\w-]+)/.exec(line);
    if (entry) dropping = flags.includes(entry[1]!);
    else if (!/^ {3,}/.test(line)) dropping = false;
    if (!dropping) out.push(line);
  }
  return out;
}

const NEGATIVE_NUMBER = /^-(\d|\.\d)/;

/**
 * parseArgs refuses `--threshold -1` as "ambiguous" (the value starts with a dash): a negative number after
 * a flag that takes a value is that value, joined as `--threshold=-1`, so the flag's own range check names
 * the problem (issue 12).
 */
export function joinNegativeValues(argv: readonly string[], flags: Flags): string[] {
  const takesValue = (tok: string): boolean => {
    const long = /^--([\w-]+)$/.exec(tok);
    if (long) return flags[long[1]!]?.type === 'string';
    const short = /^-(\w)$/.exec(tok);
    return short !== null && Object.values(flags).some((f) => f.short === short[1] && f.type === 'string');
  };
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const tok = argv[i]!;
    if (tok === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const next = argv[i + 1];
    if (next !== undefined && NEGATIVE_NUMBER.test(next) && takesValue(tok)) {
      out.push(`${tok}=${next}`);
      i++;
    } else out.push(tok);
  }
  return out;
}

export class UsageError extends Error {}

export interface Progress {
  tick(n?: number): void;
  done(): void;
}

function makeProgress(enabled: boolean, label: string, total: number): Progress {
  let n = 0;
  let last = 0;
  const draw = (final: boolean): void => {
    const width = 30;
    const frac = total > 0 ? Math.min(1, n / total) : 1;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    process.stderr.write(`\r${label} [${bar}] ${n}/${total}${final ? '\n' : ''}`);
  };
  return {
    tick(k = 1) {
      n += k;
      if (!enabled) return;
      const now = Date.now();
      if (now - last > 100 || n >= total) {
        last = now;
        draw(false);
      }
    },
    done() {
      if (enabled) draw(true);
    },
  };
}

export function helpText(spec: CommandSpec): string {
  return [`faceflow ${spec.name}: ${spec.summary}`, '', `usage: ${spec.usage}`, '', ...spec.help, ...COMMON_HELP].join('\n');
}

export async function runCommand(spec: CommandSpec, argv: string[]): Promise<number> {
  let parsed: { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] };
  try {
    const options = { ...COMMON_FLAGS, ...spec.flags };
    parsed = parseArgs({ args: joinNegativeValues(argv, options), options, allowPositionals: true, strict: true }) as typeof parsed;
  } catch (e) {
    process.stderr.write(`faceflow ${spec.name}: ${(e as Error).message.split('\n')[0]} (see faceflow ${spec.name} --help)\n`);
    return 2;
  }
  if (parsed.values.help) {
    process.stdout.write(`${helpText(spec)}\n`);
    return 0;
  }
  const n = parsed.positionals.length;
  if ((spec.minPositionals !== undefined && n < spec.minPositionals) || (spec.maxPositionals !== undefined && n > spec.maxPositionals)) {
    process.stderr.write(`faceflow ${spec.name}: wrong number of arguments (got ${n}); usage: ${spec.usage}\n`);
    return 2;
  }
  const json = parsed.values.json === true;
  const progressEnabled = !parsed.values['no-progress'] && (parsed.values.progress === true || process.stderr.isTTY === true);
  const ctx: CommandContext = {
    values: parsed.values,
    positionals: parsed.positionals,
    json,
    out: (human, data) => {
      if (json) process.stdout.write(`${JSON.stringify(data ?? human)}\n`);
      else process.stdout.write(`${human}\n`);
    },
    progress: (label, total) => makeProgress(progressEnabled, label, total),
  };
  try {
    await spec.run(ctx);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`faceflow ${spec.name}: ${e.message} (see faceflow ${spec.name} --help)\n`);
      return 2;
    }
    const err = isFaceflowError(e) ? e : new FaceflowError('INTERNAL', (e as Error)?.message ?? String(e), { cause: e });
    process.stderr.write(`faceflow ${spec.name}: ${err.code}: ${err.message}\n`);
    if (json) process.stdout.write(`${JSON.stringify({ error: err.toJSON() })}\n`);
    if (process.env.FACEFLOW_DEBUG && err.code === 'INTERNAL') process.stderr.write(`${(e as Error)?.stack ?? ''}\n`);
    return 1;
  }
}

/**
 * A command with subcommands (`faceflow eval lfw`, `faceflow models list`): `--help` lists the subcommands
 * (exit 0); no subcommand or an unknown one is a usage error (exit 2).
 */
export async function runGroup(name: string, summary: string, subcommands: Record<string, CommandSpec>, argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const list = Object.entries(subcommands).map(([n, s]) => `  ${n.padEnd(10)} ${s.summary}`);
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(`${[`faceflow ${name}: ${summary}`, '', `usage: faceflow ${name} <subcommand> [options]   (faceflow ${name} <subcommand> --help for its options)`, '', ...list].join('\n')}\n`);
    return 0;
  }
  const spec = sub !== undefined ? subcommands[sub] : undefined;
  if (!spec) {
    const what = sub === undefined ? 'expected a subcommand' : `unknown subcommand "${sub}"`;
    process.stderr.write(`faceflow ${name}: ${what}: ${Object.keys(subcommands).join(', ')} (see faceflow ${name} --help)\n`);
    return 2;
  }
  return runCommand(spec, rest);
}

/** Flag readers that fail with a usage error naming the flag. */
export function str(ctx: CommandContext, name: string, required: true): string;
export function str(ctx: CommandContext, name: string, required?: false): string | undefined;
export function str(ctx: CommandContext, name: string, required = false): string | undefined {
  const v = ctx.values[name];
  if (v === undefined || v === false) {
    if (required) throw new UsageError(`--${name} is required`);
    return undefined;
  }
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} needs a value`);
  return v;
}

/** A number flag through the shared config parsers (config.ts: one definition of a number with a range). */
export function num(ctx: CommandContext, name: string, opts: { min?: number; max?: number; integer?: boolean } = {}): number | undefined {
  const s = str(ctx, name);
  if (s === undefined) return undefined;
  try {
    return (opts.integer ? parsers.int : parsers.number)(opts)(s);
  } catch (e) {
    const problem = (e as Error).message;
    throw new UsageError(`--${name} ${problem}, got ${/^must be [<>]=/.test(problem) ? Number(s) : JSON.stringify(s)}`);
  }
}
