// A cluster of real ReplicatedLog nodes in this process whose peer connections
// all run through a FaultProxy, plus the checks the partition tests share.
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import type { LogError } from '../../src/log/errors.js';
import { FaultProxy } from '../fault/proxy.js';
import { RecordingMachine, enc, freePorts, tempDir, waitFor } from '../log/helpers.js';
import { seeded } from '../seeded.js';

export const SECRET = 'a secret for the partition tests';

/** Slow enough for a shared, loaded 2-core machine (a stalled event loop must not look like a dead leader): an election timeout of 400-800 ms. */
export const TIMING = { tickMs: 10, electionTicks: 40, heartbeatTicks: 2 } as const;

export interface Member {
  id: number;
  dir: string;
  log: ReplicatedLog<number>;
  sm: RecordingMachine;
}

export interface Cluster {
  members: Map<number, Member>;
  proxy: FaultProxy;
  node(id: number): Member;
  /** Waits for a leader among `among` (default all) whose term is at least `minTerm`. */
  leader(o?: { among?: number[]; minTerm?: number }): Promise<Member>;
  close(): Promise<void>;
}

export interface ClusterOptions {
  timeoutMs?: number;
  snapshotEvery?: number;
  snapshotCatchUpEntries?: number;
}

/** freePorts() hands out ports another process may take before a node binds one: then start again on fresh ones. */
export async function retryPortRace<T>(start: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await start();
    } catch (err) {
      if ((err as { code?: string }).code !== 'TRANSPORT_LISTEN_FAILED' || i >= attempts) throw err;
    }
  }
}

export function proxiedCluster(n: number, seed: number, o: ClusterOptions = {}): Promise<Cluster> {
  return retryPortRace(() => startCluster(n, seed, o));
}

async function startCluster(n: number, seed: number, o: ClusterOptions): Promise<Cluster> {
  const ports = await freePorts(n);
  const real: Record<number, string> = {};
  for (let id = 1; id <= n; id++) real[id] = `127.0.0.1:${ports[id - 1]}`;
  const proxy = await FaultProxy.start({ nodes: real, random: seeded(seed) });
  const dirs = Array.from({ length: n }, () => tempDir('raftlog-partition-'));
  const members = new Map<number, Member>();
  const close = async (): Promise<void> => {
    await Promise.all([...members.values()].map((m) => m.log.close()));
    await proxy.close();
    for (const d of dirs) d.cleanup();
  };
  // Every open settles before any failure is reported, so that none is left running.
  const opened = await Promise.allSettled(
    dirs.map(async (d, i) => {
      const id = i + 1;
      const sm = new RecordingMachine();
      const log = await ReplicatedLog.open<number>({
        dataDir: d.dir,
        id,
        peers: proxy.peersFor(id),
        stateMachine: sm,
        clusterSecret: SECRET,
        ...TIMING,
        timeoutMs: o.timeoutMs ?? 10_000,
        ...(o.snapshotEvery !== undefined ? { snapshotEvery: o.snapshotEvery } : {}),
        ...(o.snapshotCatchUpEntries !== undefined ? { snapshotCatchUpEntries: o.snapshotCatchUpEntries } : {}),
        // No process dies in these tests: what is at stake is the network, not the disk.
        sync: 'none',
      });
      members.set(id, { id, dir: d.dir, log, sm });
    }),
  );
  const failed = opened.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) {
    await close();
    throw failed.reason;
  }
  const node = (id: number): Member => {
    const m = members.get(id);
    if (m === undefined) throw new RangeError(`no node ${id}`);
    return m;
  };
  const leader = async (q: { among?: number[]; minTerm?: number } = {}): Promise<Member> => {
    const among = q.among ?? [...members.keys()];
    let found: Member | undefined;
    await waitFor(
      `a leader among ${among.join(',')} of term >= ${q.minTerm ?? 0}`,
      () => {
        found = among.map(node).find((m) => m.log.status().role === 'leader' && m.log.status().term >= (q.minTerm ?? 0));
        return found !== undefined;
      },
      20_000,
    );
    return found!;
  };
  return { members, proxy, node, leader, close };
}

export interface Ack {
  index: number;
  offset: number;
  data: string;
}

export type Outcome = { ok: true; ack: Ack } | { ok: false; code: string; data: string };

/** Appends and reports how it ended, never rejecting. */
export function attempt(m: Member, data: string): Promise<Outcome> {
  return m.log.append(enc(data)).then(
    (r) => ({ ok: true as const, ack: { index: r.index, offset: r.offset, data } }),
    (err: unknown) => ({ ok: false as const, code: (err as LogError).code ?? String(err), data }),
  );
}

/** Appends that must all succeed. */
export async function appendAll(m: Member, prefix: string, count: number): Promise<Ack[]> {
  return Promise.all(
    Array.from({ length: count }, (_, i) => m.log.append(enc(`${prefix}${i}`)).then((r) => ({ index: r.index, offset: r.offset, data: `${prefix}${i}` }))),
  );
}

/**
 * The node's committed records from index 1 through every record of the entry at
 * `upTo` (applied already), read through entries(). Past `upTo` the reader takes
 * only what it yields at once: the rest of an applied entry comes within the same
 * microtasks, while the next entry may never come.
 */
export async function committed(m: Member, upTo: number): Promise<Ack[]> {
  const out: Ack[] = [];
  if (upTo < 1) return out;
  const it = m.log.entries({ from: 1 });
  for (;;) {
    const next = it.next();
    const r =
      out.length > 0 && out[out.length - 1]!.index >= upTo
        ? await Promise.race([next, new Promise<null>((done) => setImmediate(() => done(null)))])
        : await next;
    if (r === null || r.done === true || r.value.index > upTo) break;
    out.push({ index: r.value.index, offset: r.value.offset, data: Buffer.from(r.value.data).toString() });
  }
  // Not awaited: a next() still waiting for an entry past `upTo` holds the generator until the log closes.
  void it.return(undefined);
  return out;
}

/** Waits until every node has applied `index`. */
export async function allApplied(c: Cluster, index: number, what = 'every node to apply'): Promise<void> {
  await waitFor(`${what} index ${index} (${describe(c)})`, () => [...c.members.values()].every((m) => m.log.status().applied >= index), 30_000);
}

/**
 * Every acknowledged record is at its acknowledged position in every node's committed
 * stream, the streams agree, and none of `never` (records whose appends failed in a
 * way that promises they were not committed) is anywhere.
 */
export async function assertNoLoss(c: Cluster, acked: Ack[], never: string[] = []): Promise<{ upTo: number }> {
  const upTo = Math.max(0, ...acked.map((a) => a.index));
  await allApplied(c, upTo, 'every node to hold every acknowledged record:');
  const streams = await Promise.all([...c.members.values()].map((m) => committed(m, upTo)));
  const first = streams[0]!;
  for (const [i, s] of streams.entries()) {
    if (JSON.stringify(s) !== JSON.stringify(first))
      throw new Error(`node ${[...c.members.keys()][i]}'s committed stream differs from node ${[...c.members.keys()][0]}'s`);
  }
  const at = new Map(first.map((e) => [`${e.index}.${e.offset}`, e.data]));
  for (const a of acked) {
    const pos = `${a.index}.${a.offset}`;
    if (at.get(pos) !== a.data) throw new Error(`acknowledged record ${a.data} at ${pos} is missing: the stream has ${String(at.get(pos))} there`);
  }
  const seen = new Set(first.map((e) => e.data));
  if (seen.size !== first.length) throw new Error('a record was committed twice');
  for (const d of never) if (seen.has(d)) throw new Error(`record ${d} was committed, though its append said it was not`);
  return { upTo };
}

export function describe(c: Cluster): string {
  return [...c.members.values()]
    .map((m) => {
      const s = m.log.status();
      return `${m.id}: ${s.role} term ${s.term} lead ${s.lead} commit ${s.commit} applied ${s.applied}`;
    })
    .join('; ');
}
