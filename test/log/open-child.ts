// Opens a ReplicatedLog alone in data dir argv[2] and closes it, then runs `raftlog inspect` on
// it, and prints one JSON line: the open's refusal (code and message) or that it opened, and
// the lines inspect wrote to stderr. Run as another user to meet a mode as that user meets it.
import { main as inspect } from '../../src/cli/inspect.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';

const dir = process.argv[2];
if (dir === undefined) process.exit(2);
setTimeout(() => process.exit(3), 45_000).unref(); // a hang shows as exit code 3

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
