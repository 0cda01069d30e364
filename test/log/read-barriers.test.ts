import { describe, expect, it } from 'vitest';
import { ReadIndexDroppedError } from '../../src/raft/errors.js';
import { ReadBarriers, type ReadBarrierHost } from '../../src/log/read-barriers.js';

/** A raft node and driver reduced to what barriers see: requests are recorded, turns end when the test says so. */
class FakeHost implements ReadBarrierHost {
  lead = 1;
  appliedIndex = 0;
  closed = false;
  dropNext = false;
  /** The leader holds as many reads as it may: the next request is refused. */
  fullNext = false;
  pumps = 0;
  /** The codes of the barriers refused at once, as the log's metrics count them. */
  readonly refusedCodes: string[] = [];
  readonly requests: Uint8Array[] = [];
  readonly deferred: Array<() => void> = [];

  readIndex(ctx: Uint8Array): void {
    if (this.dropNext) {
      this.dropNext = false;
      throw new ReadIndexDroppedError('no-leader', 'no leader');
    }
    if (this.fullNext) {
      this.fullNext = false;
      throw new ReadIndexDroppedError('too-many-pending', 'full');
    }
    this.requests.push(ctx);
  }
  leader(): number {
    return this.lead;
  }
  applied(): number {
    return this.appliedIndex;
  }
  stopped(): boolean {
    return this.closed;
  }
  schedulePump(): void {
    this.pumps++;
  }
  refused(code: string): void {
    this.refusedCodes.push(code);
  }
  endTurn(): void {
    for (const fn of this.deferred.splice(0)) fn();
  }
}

const ELECTION_TICKS = 10;

function setup(): { host: FakeHost; barriers: ReadBarriers } {
  const host = new FakeHost();
  const origin = Uint8Array.from([9, 9, 9]);
  const barriers = new ReadBarriers(host, origin, { defer: (fn) => void host.deferred.push(fn) }, ELECTION_TICKS);
  return { host, barriers };
}

interface Probe {
  state: 'waiting' | 'resolved' | 'rejected';
  error?: Error;
  cancel: () => void;
}

function enrol(barriers: ReadBarriers): Probe {
  const p: Probe = { state: 'waiting', cancel: () => undefined };
  p.cancel = barriers.wait(
    () => {
      p.state = 'resolved';
    },
    (e) => {
      p.state = 'rejected';
      p.error = e;
    },
  );
  return p;
}

const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

describe('read barriers', () => {
  it('share one ReadIndex request per turn, and a new turn makes a new one', () => {
    const { host, barriers } = setup();
    const a = enrol(barriers);
    const b = enrol(barriers);
    const c = enrol(barriers);
    expect(host.requests).toHaveLength(0); // asked once the turn ends, for all of them
    host.endTurn();
    expect(host.requests).toHaveLength(1);
    expect(host.pumps).toBe(1);
    enrol(barriers);
    host.endTurn();
    expect(host.requests).toHaveLength(2);
    expect(same(host.requests[0]!, host.requests[1]!)).toBe(false);
    barriers.onReadStates([{ index: 0, context: host.requests[0]! }]);
    expect([a.state, b.state, c.state]).toEqual(['resolved', 'resolved', 'resolved']);
  });

  it('release only once this node has applied the read index', () => {
    const { host, barriers } = setup();
    const a = enrol(barriers);
    host.endTurn();
    host.appliedIndex = 4;
    barriers.onReadStates([{ index: 7, context: host.requests[0]! }]);
    expect(a.state).toBe('waiting');
    barriers.onApplied(6);
    expect(a.state).toBe('waiting');
    barriers.onApplied(7);
    expect(a.state).toBe('resolved');
  });

  it('ignore an answer to a context they did not ask', () => {
    const { host, barriers } = setup();
    const a = enrol(barriers);
    host.endTurn();
    const other = Uint8Array.from(host.requests[0]!);
    other[other.length - 1]! ^= 0xff;
    barriers.onReadStates([{ index: 0, context: other }]);
    expect(a.state).toBe('waiting');
  });

  it('wait for a leader, then ask the new one', () => {
    const { host, barriers } = setup();
    host.lead = 0;
    const a = enrol(barriers);
    host.endTurn();
    expect(host.requests).toHaveLength(0);
    host.lead = 2;
    barriers.onNewLeader();
    expect(host.requests).toHaveLength(1);
    barriers.onReadStates([{ index: 0, context: host.requests[0]! }]);
    expect(a.state).toBe('resolved');
  });

  it('ask again after a leader change, and every election timeout while unanswered', () => {
    const { host, barriers } = setup();
    const a = enrol(barriers);
    host.dropNext = true; // the request is lost with the old leader
    host.endTurn();
    expect(host.requests).toHaveLength(0);
    host.lead = 3;
    barriers.onNewLeader();
    expect(host.requests).toHaveLength(1);
    for (let i = 1; i < ELECTION_TICKS; i++) barriers.onTick();
    expect(host.requests).toHaveLength(1);
    barriers.onTick();
    expect(host.requests).toHaveLength(2);
    expect(same(host.requests[0]!, host.requests[1]!)).toBe(true);
    barriers.onReadStates([{ index: 0, context: host.requests[1]! }]);
    expect(a.state).toBe('resolved');
    for (let i = 0; i < ELECTION_TICKS; i++) barriers.onTick();
    expect(host.requests).toHaveLength(2); // answered: nothing left to ask
  });

  it('a barrier that gives up is not asked for again', () => {
    const { host, barriers } = setup();
    const a = enrol(barriers);
    a.cancel();
    host.endTurn();
    expect(host.requests).toHaveLength(0);
  });

  it('a barrier that gives up after its answer, waiting for this node to apply, is let go at once', () => {
    // A node that stops applying (its disk stalled, a follower cut off from entries but not
    // from the leader's read answers) would otherwise keep every barrier timed out meanwhile.
    const { host, barriers } = setup();
    const waiting = (): number => (barriers as unknown as { appliedWaiters: Map<unknown, number> }).appliedWaiters.size;
    const probes: Probe[] = [];
    for (let i = 0; i < 1000; i++) {
      const p = enrol(barriers);
      host.endTurn();
      barriers.onReadStates([{ index: 10, context: host.requests.at(-1)! }]);
      p.cancel();
      probes.push(p);
    }
    const kept = enrol(barriers);
    host.endTurn();
    barriers.onReadStates([{ index: 10, context: host.requests.at(-1)! }]);
    expect(waiting()).toBe(1);
    barriers.onApplied(10);
    expect(kept.state).toBe('resolved');
    expect(probes.filter((p) => p.state !== 'waiting')).toHaveLength(0);
    expect(waiting()).toBe(0);
  });

  it('a turn whose request found no leader closes its batch: a later barrier is asked for though the earlier ones gave up', () => {
    const { host, barriers } = setup();
    host.lead = 0;
    const a = enrol(barriers);
    host.endTurn();
    a.cancel(); // its batch, never asked for, is no longer one to ask
    const b = enrol(barriers);
    host.endTurn();
    host.lead = 2;
    barriers.onNewLeader();
    expect(host.requests).toHaveLength(1);
    barriers.onReadStates([{ index: 0, context: host.requests[0]! }]);
    expect([a.state, b.state]).toEqual(['waiting', 'resolved']);
  });

  it('a batch answered by a re-ask before its turn ends takes no further barriers', () => {
    const { host, barriers } = setup();
    enrol(barriers);
    host.endTurn();
    const late = enrol(barriers); // a new turn's batch, not yet asked
    for (let i = 0; i < ELECTION_TICKS; i++) barriers.onTick(); // the periodic re-ask sends it early
    const ctx = host.requests[host.requests.length - 1]!;
    barriers.onReadStates([{ index: 0, context: ctx }]);
    expect(late.state).toBe('resolved');
    const after = enrol(barriers);
    host.endTurn();
    const last = host.requests[host.requests.length - 1]!;
    expect(same(last, ctx)).toBe(false);
    barriers.onReadStates([{ index: 0, context: last }]);
    expect(after.state).toBe('resolved');
  });

  it('a batch asked for early by a re-ask takes no further barriers: the leader may have fixed its read index before they began', () => {
    const { host, barriers } = setup();
    const early = enrol(barriers);
    for (let i = 0; i < ELECTION_TICKS; i++) barriers.onTick(); // the periodic re-ask sends this turn's batch
    expect(host.requests).toHaveLength(1);
    const sent = host.requests[0]!;
    // The leader answers at its commit index of when the request reached it; a write at 7 then
    // completes (on another node), and only after that does this barrier begin.
    const late = enrol(barriers);
    host.appliedIndex = 5;
    barriers.onReadStates([{ index: 5, context: sent }]);
    expect(early.state).toBe('resolved');
    expect(late.state).toBe('waiting');
    host.endTurn();
    const own = host.requests[host.requests.length - 1]!;
    expect(same(own, sent)).toBe(false);
    barriers.onReadStates([{ index: 7, context: own }]);
    expect(late.state).toBe('waiting');
    barriers.onApplied(7);
    expect(late.state).toBe('resolved');
  });

  it('a batch sent to a new leader before its turn ends takes no further barriers', () => {
    const { host, barriers } = setup();
    host.lead = 0;
    const early = enrol(barriers);
    host.lead = 2;
    barriers.onNewLeader();
    expect(host.requests).toHaveLength(1);
    const late = enrol(barriers);
    barriers.onReadStates([{ index: 0, context: host.requests[0]! }]);
    expect([early.state, late.state]).toEqual(['resolved', 'waiting']);
    host.endTurn();
    expect(host.requests).toHaveLength(2);
    barriers.onReadStates([{ index: 0, context: host.requests[1]! }]);
    expect(late.state).toBe('resolved');
  });

  it('reject every unanswered barrier with an error of its own when told to', () => {
    const { host, barriers } = setup();
    const a = enrol(barriers);
    const b = enrol(barriers);
    host.endTurn();
    const c = enrol(barriers);
    let made = 0;
    barriers.rejectUnanswered(() => new Error(`no leader ${++made}`));
    expect([a.state, b.state, c.state]).toEqual(['rejected', 'rejected', 'rejected']);
    expect(new Set([a.error, b.error, c.error]).size).toBe(3);
    host.endTurn(); // the rejected batch is not asked for
    barriers.onNewLeader();
    expect(host.requests).toHaveLength(1);
  });

  it('ask nothing once the log stopped', () => {
    const { host, barriers } = setup();
    enrol(barriers);
    host.closed = true;
    host.endTurn();
    barriers.onNewLeader();
    expect(host.requests).toHaveLength(0);
  });

  it('a batch the leader refuses as one read too many fails at once with OVERLOADED, and is not asked again', () => {
    const { host, barriers } = setup();
    const a = enrol(barriers);
    const b = enrol(barriers);
    host.fullNext = true;
    host.endTurn();
    expect([a.state, b.state]).toEqual(['rejected', 'rejected']);
    expect((a.error as { code?: string }).code).toBe('OVERLOADED');
    expect(a.error).not.toBe(b.error);
    expect(host.refusedCodes).toEqual(['OVERLOADED', 'OVERLOADED']);
    for (let i = 0; i < ELECTION_TICKS; i++) barriers.onTick();
    barriers.onNewLeader();
    expect(host.requests).toHaveLength(0);
    // Room again: the next turn's barriers are asked for.
    const c = enrol(barriers);
    host.endTurn();
    expect(host.requests).toHaveLength(1);
    expect(c.state).toBe('waiting');
    expect(host.refusedCodes).toHaveLength(2);
  });

  it("a batch the leader refuses in its answer to this follower fails at once with OVERLOADED; another context's refusal changes nothing", () => {
    const { host, barriers } = setup();
    const a = enrol(barriers);
    host.endTurn();
    const b = enrol(barriers);
    host.endTurn();
    barriers.onReadsRefused([Uint8Array.from([1, 2, 3]), host.requests[0]!]);
    expect([a.state, b.state]).toEqual(['rejected', 'waiting']);
    expect((a.error as { code?: string }).code).toBe('OVERLOADED');
    expect(host.refusedCodes).toEqual(['OVERLOADED']);
    // Not asked again; the other batch is.
    for (let i = 0; i < ELECTION_TICKS; i++) barriers.onTick();
    expect(host.requests.slice(2)).toEqual([host.requests[1]]);
  });
});
