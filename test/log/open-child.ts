// Opens a ReplicatedLog alone in data dir argv[2] and closes it, then runs `raftlog inspect` on
// it, and prints one JSON line: the open's refusal (code and message) or that it opened, and
// the lines inspect wrote to stderr. With argv[3] a uid (the parent runs as root), it becomes
// that user once its code and the native addon are loaded, to meet a mode as that user meets
// it: the clone it runs from need not be one that user can read.
import { main as inspect } from '../../src/cli/inspect.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { becomeUser } from './become-user.js';

const [dir, uid] = process.argv.slice(2);
if (dir === undefined) process.exit(2);
setTimeout(() => process.exit(3), 45_000).unref(); // a hang shows as exit code 3

if (uid !== undefined) becomeUser(Number(uid));
const open = await ReplicatedLog.open({ dataDir: dir }).then(
  async (log) => {
    await log.close();
    return { opened: true };
  },
  (err: unknown) => ({ code: (err as { code?: string }).code ?? 'UNCODED', message: (err as Error).message }),
);
const damage: string[] = [];
console.error = (...a: unknown[]) => void damage.push(a.join(' '));
const log = console.log;
console.log = () => undefined;
const exit = await inspect([dir]);
log(JSON.stringify({ open, inspect: { exit, damage } }));
