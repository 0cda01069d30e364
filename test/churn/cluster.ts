// A small cluster of ReplicatedLogs on 127.0.0.1 for the churn tests: nodes that can be
// stopped and started again on their directories and ports, and a way to ask whether
// something the test dropped has been collected.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import type { ReplicatedLogOptions } from '../../src/log/options.js';
import { RecordingMachine, freePorts, tempDir, waitFor } from '../log/helpers.js';

export const SECRET = 'a secret for the churn tests';

export interface ChurnNode {
  id: number;
  dir: string;
  address: string;
  log: ReplicatedLog<number> | null;
}

export interface ChurnCluster {
  nodes: ChurnNode[];
  peers: Record<number, string>;
  start(n: ChurnNode, extra?: Partial<ReplicatedLogOptions<number>>): Promise<ReplicatedLog<number>>;
  stop(n: ChurnNode): Promise<void>;
  leader(among?: ChurnNode[]): Promise<ChurnNode>;
  close(): Promise<void>;
}

/** Options that keep a test quick: short ticks, no fsync, files that grow as written. */
export const QUICK = { tickMs: 10, electionTicks: 20, heartbeatTicks: 2, sync: 'none', preallocate: 'none' } as const;

export async function churnCluster(n: number, extra: Partial<ReplicatedLogOptions<number>> = {}): Promise<ChurnCluster> {
  const ports = await freePorts(n);
  const dirs = ports.map(() => tempDir('raftlog-churn-'));
  const nodes: ChurnNode[] = ports.map((p, i) => ({ id: i + 1, dir: dirs[i]!.dir, address: `127.0.0.1:${p}`, log: null }));
  const peers = Object.fromEntries(nodes.map((m) => [m.id, m.address]));
  const start = async (m: ChurnNode, more: Partial<ReplicatedLogOptions<number>> = {}): Promise<ReplicatedLog<number>> => {
    m.log = await ReplicatedLog.open<number>({
      dataDir: m.dir,
      id: m.id,
      peers,
      stateMachine: new RecordingMachine(),
      clusterSecret: SECRET,
      ...QUICK,
      ...extra,
      ...more,
    });
    return m.log;
  };
  const stop = async (m: ChurnNode): Promise<void> => {
    const log = m.log;
    m.log = null;
    await log?.close();
  };
  await Promise.all(nodes.map((m) => start(m)));
  return {
    nodes,
    peers,
    start,
    stop,
    leader: async (among = nodes) => {
      let found: ChurnNode | undefined;
      await waitFor('a leader', () => {
        found = among.find((m) => m.log?.status().role === 'leader');
        return found !== undefined;
      });
      return found!;
    },
    close: async () => {
      await Promise.all(nodes.map(stop));
      for (const d of dirs) d.cleanup();
    },
  };
}

/** Files in a node's snapshot directory that are not held snapshots: spools and unfinished saves. */
export function strayFiles(dir: string): string[] {
  return readdirSync(join(dir, 'snapshots')).filter((f) => !/^snap-\d+-\d+\.snap$/.test(f));
}

/** The snapshot files a node holds. */
export function snapshotFiles(dir: string): string[] {
  return readdirSync(join(dir, 'snapshots')).filter((f) => /^snap-\d+-\d+\.snap$/.test(f));
}

let gcFn: (() => void) | undefined;

/** Runs the garbage collector (exposed on first use) a few times, with turns between. */
export async function collect(): Promise<void> {
  if (gcFn === undefined) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setImmediate(r));
    gcFn();
  }
}
