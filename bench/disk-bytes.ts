import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Bytes a directory tree takes on disk, as du counts them: allocated blocks, not file sizes (preallocated or sparse files differ). */
export function diskBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    total += e.isDirectory() ? diskBytes(path) : statSync(path).blocks * 512;
  }
  return total;
}
