/** Rounding of the reported figures (JSON and report files): `digits` decimals. */
export function roundTo(v: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
