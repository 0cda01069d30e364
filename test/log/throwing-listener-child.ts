// Three nodes on an in-memory network whose every 'leader' and 'fatal' listener throws, in a
// process that counts uncaught exceptions instead of ending: leadership is handed on, records
// are appended through the new leader, and one JSON line says what the nodes did meanwhile.
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { enc, waitFor } from './helpers.js';
import { memoryTrio } from './memory-trio.js';

setTimeout(() => process.exit(3), 45_000).unref(); // a hang shows as exit code 3

let thrown = 0;
process.on('uncaughtException', (err) => {
  if ((err as Error).message !== 'listener failed') throw err;
  thrown++;
});

const cleanups: Array<() => Promise<void> | void> = [];
const { logs, leader } = await memoryTrio(new MemoryNetwork(), cleanups);
const events: string[] = [];
for (const log of logs) {
  log.on('leader', ({ id, term }) => {
    events.push(`${log.id}: leader ${id} term ${term}`);
    throw new Error('listener failed');
  });
  log.on('fatal', ({ code }) => {
    events.push(`${log.id}: fatal ${code}`);
    throw new Error('listener failed');
  });
}
const next = logs.find((l) => l !== leader)!;
await leader.transferLeadership(next.id);
await waitFor('every node to follow the new leader', () => logs.every((l) => l.status().lead === next.id));
const acked = await Promise.all(Array.from({ length: 20 }, (_, i) => next.append(enc(`r${i}`)).then((r) => r.index)));
const last = Math.max(...acked);
await waitFor('every node to apply the records', () => logs.every((l) => l.status().applied >= last));
const roles = logs.map((l) => l.status().role);
for (const c of cleanups.reverse()) await c();
process.stdout.write(JSON.stringify({ thrown, roles, acked: acked.length, leaderEvents: events.filter((e) => e.includes('leader')).length, events }) + '\n');
