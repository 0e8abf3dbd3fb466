/**
 * The one error type of faceflow. Every failure that crosses a module boundary is a FaceflowError with a
 * code from a fixed set. `retriable` alone decides what a transport does with a message that failed:
 * retry it (true) or send it to the dead-letter topic (false). Callers never parse messages to decide.
 */
export const ERROR_CODES = {
  // bad input: the same input fails the same way every time, so never retry it
  INVALID_IMAGE: false,
  IMAGE_TOO_LARGE: false,
  UNSUPPORTED_FORMAT: false,
  NO_FACE: false,
  LOW_QUALITY: false,
  INVALID_ARGUMENT: false,
  INVALID_CONFIG: false,
  INVALID_MESSAGE: false,
  SCHEMA_VERSION: false,
  NOT_FOUND: false,
  GALLERY_EMPTY: false,
  GALLERY_FORMAT: false,
  // issue 15: no key / another key than the gallery's (set FACEFLOW_GALLERY_KEY_FILE), and a sealed record or
  // keyring that does not authenticate (tampered): retrying reads the same bytes with the same key
  GALLERY_KEY: false,
  GALLERY_INTEGRITY: false,
  MODEL_INTEGRITY: false,
  MODEL_LOAD: false,
  UNAUTHORIZED: false,
  // issue 15: Kafka or Redis refused this process's credentials or certificate, or its TLS certificate is not
  // trusted, or client and listener speak different protocols: the same settings fail the same way
  TRANSPORT_SECURITY: false,
  // transient: the same call may succeed later
  BACKEND_UNAVAILABLE: true,
  TRANSPORT: true,
  STORE_UNAVAILABLE: true,
  TIMEOUT: true,
  OVERLOADED: true,
  // a bug or an unexpected state; not retried so that a poison message cannot loop forever
  INTERNAL: false,
} as const satisfies Record<string, boolean>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface FaceflowErrorOptions {
  cause?: unknown;
  /** Overrides the code's default retriability; use sparingly and say why at the call site. */
  retriable?: boolean;
  /** Structured context (ids, shapes, field names). Never an embedding or image bytes. */
  details?: Record<string, unknown>;
}

export class FaceflowError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: FaceflowErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FaceflowError';
    this.code = code;
    this.retriable = options.retriable ?? ERROR_CODES[code];
    this.details = options.details ?? {};
  }

  toJSON(): { code: ErrorCode; message: string; retriable: boolean; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, retriable: this.retriable, details: this.details };
  }
}

export function isFaceflowError(e: unknown): e is FaceflowError {
  return e instanceof FaceflowError;
}

/** Wraps anything thrown into a FaceflowError, keeping one that already is. */
export function toFaceflowError(e: unknown, fallback: ErrorCode = 'INTERNAL'): FaceflowError {
  if (e instanceof FaceflowError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new FaceflowError(fallback, message, { cause: e });
}
