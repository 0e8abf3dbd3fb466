/**
 * Command-line plumbing: flag parsing with per-command help, --json output, one-line errors and exit
 * codes (0 ok, 1 the command failed, 2 usage error), and a progress bar on stderr.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { FaceflowError, isFaceflowError } from '@faceflow/shared';

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
  'no-progress': { type: 'boolean', default: false },
};

export const COMMON_HELP = [
  '  --json             machine-readable JSON on stdout',
  '  --no-progress      no progress bar on stderr',
  '  -h, --help         this help',
];

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
    parsed = parseArgs({ args: argv, options: { ...COMMON_FLAGS, ...spec.flags }, allowPositionals: true, strict: true }) as typeof parsed;
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
  const progressEnabled = !parsed.values['no-progress'] && process.stderr.isTTY === true;
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

export function num(ctx: CommandContext, name: string, opts: { min?: number; max?: number; integer?: boolean } = {}): number | undefined {
  const s = str(ctx, name);
  if (s === undefined) return undefined;
  const v = Number(s);
  if (!Number.isFinite(v) || (opts.integer && !Number.isInteger(v))) throw new UsageError(`--${name} must be ${opts.integer ? 'an integer' : 'a number'}, got "${s}"`);
  if (opts.min !== undefined && v < opts.min) throw new UsageError(`--${name} must be >= ${opts.min}, got ${v}`);
  if (opts.max !== undefined && v > opts.max) throw new UsageError(`--${name} must be <= ${opts.max}, got ${v}`);
  return v;
}

/** Runs `fn` over `items` with at most `limit` in flight, so a large job holds bounded memory. */
export async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
