// Opens a ReplicatedLog in data dir argv[2] and appends argv[3] records one at a
// time; prints one JSON line: how the open ended, how many appends were
// acknowledged, the first failure's code, status() after it, and whether a
// close + reopen in this same process works and keeps every acknowledged record.
// argv[4], if given, is snapshotEvery (snapshots are then taken as the records apply).
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { RecordingMachine } from './helpers.js';

const [dir, countArg, everyArg] = process.argv.slice(2);
const every = everyArg === undefined ? {} : { snapshotEvery: Number(everyArg) };
if (dir === undefined || countArg === undefined) process.exit(2);
setTimeout(() => process.exit(3), 45_000).unref(); // a hang shows as exit code 3

const code = (e: unknown): string | undefined => (e as { code?: string }).code;
let log: ReplicatedLog<number>;
try {
  log = await ReplicatedLog.open({ dataDir: dir, stateMachine: new RecordingMachine(), tickMs: 10, ...every });
} catch (e) {
  process.stdout.write(JSON.stringify({ open: code(e) }) + '\n');
  process.exit(0);
}
const acked: number[] = [];
let failure: string | undefined;
for (let i = 0; i < Number(countArg); i++) {
  try {
    acked.push((await log.append(Buffer.from(`r${i}`))).index);
  } catch (e) {
    failure = code(e);
    break;
  }
}
// A snapshot is written while later records apply: its failure may come after the last append.
for (let k = 0; everyArg !== undefined && failure === undefined && log.status().role !== 'fatal' && k < 100; k++) await new Promise((r) => setTimeout(r, 20));
const status = log.status();
await log.close();
const sm = new RecordingMachine();
const again = await ReplicatedLog.open({ dataDir: dir, stateMachine: sm, tickMs: 10, ...every });
await again.barrier();
const seen = new Set(sm.applied.map((a) => a.index));
await again.append(Buffer.from('after'));
await again.close();
process.stdout.write(
  JSON.stringify({ open: 'ok', acked: acked.length, failure, role: status.role, fatal: status.fatal?.code, reopened: acked.every((i) => seen.has(i)) }) + '\n',
);
