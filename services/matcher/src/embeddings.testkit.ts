/** Helpers for the matcher and alerts unit tests: deterministic unit vectors and their noisy copies. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) % 1_000_000) / 1_000_000;
  };
}

export function unit(v: number[]): number[] {
  const n = Math.sqrt(v.reduce((a, x) => a + x * x, 0)) || 1;
  return v.map((x) => x / n);
}

/** A random unit vector of `dim` values. */
export function person(seed: number, dim = 128): number[] {
  const r = rng(seed);
  return unit(Array.from({ length: dim }, () => r() - 0.5));
}

/** `base` moved by noise of about `amount` in L2 distance, re-normalised. */
export function near(base: number[], seed: number, amount = 0.2): number[] {
  const r = rng(seed * 7919 + 1);
  const noise = unit(base.map(() => r() - 0.5));
  return unit(base.map((x, i) => x + noise[i]! * amount));
}
