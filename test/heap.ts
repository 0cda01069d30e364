// What the heap holds, measured after full collections, for tests that bound what a structure
// costs in memory rather than what it counts.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Bytes of the JS heap and of ArrayBuffers (Buffers' bytes) in use after two full collections. */
export function heapBytes(): number {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}
