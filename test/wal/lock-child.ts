// Holds a WAL open until killed; prints `open` once it holds the lock.
import { Wal } from '../../src/wal/index.js';

const dir = process.argv[2];
if (dir === undefined) process.exit(2);
await Wal.open(dir);
process.stdout.write('open\n');
setInterval(() => undefined, 1000);
