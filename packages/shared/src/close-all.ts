/**
 * Shutdown's last phase: close every resource, each even if another one's close throws, so that one
 * failing closer never leaves a worker, a child process or a socket holding the process open (issue 12).
 */

/** A named closer; undefined entries (a resource never opened) are skipped. */
export type Closer = readonly [name: string, close: () => unknown] | undefined;

/**
 * Runs the closers in the order given, each one after the previous settled, whatever it did; then throws
 * the first failure (its message names the resource), the others going to `onError`.
 */
export async function closeAll(closers: readonly Closer[], onError: (name: string, e: unknown) => void = () => undefined): Promise<void> {
  let first: { name: string; e: unknown } | undefined;
  for (const c of closers) {
    if (!c) continue;
    const [name, close] = c;
    try {
      await close();
    } catch (e) {
      if (first === undefined) first = { name, e };
      else onError(name, e);
    }
  }
  if (first !== undefined) {
    const e = first.e;
    if (e instanceof Error) {
      e.message = `closing ${first.name}: ${e.message}`;
      throw e;
    }
    throw new Error(`closing ${first.name}: ${String(e)}`);
  }
}
