/**
 * usearch's exactSearch reads a typed array's whole ArrayBuffer from its start, ignoring the view's byte
 * offset (javascript/lib.cpp, usearch 2.26): a view into a larger buffer (an embedding sliced out of a batch,
 * a chunk of rows) would be searched as the wrong numbers. Every array handed to it goes through this.
 */
export function dense<T extends Float32Array | Int8Array>(a: T): T {
  return (a.byteOffset === 0 ? a : a.slice()) as T;
}
