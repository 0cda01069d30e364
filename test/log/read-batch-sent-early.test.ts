// Barriers of one turn share one ReadIndex request, sent when the turn ends; the periodic
// re-ask can send it sooner. A barrier made after it went out must not take its answer: the
// leader fixed that read index on receipt, before the barrier began, and a write completed in
// between would be missing from the read.
import { afterEach, expect, it } from 'vitest';
import { realClock, type Clock } from '../../src/log/clock.js';
import { MessageType } from '../../src/raft/types.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { enc, waitFor } from './helpers.js';
import { memoryTrio } from './memory-trio.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Real timers; the end-of-turn callbacks are held while `holding`, and run at release(). */
class HoldingClock implements Clock {
  holding = false;
  private readonly held: Array<() => void> = [];
  setTimeout(fn: () => void, ms: number): () => void {
    return realClock.setTimeout(fn, ms);
  }
  defer(fn: () => void): void {
    if (this.holding) this.held.push(fn);
    else realClock.defer(fn);
  }
  release(): void {
    this.holding = false;
    for (const fn of this.held.splice(0)) realClock.defer(fn);
  }
}

it("a barrier made after its turn's ReadIndex request went out early sees a write that completed before it began", async () => {
  const net = new MemoryNetwork();
  const clocks = [1, 2, 3].map(() => new HoldingClock());
  const { logs, leader: l } = await memoryTrio(net, cleanups, (id) => ({
    options: { tickMs: 10, electionTicks: 100, heartbeatTicks: 2 },
    deps: { clock: clocks[id - 1]! },
  }));
  await l.append(enc('first'));
  const f = logs.find((x) => x !== l)!;
  const fClock = clocks[f.id - 1]!;
  // What the leader sends the reader arrives late (in order): its answer to the read, then the
  // commit of the write made after it.
  net.setLink(l.id, f.id, { delayMs: [700, 700] });
  let asked = false;
  net.filter = (m) => {
    if (m.type === MessageType.MsgReadIndex && m.from === f.id) asked = true;
    return true;
  };
  fClock.holding = true; // the reader's turn does not end: only the periodic re-ask sends its request
  const early = f.barrier();
  early.catch(() => undefined);
  await waitFor('the re-ask to send the request', () => asked);
  const w = await l.append(enc('written after the request went out'));
  let appliedAtResolve = -1;
  const late = f.barrier().then(() => {
    appliedAtResolve = f.status().applied;
  });
  late.catch(() => undefined);
  fClock.release();
  await Promise.all([early, late]);
  expect(appliedAtResolve, `barrier resolved with index ${appliedAtResolve} applied; the write completed before it is at ${w.index}`).toBeGreaterThanOrEqual(
    w.index,
  );
}, 60_000);
