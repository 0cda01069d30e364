// Three KV nodes in this process, peers through a FaultProxy, one follower held
// behind: everything sent to it arrives late, so its state machine trails the
// leader's. A read served there without a barrier is stale; the linearizability
// tests record histories across all three nodes and let the checker judge.
import { KvStateMachine } from '../../src/kv/kv-state-machine.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { FaultProxy } from '../fault/proxy.js';
import { freePorts, tempDir, waitFor } from '../log/helpers.js';
import { retryPortRace } from '../partition/cluster.js';
import { seeded } from '../seeded.js';
import type { RegisterOp } from './checker.js';

export const LAG_MS = 250;
export const LAG_JITTER_MS = 50;

export interface KvMember {
  id: number;
  log: ReplicatedLog;
  kv: KvStateMachine;
}

export interface LaggingCluster {
  members: KvMember[];
  leader: KvMember;
  /** The follower whose inbound links are delayed. */
  lagging: KvMember;
  other: KvMember;
  proxy: FaultProxy;
  close(): Promise<void>;
}

export function laggingCluster(seed: number): Promise<LaggingCluster> {
  return retryPortRace(() => startLaggingCluster(seed));
}

async function startLaggingCluster(seed: number): Promise<LaggingCluster> {
  const ports = await freePorts(3);
  const real: Record<number, string> = { 1: `127.0.0.1:${ports[0]}`, 2: `127.0.0.1:${ports[1]}`, 3: `127.0.0.1:${ports[2]}` };
  const proxy = await FaultProxy.start({ nodes: real, random: seeded(seed) });
  const dirs = [1, 2, 3].map(() => tempDir('raftlog-lin-'));
  const members: KvMember[] = [];
  const close = async (): Promise<void> => {
    await Promise.all(members.map((m) => m.log.close()));
    await proxy.close();
    for (const d of dirs) d.cleanup();
  };
  try {
    for (const id of [1, 2, 3]) {
      const kv = new KvStateMachine();
      const log = await ReplicatedLog.open({
        dataDir: dirs[id - 1]!.dir,
        id,
        peers: proxy.peersFor(id),
        stateMachine: kv,
        clusterSecret: 'a secret for the linearizability tests',
        // The lag (up to 300 ms) stays well below the election timeout (400-800 ms): the
        // lagging follower hears the leader late but steadily, and does not campaign.
        tickMs: 20,
        electionTicks: 20,
        heartbeatTicks: 2,
        sync: 'none',
      });
      members.push({ id, log, kv });
    }
    let leader: KvMember | undefined;
    await waitFor('a leader', () => (leader = members.find((m) => m.log.status().role === 'leader')) !== undefined, 20_000);
    const followers = members.filter((m) => m !== leader);
    const [lagging, other] = [followers[0]!, followers[1]!];
    for (const m of members) if (m !== lagging) proxy.delay(m.id, lagging.id, LAG_MS, LAG_JITTER_MS);
    return { members, leader: leader!, lagging, other, proxy, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Records operations with their call and return times. */
export class HistoryRecorder {
  readonly ops: RegisterOp[] = [];

  /** A write: `run` resolves once acknowledged; a rejection is an unknown outcome unless `notApplied` says it never took effect. */
  async write(client: string, key: string, value: string, run: () => Promise<unknown>, notApplied: (err: unknown) => boolean): Promise<void> {
    const op: RegisterOp = { client, key, kind: 'write', value, invoke: performance.now(), complete: null };
    try {
      await run();
      op.complete = performance.now();
    } catch (err) {
      if (notApplied(err)) return;
    }
    this.ops.push(op);
  }

  /** A read: `run` returns the value seen; a failed read tells nothing and is left out. */
  async read(client: string, key: string, run: () => Promise<string | null>): Promise<void> {
    const invoke = performance.now();
    let value: string | null;
    try {
      value = await run();
    } catch {
      return;
    }
    this.ops.push({ client, key, kind: 'read', value, invoke, complete: performance.now() });
  }

  get reads(): number {
    return this.ops.filter((o) => o.kind === 'read').length;
  }
}
