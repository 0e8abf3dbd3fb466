/**
 * Hand-written, path-aware validation for the message schemas. Every failure is a
 * FaceflowError('INVALID_MESSAGE') whose message and `details.field` name the offending field
 * (e.g. `face: field "box.width" must be a number > 0`), so a dead-lettered message explains itself.
 */
import { FaceflowError } from '../errors.js';

export type Json = Record<string, unknown>;

export function invalid(schema: string, field: string, problem: string): FaceflowError {
  return new FaceflowError('INVALID_MESSAGE', `${schema}: field "${field}" ${problem}`, {
    details: { schema, field },
  });
}

/** Reads and checks the fields of one object; `path` is the dotted prefix used in error messages. */
export class FieldReader {
  constructor(
    readonly schema: string,
    private readonly obj: Json,
    private readonly path = '',
  ) {}

  static of(schema: string, value: unknown, path = ''): FieldReader {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw invalid(schema, path || '(root)', 'must be an object');
    }
    return new FieldReader(schema, value as Json, path);
  }

  name(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  fail(key: string, problem: string): FaceflowError {
    return invalid(this.schema, this.name(key), problem);
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  raw(key: string): unknown {
    return this.obj[key];
  }

  string(key: string, opts: { min?: number; max?: number; pattern?: RegExp } = {}): string {
    const v = this.obj[key];
    if (typeof v !== 'string') throw this.fail(key, v === undefined ? 'is required' : 'must be a string');
    const min = opts.min ?? 1;
    if (v.length < min) throw this.fail(key, min === 1 ? 'must not be empty' : `must have at least ${min} characters`);
    if (opts.max !== undefined && v.length > opts.max) throw this.fail(key, `must have at most ${opts.max} characters`);
    if (opts.pattern && !opts.pattern.test(v)) throw this.fail(key, `must match ${opts.pattern}`);
    return v;
  }

  optionalString(key: string, opts: { min?: number; max?: number; pattern?: RegExp } = {}): string | undefined {
    return this.has(key) ? this.string(key, opts) : undefined;
  }

  nullableString(key: string, opts: { min?: number; max?: number } = {}): string | null {
    if (this.obj[key] === null) return null;
    if (this.obj[key] === undefined) throw this.fail(key, 'is required (use null for none)');
    return this.string(key, opts);
  }

  number(key: string, opts: { min?: number; max?: number; gt?: number; integer?: boolean } = {}): number {
    const v = this.obj[key];
    return checkNumber(this.schema, this.name(key), v, opts);
  }

  optionalNumber(key: string, opts: { min?: number; max?: number; gt?: number; integer?: boolean } = {}): number | undefined {
    return this.has(key) ? this.number(key, opts) : undefined;
  }

  optionalBoolean(key: string): boolean | undefined {
    if (!this.has(key)) return undefined;
    const v = this.obj[key];
    if (typeof v !== 'boolean') throw this.fail(key, 'must be true or false');
    return v;
  }

  /** A millisecond Unix timestamp (integer, after 2000-01-01, before 2200). */
  timestamp(key: string): number {
    return this.number(key, { integer: true, min: 946_684_800_000, max: 7_258_118_400_000 });
  }

  oneOf<T extends string>(key: string, values: readonly T[]): T {
    const v = this.obj[key];
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
      throw this.fail(key, v === undefined ? 'is required' : `must be one of ${values.join('|')}`);
    }
    return v as T;
  }

  object(key: string): FieldReader {
    const v = this.obj[key];
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      throw this.fail(key, v === undefined ? 'is required' : 'must be an object');
    }
    return new FieldReader(this.schema, v as Json, this.name(key));
  }

  array(key: string, opts: { min?: number; max?: number } = {}): unknown[] {
    const v = this.obj[key];
    if (!Array.isArray(v)) throw this.fail(key, v === undefined ? 'is required' : 'must be an array');
    if (opts.min !== undefined && v.length < opts.min) throw this.fail(key, `must have at least ${opts.min} items`);
    if (opts.max !== undefined && v.length > opts.max) throw this.fail(key, `must have at most ${opts.max} items`);
    return v;
  }

  numberArray(key: string, opts: { min?: number; max?: number } = {}): number[] {
    const arr = this.array(key, opts);
    for (let i = 0; i < arr.length; i++) {
      const x = arr[i];
      if (typeof x !== 'number' || !Number.isFinite(x)) throw invalid(this.schema, `${this.name(key)}[${i}]`, 'must be a finite number');
    }
    return arr as number[];
  }

  /** Items of an array of objects, each wrapped in a reader whose path is `key[i]`. */
  objects(key: string, opts: { min?: number; max?: number } = {}): FieldReader[] {
    return this.array(key, opts).map((item, i) => FieldReader.of(this.schema, item, `${this.name(key)}[${i}]`));
  }
}

export function checkNumber(
  schema: string,
  field: string,
  v: unknown,
  opts: { min?: number; max?: number; gt?: number; integer?: boolean } = {},
): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw invalid(schema, field, v === undefined ? 'is required' : 'must be a finite number');
  }
  if (opts.integer && !Number.isInteger(v)) throw invalid(schema, field, 'must be an integer');
  if (opts.min !== undefined && v < opts.min) throw invalid(schema, field, `must be >= ${opts.min}`);
  if (opts.gt !== undefined && !(v > opts.gt)) throw invalid(schema, field, `must be > ${opts.gt}`);
  if (opts.max !== undefined && v > opts.max) throw invalid(schema, field, `must be <= ${opts.max}`);
  return v;
}

/** Euclidean norm of a vector. */
export function l2norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

/** A copy of `v` scaled to unit length; throws INVALID_ARGUMENT for a zero or non-finite vector. */
export function l2normalize(v: ArrayLike<number>): number[] {
  const n = l2norm(v);
  if (!(n > 0) || !Number.isFinite(n)) {
    throw new FaceflowError('INVALID_ARGUMENT', 'cannot L2-normalise a zero or non-finite vector', { details: { length: v.length } });
  }
  return Array.from(v, (x) => x / n);
}

/** How far from 1 the norm of an embedding may be (float32 round trips and JSON printing stay well inside). */
export const EMBEDDING_NORM_TOLERANCE = 1e-3;
export const MAX_EMBEDDING_DIM = 4096;

/** Checks an L2-normalised embedding: 1..4096 finite numbers with norm 1 ± EMBEDDING_NORM_TOLERANCE. */
export function readEmbedding(r: FieldReader, key: string): number[] {
  const e = r.numberArray(key, { min: 1, max: MAX_EMBEDDING_DIM });
  const n = l2norm(e);
  if (Math.abs(n - 1) > EMBEDDING_NORM_TOLERANCE) throw r.fail(key, `must be L2-normalised (norm is ${n.toFixed(4)})`);
  return e;
}
