// Opens a ReplicatedLog alone in data dir argv[2], makes argv[3] appends without waiting for
// them, awaits close(), and prints one JSON line: the index of each append acknowledged, and
// the codes of those refused. Nothing here holds the process open but the log: a close() the
// process exits under never prints the line.
import { ReplicatedLog } from '../../src/log/replicated-log.js';

const [dir, countArg] = process.argv.slice(2);
if (dir === undefined || countArg === undefined) process.exit(2);
setTimeout(() => process.exit(3), 45_000).unref(); // a hang shows as exit code 3; unref'd, it holds nothing open

const log = await ReplicatedLog.open({ dataDir: dir });
const outcomes = Array.from({ length: Number(countArg) }, (_, i) =>
  log.append(Buffer.from(`r${i}`)).then(
    (r) => ({ index: r.index }),
    (e: unknown) => ({ code: (e as { code?: string }).code ?? 'UNCODED' }),
  ),
);
await log.close();
const settled = await Promise.all(outcomes);
const acked = settled.flatMap((o) => ('index' in o ? [o.index] : []));
const refused = settled.flatMap((o) => ('code' in o ? [o.code] : []));
process.stdout.write(JSON.stringify({ closed: true, acked, refused }) + '\n');
