/**
 * A tiny structured logger: one JSON object per line, `{"ts","level","msg",...bindings,...fields}`.
 * Levels trace < debug < info < warn < error < fatal (and silent); `child(bindings)` adds fields to every
 * line. Errors (under any key) are written as {name, message, code, retriable, details, stack}.
 *
 * Redaction guard (the house rule "nothing logs an embedding or an image"): before writing, every value is
 * walked and
 *   - a field named embedding(s) / image(s) / crop(s) / descriptor(s) (any case) is replaced by its shape,
 *   - any Buffer, typed array, ArrayBuffer, or numeric array longer than 16 is replaced by its shape,
 *   - a string longer than 4096 characters is replaced by its length (base64 images hide in strings),
 * e.g. "[redacted Float32Array(512)]", "[redacted number[128]]", "[redacted Buffer(48213 bytes)]".
 */
import { LOG_LEVELS, type LogFields, type Logger, type LogLevel } from './observability.js';

export { LOG_LEVELS, silentLogger, type LogFields, type Logger, type LogLevel } from './observability.js';

export interface LoggerOptions {
  level?: LogLevel;
  /** Fields written on every line (e.g. {service: 'embedder'}). */
  bindings?: LogFields;
  /** Where lines go (default: process.stdout, one line per call). */
  sink?: (line: string) => void;
  now?: () => Date;
}

const SENSITIVE_KEY = /^(embeddings?|images?|crops?|descriptors?)$/i;
export const MAX_PLAIN_NUMERIC_ARRAY = 16;
export const MAX_PLAIN_STRING = 4096;
const MAX_DEPTH = 8;

function shapeOf(v: unknown): string {
  if (Buffer.isBuffer(v)) return `Buffer(${v.length} bytes)`;
  if (ArrayBuffer.isView(v)) {
    const name = v.constructor.name;
    return 'length' in v ? `${name}(${(v as unknown as { length: number }).length})` : `${name}(${v.byteLength} bytes)`;
  }
  if (v instanceof ArrayBuffer) return `ArrayBuffer(${v.byteLength} bytes)`;
  if (Array.isArray(v)) {
    const dims: number[] = [];
    let cur: unknown = v;
    while (Array.isArray(cur) && dims.length < 4) {
      dims.push(cur.length);
      cur = cur[0];
    }
    const leaf = cur === undefined ? 'unknown' : typeof cur;
    return `${leaf}${dims.map((d) => `[${d}]`).join('')}`;
  }
  if (typeof v === 'string') return `string(${v.length} chars)`;
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'object') return `object{${Object.keys(v).length} keys}`;
  return typeof v;
}

function isLongNumericArray(v: unknown[]): boolean {
  if (v.length <= MAX_PLAIN_NUMERIC_ARRAY) return false;
  for (const x of v) if (typeof x !== 'number') return false;
  return true;
}

function serializeError(e: Error, seen: WeakSet<object>, depth: number): LogFields {
  const out: LogFields = { name: e.name, message: e.message };
  const extra = e as Error & { code?: unknown; retriable?: unknown; details?: unknown };
  if (extra.code !== undefined) out.code = extra.code;
  if (extra.retriable !== undefined) out.retriable = extra.retriable;
  if (extra.details !== undefined) out.details = redactValue(extra.details, seen, depth + 1);
  if (e.stack) out.stack = e.stack;
  if (e.cause !== undefined) out.cause = redactValue(e.cause, seen, depth + 1);
  return out;
}

/** Returns a JSON-safe copy of `v` with the sensitive parts replaced by their shapes. */
export function redact(v: unknown): unknown {
  return redactValue(v, new WeakSet(), 0);
}

function redactValue(v: unknown, seen: WeakSet<object>, depth: number): unknown {
  if (v === null || typeof v === 'boolean' || typeof v === 'number') return typeof v === 'number' && !Number.isFinite(v) ? String(v) : v;
  if (typeof v === 'string') return v.length > MAX_PLAIN_STRING ? `[redacted ${shapeOf(v)}]` : v;
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'undefined') return undefined;
  if (typeof v === 'function' || typeof v === 'symbol') return `[${typeof v}]`;
  if (Buffer.isBuffer(v) || ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return `[redacted ${shapeOf(v)}]`;
  if (typeof v !== 'object') return String(v);
  if (seen.has(v)) return '[circular]';
  if (depth >= MAX_DEPTH) return `[${shapeOf(v)}]`;
  seen.add(v);
  try {
    if (v instanceof Error) return serializeError(v, seen, depth);
    if (v instanceof Date) return v.toISOString();
    if (Array.isArray(v)) {
      if (isLongNumericArray(v)) return `[redacted ${shapeOf(v)}]`;
      return v.map((x) => redactValue(x, seen, depth + 1));
    }
    if (v instanceof Map) return redactValue(Object.fromEntries(v), seen, depth);
    if (v instanceof Set) return redactValue([...v], seen, depth);
    const out: LogFields = {};
    for (const [k, x] of Object.entries(v)) {
      out[k] = SENSITIVE_KEY.test(k) && x !== null && x !== undefined ? `[redacted ${shapeOf(x)}]` : redactValue(x, seen, depth + 1);
    }
    return out;
  } finally {
    seen.delete(v);
  }
}

const defaultSink = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  const threshold = LOG_LEVELS[level];
  const sink = options.sink ?? defaultSink;
  const now = options.now ?? (() => new Date());
  const bindings = (redact(options.bindings ?? {}) ?? {}) as LogFields;

  const write = (lvl: Exclude<LogLevel, 'silent'>, msg: string, fields?: LogFields): void => {
    if (LOG_LEVELS[lvl] < threshold) return;
    const body = fields ? (redact(fields) as LogFields) : {};
    let line: string;
    try {
      line = JSON.stringify({ ts: now().toISOString(), level: lvl, msg, ...bindings, ...body });
    } catch (e) {
      line = JSON.stringify({ ts: now().toISOString(), level: lvl, msg, logError: String(e) });
    }
    sink(line);
  };

  return {
    level,
    isLevelEnabled: (l) => LOG_LEVELS[l] >= threshold && l !== 'silent',
    trace: (m, f) => write('trace', m, f),
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    fatal: (m, f) => write('fatal', m, f),
    child: (more) => createLogger({ level, sink, now, bindings: { ...bindings, ...more } }),
  };
}

