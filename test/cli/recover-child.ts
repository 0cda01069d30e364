// Runs `raftlog recover --force-new-cluster` on data dir argv[2] as node 1 and prints one JSON
// line: its exit status and the lines it wrote to stderr. With argv[3] a uid (the parent runs as
// root), it becomes that user once its code and the native addon are loaded, to meet a mode as
// that user meets it: the clone it runs from need not be one that user can read.
import { main as recover } from '../../src/cli/recover.js';
import { becomeUser } from '../log/become-user.js';

const [dir, uid] = process.argv.slice(2);
if (dir === undefined) process.exit(2);
setTimeout(() => process.exit(3), 45_000).unref(); // a hang shows as exit code 3

if (uid !== undefined) becomeUser(Number(uid));
const stderr: string[] = [];
console.error = (...a: unknown[]) => void stderr.push(a.join(' '));
const log = console.log;
console.log = () => undefined;
const exit = await recover(['--force-new-cluster', '--data', dir, '--id', '1', '--yes']);
log(JSON.stringify({ exit, stderr }));
