// Appends to a WAL as fast as it can, with several appends in flight, and
// prints `ack <last index> <commit>` for each append once it resolves (that
// is, once durable). The crash test SIGKILLs it at a random moment and checks
// that everything acknowledged survived. Usage: crash-child.ts <dir> <seed>
import { Wal } from '../../src/wal/index.js';
import { payload } from './helpers.js';

const [dir, seedArg] = process.argv.slice(2);
if (dir === undefined || seedArg === undefined) {
  console.error('usage: crash-child.ts <dir> <seed>');
  process.exit(2);
}
let x = Number(seedArg) >>> 0 || 1;
const rand = (n: number): number => {
  x ^= x << 13;
  x >>>= 0;
  x ^= x >>> 17;
  x ^= x << 5;
  x >>>= 0;
  return x % n;
};

setTimeout(() => process.exit(3), 30_000).unref(); // never outlive a broken test

const wal = await Wal.open(dir, { segmentBytes: 64 * 1024 });
let next = wal.lastIndex + 1;
let acked = wal.lastIndex;
let inflight = 0;
const window = 1 + rand(16);
process.stdout.write(`ready ${wal.firstIndex} ${wal.lastIndex}\n`);

function pump(): void {
  while (inflight < window) {
    const n = 1 + rand(40);
    const entries = [];
    for (let i = 0; i < n; i++, next++) entries.push({ index: next, term: 1, type: 0, data: payload(next, 1) });
    const last = next - 1;
    const commit = Math.max(0, last - 5);
    inflight++;
    void wal.append(entries, { term: 1, vote: 1, commit }).then(() => {
      inflight--;
      acked = last;
      process.stdout.write(`ack ${last} ${commit}\n`);
      // Now and then compact, as the storage layer does: snapshot, then release.
      if (rand(100) === 0 && acked > 600) {
        const at = acked - 500;
        void wal.saveSnapshot({ index: at, term: 1 }).then(() => wal.releaseTo(at));
      }
      pump();
    });
  }
}
pump();
