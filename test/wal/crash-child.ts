// Appends to a WAL as fast as it can, several appends in flight, and now and
// then overwrites its own recent suffix with a higher term (as a new Raft
// leader would) or compacts (snapshot + release, as the storage layer does).
// Before each append it writes `call <k> <first> <last> <term>` to a journal
// file, and once the append resolves (is durable) `ack <k> <commit>`. Each line
// is a write(2) of its own, in the kernel before the append is even submitted,
// so a SIGKILL loses none; stdout is no place for them: once the reader falls
// behind and the pipe fills, Node queues what is written to it, and a SIGKILL
// drops the queue while the appends it announced reach the disk.
// The crash test SIGKILLs it at a random moment and checks the reopened log.
// Usage: crash-child.ts <dir> <seed> <journal> [segmentBytes]
import { openSync, writeSync } from 'node:fs';
import { Wal } from '../../src/wal/index.js';
import { payload } from './helpers.js';

const [dir, seedArg, journalPath, segmentBytesArg] = process.argv.slice(2);
if (dir === undefined || seedArg === undefined || journalPath === undefined) {
  console.error('usage: crash-child.ts <dir> <seed> <journal>');
  process.exit(2);
}
const journal = openSync(journalPath, 'w');
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

const wal = await Wal.open(dir, { segmentBytes: Number(segmentBytesArg ?? 64 * 1024) });
let next = wal.lastIndex + 1;
let term = Math.max(1, wal.lastIndex >= wal.firstIndex ? wal.term(wal.lastIndex) : (wal.snapshot?.term ?? 1));
let acked = 0;
let call = 0;
let inflight = 0;
const window = 1 + rand(16);
process.stdout.write(`ready ${wal.firstIndex} ${wal.lastIndex}\n`);

function pump(): void {
  while (inflight < window) {
    let first = next;
    if (rand(20) === 0 && next - 1 > wal.firstIndex) {
      // A new term overwrites a recent suffix, possibly one still in flight.
      term++;
      first = Math.max(wal.firstIndex, next - 1 - rand(30));
    }
    const n = 1 + rand(40);
    const entries = [];
    for (let i = first; i < first + n; i++) entries.push({ index: i, term, type: 0, data: payload(i, term) });
    next = first + n;
    const k = ++call;
    const commit = Math.max(0, acked - 5);
    writeSync(journal, `call ${k} ${first} ${next - 1} ${term}\n`);
    inflight++;
    void wal.append(entries, { term, vote: 1, commit }).then(() => {
      inflight--;
      acked = Math.max(acked, next - 1 - 200);
      writeSync(journal, `ack ${k} ${commit}\n`);
      // Now and then compact well below the tip, as the storage layer does.
      if (rand(100) === 0 && acked > wal.firstIndex + 600) {
        const at = acked - 500;
        void wal.saveSnapshot({ index: at, term: wal.term(at) }).then(() => wal.releaseTo(at));
      }
      pump();
    });
  }
}
pump();
