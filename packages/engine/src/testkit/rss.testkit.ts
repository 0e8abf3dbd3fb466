/** Calls `f` `warm` times, then `n` times, and returns the RSS growth over the `n` calls in MB (the leak tests of the ONNX wrappers). */
export async function rssGrowthMb(f: () => Promise<unknown>, warm: number, n: number): Promise<number> {
  for (let i = 0; i < warm; i++) await f();
  const before = process.memoryUsage().rss;
  for (let i = 0; i < n; i++) await f();
  return (process.memoryUsage().rss - before) / 2 ** 20;
}
