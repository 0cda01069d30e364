// The append queue's timeout for proposed batches, checked at the log's ticks: no
// batch expires before the timeout, every unsettled one expires within a tick after
// it, and a batch's expiry touches only its own appends. And when appends are
// proposed: at the end of the turn, or, made by callers continuing from a commit,
// once those callers have run, a bounded number of times before a turn must end.
import { describe, expect, it } from 'vitest';
import { AppendQueue, EARLY_PROPOSALS_PER_TURN } from '../../src/log/append-queue.js';
import type { Clock } from '../../src/log/clock.js';
import { NotCommittedError } from '../../src/log/errors.js';
import { Proposals } from '../../src/log/proposals.js';

const origin = Uint8Array.of(2, 1, 0, 0, 0, 0, 0, 0, 0, 9);

/**
 * A queue whose core accepts everything, with deferred work run by hand; over leader 1 unless
 * `lead` says otherwise, and with no timer ever due unless `clock` runs them.
 */
function setUp(timeoutTicks: number, o: { clock?: Clock; lead?: () => number } = {}) {
  const proposals = new Proposals<unknown>(origin);
  const outcomes = new Map<number, string>();
  const clock: Clock = o.clock ?? { setTimeout: () => () => undefined, defer: () => undefined };
  let index = 0;
  const queue = new AppendQueue(proposals, clock, timeoutTicks * 10, 10, {
    lead: o.lead ?? (() => 1),
    node: {
      propose: (datas: Uint8Array[]) => {
        const at = { index: index + 1, term: 1 };
        index += datas.length;
        return at;
      },
    },
    fail: (err) => {
      throw err;
    },
    pump: () => undefined,
  });
  const append = (): number => {
    const seq = proposals.add(
      () => outcomes.set(seq, 'ok'),
      (e) => outcomes.set(seq, (e as { code?: string }).code ?? 'NO_CODE'),
      1,
    );
    queue.push(seq, Uint8Array.of(seq & 0xff));
    return seq;
  };
  return { proposals, outcomes, queue, append };
}

describe('AppendQueue timeouts', () => {
  it('fails a proposed batch as unknown after its timeout in ticks, never before, and only its own appends', () => {
    const { proposals, outcomes, queue, append } = setUp(5);
    const first = [append(), append(), append()];
    queue.propose();
    queue.onTick();
    queue.onTick();
    const second = [append(), append()];
    queue.propose();
    proposals.applied(first[1]!, 1, 1, 1, 'x'); // settles one append of the first batch
    for (let t = 0; t < 3; t++) queue.onTick(); // 5 ticks since the first batch: maybe not 5 full ones yet
    expect([...outcomes.entries()]).toEqual([[first[1], 'ok']]);
    queue.onTick(); // its 6th tick: the timeout (5 ticks) has surely passed
    expect(outcomes.get(first[0]!)).toBe('APPEND_OUTCOME_UNKNOWN');
    expect(outcomes.get(first[2]!)).toBe('APPEND_OUTCOME_UNKNOWN');
    expect(outcomes.get(first[1]!)).toBe('ok');
    expect(second.map((s) => outcomes.get(s))).toEqual([undefined, undefined]);
    queue.onTick();
    expect(second.map((s) => outcomes.get(s))).toEqual([undefined, undefined]);
    queue.onTick();
    expect(second.map((s) => outcomes.get(s))).toEqual(['APPEND_OUTCOME_UNKNOWN', 'APPEND_OUTCOME_UNKNOWN']);
    expect(proposals.size).toBe(0);
  });

  it('expires every batch of a long run exactly once, one tick after its timeout, across compactions', () => {
    const { proposals, outcomes, queue, append } = setUp(3);
    const proposedAt = new Map<number, number>();
    const expiredAt = new Map<number, number>();
    let tick = 0;
    const onTick = (): void => {
      queue.onTick();
      tick++;
      for (const seq of outcomes.keys()) if (!expiredAt.has(seq)) expiredAt.set(seq, tick);
    };
    for (let b = 0; b < 3000; b++) {
      const n = 1 + (b % 4);
      for (let k = 0; k < n; k++) proposedAt.set(append(), tick);
      queue.propose();
      if (b % 3 === 0) onTick();
    }
    for (let t = 0; t < 5; t++) onTick();
    expect(proposals.size).toBe(0);
    expect([...outcomes.values()].every((o) => o === 'APPEND_OUTCOME_UNKNOWN')).toBe(true);
    // Proposed after tick t, a batch expires at tick t + 3 + 1: the next tick may come at once.
    const late = [...proposedAt].filter(([seq, at]) => expiredAt.get(seq) !== at + 4);
    expect(late).toEqual([]);
  });
});

/** A queue whose turns end only when the test says so; appends settle as promises do. */
function turns() {
  const proposals = new Proposals<unknown>(origin);
  const turnEnds: (() => void)[] = [];
  const clock: Clock = { setTimeout: () => () => undefined, defer: (fn) => void turnEnds.push(fn) };
  /** Queued, not yet proposed. */
  const waiting: number[] = [];
  const proposed: number[][] = [];
  const queue = new AppendQueue(proposals, clock, 1000, 10, {
    lead: () => 1,
    node: {
      propose: () => {
        proposed.push(waiting.splice(0));
        return { index: proposed.length, term: 1 };
      },
    },
    fail: (err) => {
      throw err;
    },
    pump: () => undefined,
  });
  const append = (): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const seq = proposals.add(resolve, reject, 1);
      waiting.push(seq);
      queue.push(seq, Uint8Array.of(seq & 0xff));
    });
  /** Settles every proposed append, as the log does once they are applied. */
  const commit = (): void => {
    for (const seq of proposed.flat()) proposals.applied(seq, 1, 1, 0, null);
    proposed.length = 0;
    queue.afterSettle();
  };
  const endTurn = (): void => {
    for (const fn of turnEnds.splice(0)) fn();
  };
  return { proposed, append, commit, endTurn };
}

describe('AppendQueue proposals', () => {
  it("proposes what callers append as they continue from a commit once they have run, in one proposal, without the turn's end", async () => {
    const { proposed, append, commit, endTurn } = turns();
    let done = 0;
    const client = async (): Promise<void> => {
      for (let r = 0; r < 5; r++) await append();
      done++;
    };
    const clients = [client(), client(), client()];
    expect(proposed).toEqual([]);
    endTurn(); // the first appends wait for the end of their turn
    expect(proposed.map((p) => p.length)).toEqual([3]);
    for (let r = 1; r < 5; r++) {
      commit();
      await new Promise(setImmediate); // every microtask has run; no turn of the queue's has ended
      expect(
        proposed.map((p) => p.length),
        `round ${r}`,
      ).toEqual([3]);
    }
    commit();
    await Promise.all(clients);
    expect(done).toBe(3);
    expect(proposed).toEqual([]);
  });

  it('proposes early at most EARLY_PROPOSALS_PER_TURN times in a row, then leaves the appends for the end of the turn', async () => {
    // A store that settles writes at once commits within one pass of microtasks: without
    // a bound, a caller's loop would hold the event loop for as long as it runs.
    const { proposed, append, commit, endTurn } = turns();
    let stop = false;
    const client = (async () => {
      while (!stop) await append();
    })();
    endTurn();
    let early = 0;
    for (; early < 1000; early++) {
      commit();
      await new Promise(setImmediate); // every microtask has run; no turn of the queue's has ended
      if (proposed.length === 0) break;
    }
    expect(early).toBe(EARLY_PROPOSALS_PER_TURN);
    endTurn(); // the waiting append goes with the turn's end, and early proposals resume
    expect(proposed.map((p) => p.length)).toEqual([1]);
    commit();
    await new Promise(setImmediate);
    expect(proposed.map((p) => p.length)).toEqual([1]);
    stop = true;
    commit();
    await client;
  });

  it("leaves the appends of a commit's callers for the end of the turn when others already waited for it", async () => {
    const { proposed, append, commit, endTurn } = turns();
    const first = append();
    endTurn();
    void append(); // from elsewhere (a socket, say), before the commit
    void first.then(() => append());
    commit();
    await new Promise(setImmediate);
    expect(proposed).toEqual([]);
    endTurn();
    expect(proposed.map((p) => p.length)).toEqual([2]);
  });
});

describe('AppendQueue without a leader', () => {
  it('times a wait for a leader from its own start, not from an earlier wait, and holds no timer once nothing waits', () => {
    const timers: Array<{ fn: () => void; live: boolean }> = [];
    const clock: Clock = {
      setTimeout: (fn) => {
        const t = { fn, live: true };
        timers.push(t);
        return () => void (t.live = false);
      },
      defer: () => undefined,
    };
    const due = (t: { fn: () => void; live: boolean } | undefined): void => {
      if (t?.live !== true) return;
      t.live = false;
      t.fn();
    };
    let lead = 0;
    const { outcomes, queue, append: queued } = setUp(30, { clock, lead: () => lead });
    const append = (): number => {
      const seq = queued();
      queue.propose(); // the end of its turn
      return seq;
    };
    append(); // no leader: it waits for one, for at most the timeout
    lead = 2;
    queue.propose(); // a leader is known: the append leaves for it
    lead = 0;
    const late = append(); // the leader is lost: a new wait
    due(timers[0]); // the first wait's timeout comes, barely into the new one
    expect(outcomes.get(late)).toBeUndefined();
    for (const t of timers.slice()) due(t); // the new wait's own timeout
    expect(outcomes.get(late)).toBe('APPEND_NOT_COMMITTED');
    append();
    queue.failAll(() => new NotCommittedError('the log was closed')); // as the log's close does
    expect(timers.filter((t) => t.live)).toEqual([]);
  });
});
