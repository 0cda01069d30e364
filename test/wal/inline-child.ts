// Appends one small entry at a time, each awaited, as a lone caller does, and prints how
// many groups the WAL committed and how many of them ran on this thread (inline), as one
// JSON line: of the appends after the first 20, once the WAL has seen how long a commit
// takes. Usage: inline-child.ts <dir> <appends>
import { Wal } from '../../src/wal/index.js';
import { range } from './helpers.js';

const [dir, countArg] = process.argv.slice(2);
if (dir === undefined || countArg === undefined) process.exit(2);
const wal = await Wal.open(dir, { preallocate: 'none' });
const WARM_UP = 20;
for (let i = 1; i <= WARM_UP; i++) await wal.append(range(i, i + 1));
const before = wal.stats();
for (let i = WARM_UP + 1; i <= WARM_UP + Number(countArg); i++) await wal.append(range(i, i + 1));
const after = wal.stats();
await wal.close();
process.stdout.write(JSON.stringify({ groups: after.groups - before.groups, inlineGroups: after.inlineGroups - before.inlineGroups }) + '\n');
