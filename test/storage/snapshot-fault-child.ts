// Drives one snapshot store under injected faults (see test/fault/run-with-faults.ts) and
// prints what happened as one JSON line: how the step failed, the files left in the
// directory, the descriptors still open under it, and what a reopen finds there.
// The directory holds a snapshot at 4/1 before the step, which must still load after it.
// Usage: snapshot-fault-child.ts <dir> <step>, step one of:
//   save      a small snapshot at 9/2 (written in one go)
//   stream    a snapshot at 9/2 of 3 MiB, streamed
//   receive   a snapshot at 9/2 spooled from a peer's bytes, checked and installed
import { readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { FileSnapshotStore } from '../../src/storage/snapshot-store.js';

const [dir, step] = process.argv.slice(2);
if (dir === undefined || step === undefined) process.exit(2);
setTimeout(() => process.exit(3), 45_000).unref(); // a hang shows up as exit code 3

const conf = { voters: [1, 2, 3], learners: [] };
const MiB = 1024 * 1024;
const meta = { index: 9, term: 2, conf };
let returned = false;
async function* source(n: number): AsyncGenerator<Uint8Array> {
  try {
    for (let i = 0; i < n; i++) yield Buffer.alloc(MiB, i + 1);
  } finally {
    returned = true;
  }
}

const store = await FileSnapshotStore.open(dir);
let error: { code?: string; message: string } | null = null;
try {
  if (step === 'save') await store.save({ meta, data: source(1) });
  else if (step === 'stream') await store.save({ meta, data: source(3) });
  else if (step === 'receive') {
    // The sender's file is made outside the faulty directory.
    const sender = await FileSnapshotStore.open(join(dir, '..', 'sender'));
    await sender.save({ meta, data: source(2) });
    const out = await sender.open({ meta, data: new Uint8Array(0) });
    const spool = await store.spool(meta, out.size);
    try {
      for await (const c of out.chunks) await spool.write(c);
      await store.install({ meta, data: await spool.finish() });
    } catch (err) {
      await spool.abort();
      throw err;
    }
  } else process.exit(2);
} catch (err) {
  error = { code: (err as { code?: string }).code, message: (err as Error).message };
}
const left = readdirSync(dir).sort();
const fds = readdirSync('/proc/self/fd')
  .map((fd) => {
    try {
      return readlinkSync(join('/proc/self/fd', fd));
    } catch {
      return '';
    }
  })
  .filter((p) => p.startsWith(dir + '/'));
const reopened = await FileSnapshotStore.open(dir);
const held = await reopened.held();
const loaded = await reopened.load(4, 1).then(
  () => true,
  () => false,
);
process.stdout.write(JSON.stringify({ error, left, fds, returned, held, afterReopen: readdirSync(dir).sort(), loaded }) + '\n');
