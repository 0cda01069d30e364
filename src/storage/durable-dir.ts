// Creating a directory so that it survives a crash: mkdir makes an entry in the
// parent, and that entry is only durable once the parent is fsynced.
import { mkdir, open } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** mkdir -p, then fsync every directory it created and the parent of each. */
export async function makeDurableDir(path: string): Promise<void> {
  const target = resolve(path);
  const first = await mkdir(target, { recursive: true });
  if (first === undefined) return; // it was there already
  // Everything from the first created level down to the target is new: sync each, and its parent.
  const created: string[] = [];
  for (let d = target; ; d = dirname(d)) {
    created.push(d);
    if (d === resolve(first)) break;
  }
  for (const d of created.reverse()) {
    await syncDir(d);
    await syncDir(dirname(d));
  }
}
