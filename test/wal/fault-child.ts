// Drives one WAL under injected faults (see test/fault/run-with-faults.ts) and
// prints what happened as one JSON line: the outcome of each open, how many
// appends were acknowledged before the first failure, and what a reopen in
// this same process finds. Usage: fault-child.ts <dir> <appends> <preallocate> [compact]
// With `compact`, a snapshot marker and a release of the segments below it every
// 20 appends, so that released segments are recycled.
import { readdirSync, readlinkSync } from 'node:fs';
import { Wal, type WalOptions } from '../../src/wal/index.js';
import { range } from './helpers.js';

const [dir, countArg, preallocate, compact] = process.argv.slice(2);
if (dir === undefined || countArg === undefined || preallocate === undefined) process.exit(2);
setTimeout(() => process.exit(3), 45_000).unref(); // a hang shows up as exit code 3

interface Outcome {
  ok: boolean;
  code?: string;
  message?: string;
}
const outcome = (e: unknown): Outcome => ({ ok: false, code: (e as { code?: string }).code, message: (e as Error).message });

const warnings: string[] = [];
const options: WalOptions = {
  segmentBytes: 4096,
  preallocate: preallocate as WalOptions['preallocate'],
  logger: { warn: (obj, msg) => warnings.push(`${msg}: ${String(obj.err)}`) },
};
const opens: Outcome[] = [];
let wal: Wal | null = null;
for (let k = 0; k < 3 && wal === null; k++) {
  try {
    wal = await Wal.open(dir, options);
    opens.push({ ok: true });
  } catch (e) {
    opens.push(outcome(e));
  }
}
if (wal === null) {
  process.stdout.write(JSON.stringify({ opens }) + '\n');
  process.exit(0);
}
const count = Number(countArg);
let acked = 0;
let appendError: Outcome | null = null;
for (let i = 1; i <= count; i++) {
  try {
    await wal.append(range(i, i + 1, 1, 0, 300));
    acked = i;
    if (compact === 'compact' && i % 20 === 0) {
      await wal.saveSnapshot({ index: i - 5, term: 1 });
      await wal.releaseTo(i - 5);
    }
  } catch (e) {
    appendError = outcome(e);
    break;
  }
}
await wal.close();
/** Files under the WAL directory this process still holds open: none once a close settled. */
const held = (): string[] =>
  readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      return target.startsWith(`${dir}/`) ? [target] : [];
    } catch {
      return []; // closed meanwhile (the fd readdir itself used)
    }
  });
const heldAfterClose = held();
const again = await Wal.open(dir, { segmentBytes: 4096 });
let intact = true;
for (let i = again.firstIndex; i <= acked; i++) {
  const [e] = again.entriesSync(i, i + 1);
  const want = range(i, i + 1, 1, 0, 300)[0]!;
  if (e === undefined || e.term !== want.term || Buffer.compare(Buffer.from(e.data), Buffer.from(want.data)) !== 0) intact = false;
}
const reopenedLast = again.lastIndex;
await again.append(range(reopenedLast + 1, reopenedLast + 2, 1));
await again.close();
heldAfterClose.push(...held());
process.stdout.write(JSON.stringify({ opens, acked, appendError, reopenedLast, intact, warnings, heldAfterClose }) + '\n');
