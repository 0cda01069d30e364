// Who may sync a write on its own event loop. A leader of peers must not: its followers'
// acknowledgements arrive while its write syncs. A follower may: the leader's next
// entries wait in the socket for the sync and join the write after it, and the thread
// hand-off the inline write saves is a good part of a follower's cost per batch.
import { afterEach, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { Wal } from '../../src/wal/index.js';
import { enc, tempDir, waitFor } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('followers write small batches inline; the leader of peers never does', async () => {
  const net = new MemoryNetwork();
  const peers = { 1: '127.0.0.1:1', 2: '127.0.0.1:2', 3: '127.0.0.1:3' }; // never dialled: the network is in memory
  const wals = new Map<number, Wal>();
  const logs: ReplicatedLog[] = [];
  for (let id = 1; id <= 3; id++) {
    const t = tempDir();
    cleanups.push(t.cleanup);
    // No fdatasync and no zeroing ahead: whether a write runs inline then depends only on
    // the writer thread's queue and the log's choice, not on how fast the disk syncs.
    const wal = await Wal.open(t.dir, { sync: 'none', preallocate: 'none' });
    wals.set(id, wal);
    logs.push(await ReplicatedLog.open({ dataDir: t.dir, id, peers, sync: 'none', preallocate: 'none' }, { transport: net.endpoint(id), wal }));
  }
  cleanups.push(async () => {
    for (const l of logs) await l.close();
  });
  let leader: ReplicatedLog | undefined;
  await waitFor('a leader', () => (leader = logs.find((l) => l.status().role === 'leader')) !== undefined);
  const lead = leader!.status().id;
  const before = new Map([...wals].map(([id, w]) => [id, w.stats().inlineGroups]));
  for (let i = 0; i < 60; i++) await leader!.append(enc(`r${i}`));
  await waitFor('the followers to apply every record', () => logs.every((l) => l.status().applied === leader!.status().applied));
  for (const [id, w] of wals) {
    const inline = w.stats().inlineGroups - before.get(id)!;
    if (id === lead) expect(inline, `leader ${id}`).toBe(0);
    // The writer thread gets one job in 16 to look for overlap, and the first few after an idle spell.
    else expect(inline, `follower ${id}`).toBeGreaterThan(30);
  }
});
