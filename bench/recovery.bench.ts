// `npm run bench recovery`: what a partition costs in wall-clock time, over real
// sockets: three in-process nodes whose peer links run through the fault proxy
// (test/fault/proxy.ts), with the default timing (tickMs 50, electionTicks 10:
// a 500 ms base election timeout). Each case runs several times on a fresh
// cluster; the table shows the median and the worst.
//
//   isolated leader (hold):  the leader's links are cut and held open. Measured:
//                            cut -> an append in the majority commits under a new
//                            leader; heal -> the old leader has applied everything
//                            committed before the heal.
//   isolated leader (reset): the same, the links reset instead (a peer that refuses);
//                            also with the cut held 8 s, long enough for the reconnect
//                            backoff to reach its cap.
//   isolated follower:       a follower is cut off while 2000 records commit;
//                            heal -> it has applied them all.
//
// The simulator asserts the same cases in ticks (test/sim-log/partition-bounds.test.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { machineAtStart } from '../src/cli/machine.js';
import { freePorts } from '../src/cli/ports.js';
import type { LogError } from '../src/log/errors.js';
import { DEFAULTS } from '../src/log/options.js';
import { ReplicatedLog } from '../src/log/replicated-log.js';
import { FaultProxy, type CutMode } from '../test/fault/proxy.js';
import { median, writeResults } from './suite.js';

const ELECTION_MS = DEFAULTS.tickMs * DEFAULTS.electionTicks;
const enc = new TextEncoder();

interface Sample {
  /** ms from the cut to a commit under a new leader (isolated-leader cases). */
  electMs?: number;
  /** ms from the heal to the cut node holding everything committed before it. */
  catchUpMs: number;
}

interface Row {
  case: string;
  runs: number;
  electMedianMs: number | null;
  electMaxMs: number | null;
  catchUpMedianMs: number;
  catchUpMaxMs: number;
}

async function until(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`recovery bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function withCluster<T>(fn: (logs: ReplicatedLog[], proxy: FaultProxy) => Promise<T>): Promise<T> {
  const ports = await freePorts(3);
  const real: Record<number, string> = { 1: `127.0.0.1:${ports[0]}`, 2: `127.0.0.1:${ports[1]}`, 3: `127.0.0.1:${ports[2]}` };
  const proxy = await FaultProxy.start({ nodes: real, random: () => 0 });
  const dirs = [1, 2, 3].map(() => mkdtempSync(join(tmpdir(), 'raftlog-recovery-')));
  const logs: ReplicatedLog[] = [];
  try {
    for (const id of [1, 2, 3]) {
      logs.push(await ReplicatedLog.open({ dataDir: dirs[id - 1]!, id, peers: proxy.peersFor(id), clusterSecret: 'a secret for the recovery benchmark' }));
    }
    return await fn(logs, proxy);
  } finally {
    await Promise.all(logs.map((l) => l.close()));
    await proxy.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

const leaderOf = (logs: ReplicatedLog[]): ReplicatedLog | undefined => logs.find((l) => l.status().role === 'leader');

async function isolatedLeader(mode: CutMode, holdMs = 0): Promise<Sample> {
  return withCluster(async (logs, proxy) => {
    await until('a leader', () => leaderOf(logs) !== undefined);
    const old = leaderOf(logs)!;
    await Promise.all(Array.from({ length: 100 }, (_, i) => old.append(enc.encode(`before-${i}`))));
    const oldTerm = old.status().term;
    const majority = logs.filter((l) => l !== old);
    const cutAt = performance.now();
    proxy.isolate(old.id, mode);
    // Clients in the majority append (and retry) until one commits in a newer term.
    let committedAt = -1;
    const busy = new Set<ReplicatedLog>();
    const tryAll = (): void => {
      for (const l of majority) {
        if (busy.has(l) || committedAt >= 0) continue;
        busy.add(l);
        l.append(enc.encode('after')).then(
          (r) => {
            busy.delete(l);
            if (r.term > oldTerm && committedAt < 0) committedAt = performance.now();
          },
          (err: unknown) => {
            busy.delete(l);
            if (!['APPEND_OUTCOME_UNKNOWN', 'APPEND_NOT_COMMITTED', 'NO_LEADER'].includes((err as LogError).code)) throw err;
          },
        );
      }
    };
    await until('a commit under a new leader', () => {
      tryAll();
      return committedAt >= 0;
    });
    const electMs = committedAt - cutAt;
    // A long partition: the cut node's reconnect backoff has grown to its cap.
    if (holdMs > 0) await new Promise((r) => setTimeout(r, holdMs));
    const next = leaderOf(majority) ?? majority[0]!;
    await Promise.all(Array.from({ length: 100 }, (_, i) => next.append(enc.encode(`majority-${i}`))));
    const target = next.status().commit;
    const healAt = performance.now();
    proxy.heal();
    await until('the old leader to catch up', () => old.status().applied >= target);
    return { electMs, catchUpMs: performance.now() - healAt };
  });
}

async function isolatedFollower(records: number): Promise<Sample> {
  return withCluster(async (logs, proxy) => {
    await until('a leader', () => leaderOf(logs) !== undefined);
    const leader = leaderOf(logs)!;
    const follower = logs.find((l) => l !== leader)!;
    proxy.isolate(follower.id);
    for (let done = 0; done < records; done += 200) {
      await Promise.all(Array.from({ length: 200 }, (_, i) => leader.append(enc.encode(`r-${done + i}`))));
    }
    const target = leader.status().commit;
    const healAt = performance.now();
    proxy.heal();
    await until('the follower to catch up', () => follower.status().applied >= target);
    return { catchUpMs: performance.now() - healAt };
  });
}

export default async function recovery(args: string[]): Promise<void> {
  const runs = args.includes('--quick') ? 3 : 7;
  const machine = machineAtStart();
  console.log(machine.header());
  const cases: Array<[string, () => Promise<Sample>]> = [
    ['isolated leader (hold)', () => isolatedLeader('hold')],
    ['isolated leader (reset)', () => isolatedLeader('reset')],
    ['isolated leader (reset, cut 8 s)', () => isolatedLeader('reset', 8_000)],
    ['isolated follower, 2000 records behind', () => isolatedFollower(2000)],
  ];
  const rows: Row[] = [];
  const samples: Record<string, Sample[]> = {};
  for (const [name, fn] of cases) {
    const got: Sample[] = [];
    for (let i = 0; i < runs; i++) {
      got.push(await fn());
      process.stdout.write('.');
    }
    samples[name] = got;
    const elect = got.flatMap((s) => (s.electMs === undefined ? [] : [s.electMs]));
    const catchUp = got.map((s) => s.catchUpMs);
    rows.push({
      case: name,
      runs,
      electMedianMs: elect.length > 0 ? median(elect) : null,
      electMaxMs: elect.length > 0 ? Math.max(...elect) : null,
      catchUpMedianMs: median(catchUp),
      catchUpMaxMs: Math.max(...catchUp),
    });
  }
  process.stdout.write('\n');
  machine.finish();
  console.log(machine.header());
  const f = (ms: number | null): string => (ms === null ? '-' : `${ms.toFixed(0)} ms (${(ms / ELECTION_MS).toFixed(2)} ET)`);
  console.log(
    `base election timeout (ET) ${ELECTION_MS} ms (tickMs ${DEFAULTS.tickMs} x electionTicks ${DEFAULTS.electionTicks}); ${runs} runs per case, 3 nodes over loopback through the fault proxy`,
  );
  console.table(
    rows.map((r) => ({
      case: r.case,
      'cut -> new leader commits (median)': f(r.electMedianMs),
      '(worst)': f(r.electMaxMs),
      'heal -> caught up (median)': f(r.catchUpMedianMs),
      '(worst) ': f(r.catchUpMaxMs),
    })),
  );
  writeResults('recovery', { machine: machine.machine, electionTimeoutMs: ELECTION_MS, rows, samples });
}
