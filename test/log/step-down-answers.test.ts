// Appends made on every node while leadership moves (handed on by transferLeadership, or taken
// by a higher term after the leader was cut off): each is answered, and an answer that says
// "not committed" (APPEND_NOT_COMMITTED, which a caller retries) must be true for good, or a
// retry would put the record in the log twice.
import { afterEach, expect, it } from 'vitest';
import type { ReplicatedLog } from '../../src/log/replicated-log.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { seeded, testSeed } from '../seeded.js';
import { RecordingMachine, appendSurely, enc, waitFor } from './helpers.js';
import { memoryTrio } from './memory-trio.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const TICK_MS = 10;
const ELECTION_TICKS = 20;
const TIMEOUT_MS = 5_000;

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

it('answers APPEND_NOT_COMMITTED only for records that never commit, while leadership is handed on or taken', async () => {
  const random = seeded(testSeed('step-down answers'));
  const net = new MemoryNetwork();
  const machines = new Map<number, RecordingMachine>();
  const { logs } = await memoryTrio(net, cleanups, (id) => {
    const sm = new RecordingMachine();
    machines.set(id, sm);
    return { options: { tickMs: TICK_MS, electionTicks: ELECTION_TICKS, heartbeatTicks: 2, timeoutMs: TIMEOUT_MS, stateMachine: sm } };
  });
  const leaderNow = (): ReplicatedLog<number> | undefined => logs.find((l) => l.status().role === 'leader');

  const answers = new Map<string, string>(); // record -> 'committed' or the error's code
  const pending: Array<Promise<void>> = [];
  const appendOn = (log: ReplicatedLog<number>, name: string): void => {
    pending.push(
      log.append(enc(name)).then(
        () => void answers.set(name, 'committed'),
        (err: { code?: string }) => void answers.set(name, err.code ?? String(err)),
      ),
    );
  };
  const moves: Array<Promise<unknown>> = [];

  for (let round = 0; round < 8; round++) {
    await waitFor('a leader', () => leaderNow() !== undefined, 30_000);
    const leader = leaderNow()!;
    const from = leader.id;
    const others = [1, 2, 3].filter((n) => n !== from);
    const to = others[Math.floor(random() * 2)]!;
    const cut = random() < 0.4;
    const moveAt = Math.floor(random() * 8);
    for (let t = 0; t < 16; t++) {
      if (t === moveAt) {
        if (cut) net.isolate(from);
        else moves.push(leader.transferLeadership(to).catch((err: unknown) => err));
      }
      for (const log of logs) for (let k = 0; k < 1 + Math.floor(random() * 3); k++) appendOn(log, `r${round}-n${log.id}-t${t}-${k}`);
      await turn();
    }
    if (cut) {
      await waitFor('a leader among the others', () => logs.some((l) => l.id !== from && l.status().role === 'leader'), 30_000);
      net.heal();
    }
    await waitFor('leadership to move', () => leaderNow() !== undefined && leaderNow()!.id !== from, 30_000).catch(() => undefined);
  }
  await Promise.all(pending);
  await Promise.all(moves);
  // Everything committed reaches every node: one more record, through whoever leads.
  await appendSurely(logs, enc('last'));
  const applied = (id: number): number => logs[id - 1]!.status().applied;
  await waitFor('every node to apply everything', () => applied(1) === applied(2) && applied(2) === applied(3), 30_000);

  const counts: Record<string, number> = {};
  for (const code of answers.values()) counts[code] = (counts[code] ?? 0) + 1;
  console.log('answers:', counts);
  for (const [id, sm] of machines) {
    const names = sm.applied.map((a) => a.data);
    expect(new Set(names).size, `node ${id} applied a record twice`).toBe(names.length);
    for (const name of names) {
      if (name === 'last') continue;
      expect(answers.get(name), `node ${id} applied ${name}`).not.toBe('APPEND_NOT_COMMITTED');
    }
    const held = new Set(names);
    for (const [name, answer] of answers) if (answer === 'committed') expect(held.has(name), `node ${id} lacks ${name}, whose append resolved`).toBe(true);
  }
  // The test saw both kinds of answer it is about, or it proved nothing.
  expect(counts.committed ?? 0).toBeGreaterThan(0);
  expect(counts.APPEND_NOT_COMMITTED ?? 0).toBeGreaterThan(0);
}, 120_000);
