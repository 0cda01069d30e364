// A WAL workload for power-cut tests: pipelined appends across many small
// segments, snapshots and releases. After each acknowledged append it writes
// the acknowledged index to <root>/acks through the file system, so the op log
// shows exactly when each acknowledgement was given.
import { openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Wal } from '../../src/wal/index.js';
import { entry } from '../wal/helpers.js';

const [root, seedArg] = process.argv.slice(2);
if (root === undefined || seedArg === undefined) process.exit(2);
setTimeout(() => process.exit(3), 50_000).unref();
let x = Number(seedArg) || 1;
const rand = (n: number): number => {
  x = (x * 1103515245 + 12345) % 2147483648;
  return x % n;
};

const acks = openSync(join(root, 'acks'), 'a');
const wal = await Wal.open(join(root, 'wal'), { segmentBytes: 32 * 1024, preallocate: 'zeros' });
let next = 1;
for (let round = 0; round < 40; round++) {
  // Several appends in flight at once: the writer groups them.
  const inFlight: Array<Promise<number>> = [];
  for (let k = 1 + rand(4); k > 0; k--) {
    const batch = Array.from({ length: 1 + rand(5) }, () => entry(next++, 1, 0, 1 + rand(2500)));
    const last = batch.at(-1)!.index;
    inFlight.push(wal.append(batch, { term: 1, vote: 1, commit: last }).then(() => last));
  }
  for (const p of inFlight) writeSync(acks, `${await p}\n`);
  if (round % 13 === 12) {
    await wal.saveSnapshot({ index: next - 20, term: 1 });
    await wal.releaseTo(next - 20);
  }
}
await wal.close();
