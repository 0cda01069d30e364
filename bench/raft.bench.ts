// The consensus core alone: three RawNodes in one process over an in-memory
// network and MemoryStorage, the leader proposing 100-byte entries in batches.
// Measures committed entries per second (median of several runs) and bytes
// allocated per committed entry (heap growth plus what every GC reclaimed).
import { GCProfiler } from 'node:v8';
import { machineAtStart } from '../src/cli/machine.js';
import { MemoryStorage, RawNode } from '../src/raft/index.js';
import { StateType, type Message, type Ready } from '../src/raft/types.js';
import { median, positiveInteger, writeResults, type SuiteOption } from './suite.js';

const ENTRY_BYTES = 100;
const TARGET = 1_000_000;

interface Cluster {
  nodes: RawNode[];
  storages: MemoryStorage[];
  inbox: Message[][];
  committed: number;
  leader: number;
}

function makeCluster(): Cluster {
  const nodes: RawNode[] = [];
  const storages: MemoryStorage[] = [];
  for (const id of [1, 2, 3]) {
    const storage = MemoryStorage.withConf([1, 2, 3]);
    storages.push(storage);
    let seed = id * 7919;
    nodes.push(
      new RawNode({
        id,
        electionTick: 10,
        heartbeatTick: 1,
        storage,
        maxSizePerMsg: 1 << 20,
        maxCommittedSizePerReady: 1 << 24,
        maxUncommittedEntriesSize: 1 << 30,
        maxInflightMsgs: 256,
        maxInflightBytes: 1 << 28,
        checkQuorum: true,
        preVote: true,
        readOnlyOption: 'safe',
        // Deterministic, and no election ever fires during a run: nobody ticks.
        random: () => (seed = (Math.imul(seed, 48271) >>> 0) % 0x7fffffff) / 0x7fffffff,
      }),
    );
  }
  return { nodes, storages, inbox: [[], [], []], committed: 0, leader: 0 };
}

/** One pass of the Ready protocol on node i, with a disk that completes at once. */
function drive(c: Cluster, i: number): void {
  const n = c.nodes[i]!;
  while (n.hasReady()) {
    const rd: Ready = n.ready();
    for (const m of rd.messages) c.inbox[m.to - 1]!.push(m);
    const s = c.storages[i]!;
    if (rd.snapshot !== undefined) s.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) s.append(rd.entries);
    if (rd.hardState !== undefined) s.setHardState(rd.hardState);
    n.advance(rd);
    for (const m of n.persisted(rd)) c.inbox[m.to - 1]!.push(m);
    if (i === c.leader) for (const e of rd.committedEntries) if (e.data.length === ENTRY_BYTES) c.committed++;
  }
}

function deliver(c: Cluster): boolean {
  let any = false;
  for (let i = 0; i < 3; i++) {
    const box = c.inbox[i]!;
    if (box.length === 0) continue;
    c.inbox[i] = [];
    for (const m of box) c.nodes[i]!.step(m);
    any = true;
  }
  return any;
}

function settle(c: Cluster): void {
  for (let rounds = 0; rounds < 1000; rounds++) {
    for (let i = 0; i < 3; i++) drive(c, i);
    if (!deliver(c)) return;
  }
  throw new Error('cluster did not settle');
}

function elect(c: Cluster): void {
  c.nodes[0]!.campaign();
  settle(c);
  if (c.nodes[0]!.status().state !== StateType.StateLeader) throw new Error('node 1 failed to become leader');
  c.leader = 0;
}

/** Keeps memory flat over millions of entries: every node drops applied entries it no longer needs. */
function compact(c: Cluster): void {
  for (const s of c.storages) {
    const hs = s.initialState().hardState;
    const at = Math.min(hs.commit, s.lastIndex()) - 1024;
    if (at > s.firstIndex()) s.compact(at);
  }
}

interface RunResult {
  entriesPerSec: number;
  bytesPerEntry: number;
  committed: number;
}

function run(batch: number, seconds: number): RunResult {
  const c = makeCluster();
  elect(c);
  const payload = new Uint8Array(ENTRY_BYTES).fill(7);
  const batchData: Uint8Array[] = Array.from({ length: batch }, () => payload);
  const leader = c.nodes[c.leader]!;
  const gc = new GCProfiler();
  const heapBefore = process.memoryUsage().heapUsed;
  gc.start();
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let rounds = 0;
  for (;;) {
    leader.propose(batch === 1 ? payload : batchData);
    for (let i = 0; i < 3; i++) drive(c, i);
    deliver(c);
    if ((++rounds & 63) === 0) {
      compact(c);
      if (performance.now() >= deadline) break;
    }
  }
  settle(c);
  const elapsed = performance.now() - start;
  // Honesty check: every node committed and applied the same prefix, so the count is real replication.
  const statuses = c.nodes.map((n) => n.status());
  const lead = statuses[c.leader]!;
  for (const st of statuses) {
    if (st.commit !== lead.commit || st.applied !== lead.applied) {
      throw new Error(`node ${st.id} is at commit ${st.commit}/applied ${st.applied}, leader at ${lead.commit}/${lead.applied}`);
    }
  }
  if (lead.applied < c.committed) throw new Error(`counted ${c.committed} entries but the leader applied only ${lead.applied}`);
  const heapAfter = process.memoryUsage().heapUsed;
  const profile = gc.stop();
  let reclaimed = 0;
  for (const s of profile?.statistics ?? []) reclaimed += Math.max(0, s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize);
  const allocated = heapAfter - heapBefore + reclaimed;
  return { entriesPerSec: (c.committed / elapsed) * 1000, bytesPerEntry: allocated / c.committed, committed: c.committed };
}

export const options: Record<string, SuiteOption> = {
  '--batch': positiveInteger.option('N  only that batch size, for profiling (results are then not written)'),
};

export default async function raftBench(args: string[]): Promise<void> {
  // --quick: short runs.
  const quick = args.includes('--quick');
  const runs = quick ? 3 : 5;
  const seconds = quick ? 0.3 : 1;
  const only = positiveInteger.value(args, '--batch');
  const batches = only === undefined ? [1, 10, 100, 1000] : [only];
  const rows: { batch: number; runs: RunResult[]; medianEntriesPerSec: number; medianBytesPerEntry: number }[] = [];
  const machine = machineAtStart();
  console.log(machine.header());
  run(100, 0.3); // warm up the JIT before measuring anything
  for (const batch of batches) {
    const results: RunResult[] = [];
    for (let r = 0; r < runs; r++) {
      const res = run(batch, seconds);
      results.push(res);
      console.log(
        `  batch ${batch}: run ${r + 1}/${runs}: ${Math.round(res.entriesPerSec).toLocaleString('en-US')} entries/s, ${Math.round(res.bytesPerEntry)} B allocated/entry`,
      );
    }
    rows.push({
      batch,
      runs: results,
      medianEntriesPerSec: median(results.map((x) => x.entriesPerSec)),
      medianBytesPerEntry: median(results.map((x) => x.bytesPerEntry)),
    });
  }
  machine.finish();
  console.log(`\nraft core, 3 nodes in one process, ${ENTRY_BYTES} B entries, median of ${runs} runs of ${seconds} s\n${machine.header()}`);
  console.table(
    rows.map((r) => ({
      'batch (entries/proposal)': r.batch,
      'committed entries/s': Math.round(r.medianEntriesPerSec),
      'vs target 1M': `${((r.medianEntriesPerSec / TARGET) * 100).toFixed(0)}%`,
      'allocated B/entry': Math.round(r.medianBytesPerEntry),
    })),
  );
  const best = Math.max(...rows.map((r) => r.medianEntriesPerSec));
  console.log(`best median: ${Math.round(best).toLocaleString('en-US')} entries/s (${best >= TARGET ? 'meets' : 'short of'} the 1,000,000/s target)`);
  if (only !== undefined) return;
  writeResults('raft', {
    machine: machine.machine,
    entryBytes: ENTRY_BYTES,
    runsPerBatch: runs,
    secondsPerRun: seconds,
    target: TARGET,
    results: rows.map((r) => ({
      batch: r.batch,
      medianEntriesPerSec: Math.round(r.medianEntriesPerSec),
      medianBytesPerEntry: Math.round(r.medianBytesPerEntry),
      runs: r.runs.map((x) => ({ entriesPerSec: Math.round(x.entriesPerSec), bytesPerEntry: Math.round(x.bytesPerEntry), committed: x.committed })),
    })),
  });
}
