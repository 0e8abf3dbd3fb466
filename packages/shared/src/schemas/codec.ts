/**
 * The wire envelope shared by the JSON message schemas:
 *
 *     {"schema":"face","v":1, ...the message's own fields}
 *
 * UTF-8 JSON, one object per message. `schema` says what it is (a message on the wrong topic fails
 * loudly), `v` is the schema version. `encode` validates before writing, so a stage cannot emit what
 * the next stage would reject; `decode` validates everything it returns and keeps only known fields.
 * A newer `v` than this build knows, or an older one without an upgrade step, is SCHEMA_VERSION;
 * anything else malformed is INVALID_MESSAGE. Both name the field.
 *
 * Versioning rule: adding an optional field does not bump `v`; renaming, removing or changing the meaning
 * of a field does, together with an `upgrade` step from the previous version (readers upgrade old
 * messages in place, so a rolling deploy can read both).
 */
import { FaceflowError } from '../errors.js';
import { FieldReader, invalid, type Json } from './validate.js';

export interface MessageSchema<T> {
  /** The value of the envelope's `schema` field, e.g. "face". */
  readonly name: string;
  /** The version `encode` writes (and the newest `decode` understands). */
  readonly version: number;
  /** Checks an in-memory value; returns a clean copy with only the schema's fields. */
  validate(value: unknown): T;
  encode(msg: T): Buffer;
  decode(buf: Uint8Array): T;
}

export interface JsonSchemaOptions {
  /** upgrade[n] turns the fields of a version-n message into those of version n+1. */
  upgrade?: Record<number, (fields: Json) => Json>;
}

export function schemaVersionError(schema: string, got: number, supported: number): FaceflowError {
  const why = got > supported ? `this build reads ${schema} messages up to v${supported}` : `there is no upgrade from v${got} to v${supported}`;
  return new FaceflowError('SCHEMA_VERSION', `${schema}: field "v" is ${got}; ${why}`, {
    details: { schema, field: 'v', got, supported },
  });
}

export function defineJsonSchema<T extends object>(
  name: string,
  version: number,
  read: (r: FieldReader) => T,
  options: JsonSchemaOptions = {},
): MessageSchema<T> {
  const validate = (value: unknown): T => read(FieldReader.of(name, value));
  return {
    name,
    version,
    validate,
    encode(msg: T): Buffer {
      const clean = validate(msg);
      return Buffer.from(JSON.stringify({ schema: name, v: version, ...clean }), 'utf8');
    },
    decode(buf: Uint8Array): T {
      let parsed: unknown;
      try {
        parsed = JSON.parse(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('utf8'));
      } catch (e) {
        throw new FaceflowError('INVALID_MESSAGE', `${name}: not valid JSON (${(e as Error).message})`, {
          cause: e,
          details: { schema: name, field: '(json)', bytes: buf.byteLength },
        });
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw invalid(name, '(root)', 'must be a JSON object');
      }
      const { schema, v, ...fields } = parsed as Json;
      if (schema !== name) {
        throw invalid(name, 'schema', `must be "${name}" (got ${JSON.stringify(schema) ?? 'nothing'})`);
      }
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw invalid(name, 'v', 'must be a positive integer');
      if (v > version) throw schemaVersionError(name, v, version);
      let current: Json = fields;
      for (let at = v; at < version; at++) {
        const step = options.upgrade?.[at];
        if (!step) throw schemaVersionError(name, v, version);
        current = step(current);
      }
      return validate(current);
    },
  };
}
