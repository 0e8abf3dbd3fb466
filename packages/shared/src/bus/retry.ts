import { FaceflowError } from '../errors.js';

export interface BackoffOptions {
  /** First delay (default 100 ms). */
  initialMs: number;
  /** Cap (default 30 s). */
  maxMs: number;
  /** Growth per attempt (default 2). */
  factor: number;
  /** ± fraction of random spread (default 0.2), so that many consumers do not retry in lockstep. */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 30_000, factor: 2, jitter: 0.2 };

/** The delay before retry number `attempt` (1-based). */
export function backoffMs(attempt: number, o: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const base = Math.min(o.maxMs, o.initialMs * o.factor ** Math.max(0, attempt - 1));
  const spread = base * o.jitter * (2 * random() - 1);
  return Math.max(0, Math.round(base + spread));
}

/** The error a wait throws when its signal fires: retriable, so that the message is redelivered. */
export function abortedError(signal: AbortSignal): FaceflowError {
  const reason: unknown = signal.reason;
  return new FaceflowError('TRANSPORT', 'aborted: the subscription is closing', {
    retriable: true,
    cause: reason,
  });
}

/** Waits `ms`, or rejects with abortedError as soon as `signal` fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortedError(signal));
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortedError(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
