// Records at the edges of maxRecordBytes, end to end over TCP, on three nodes.
import { createHash } from 'node:crypto';
import { afterEach, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { readAll, type LogEntry, type StateMachine } from '../../src/log/state-machine.js';
import { freePorts, leaderAmong, tempDir, waitFor } from './helpers.js';

const SECRET = 'a secret for the record size tests';
const LIMIT = 4 * 1024 * 1024; // the default maxRecordBytes

/** Keeps each record's position and digest; its snapshot holds every record's bytes, so it is as large as the log. */
class DigestMachine implements StateMachine<number> {
  records: Buffer[] = [];
  applied: string[] = [];
  restoredFrom: number | null = null;

  apply(e: LogEntry): number {
    this.records.push(Buffer.from(e.data));
    this.applied.push(describe(e.data));
    return this.applied.length;
  }

  snapshot(): Uint8Array {
    const parts: Buffer[] = [];
    for (const r of this.records) {
      const len = Buffer.alloc(4);
      len.writeUInt32BE(r.length);
      parts.push(len, r);
    }
    return Buffer.concat(parts);
  }

  async restore(data: AsyncIterable<Uint8Array>, meta: { index: number }): Promise<void> {
    const all = Buffer.from(await readAll(data));
    this.records = [];
    for (let at = 0; at < all.length;) {
      const len = all.readUInt32BE(at);
      this.records.push(all.subarray(at + 4, at + 4 + len));
      at += 4 + len;
    }
    this.applied = this.records.map(describe);
    this.restoredFrom = meta.index;
  }
}

const describe = (data: Uint8Array): string => `${data.length}:${createHash('sha256').update(data).digest('hex').slice(0, 16)}`;

/** A record of `n` bytes, each record's bytes its own. */
let made = 0;
const record = (n: number): Uint8Array => {
  const b = Buffer.alloc(n, made++ % 251);
  if (n >= 8) b.writeUInt32BE(made, 0);
  return b;
};

interface Member {
  id: number;
  dir: string;
  log: ReplicatedLog<number> | null;
  sm: DigestMachine;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function cluster(extra: { snapshotEvery?: number; snapshotCatchUpEntries?: number } = {}) {
  const ports = await freePorts(3);
  const peers: Record<number, string> = {};
  for (let id = 1; id <= 3; id++) peers[id] = `127.0.0.1:${ports[id - 1]}`;
  const members = new Map<number, Member>();
  const open = async (m: Member): Promise<void> => {
    m.sm = new DigestMachine();
    m.log = await ReplicatedLog.open({
      dataDir: m.dir,
      id: m.id,
      peers,
      stateMachine: m.sm,
      clusterSecret: SECRET,
      tickMs: 10,
      electionTicks: 40,
      heartbeatTicks: 4,
      timeoutMs: 15_000,
      ...extra,
    });
  };
  const stop = async (m: Member): Promise<void> => {
    const log = m.log;
    m.log = null;
    await log?.close();
  };
  for (let id = 1; id <= 3; id++) {
    const t = tempDir();
    cleanups.push(t.cleanup);
    members.set(id, { id, dir: t.dir, log: null, sm: new DigestMachine() });
  }
  await Promise.all([...members.values()].map(open));
  cleanups.push(async () => {
    for (const m of members.values()) await stop(m);
  });
  const leader = (): Promise<Member> => leaderAmong([...members.values()].filter((m) => m.log !== null));
  return { members, open, stop, leader };
}

/** Appends `sizes` in one turn on `m`; resolves with what each applied as, in order of the log. */
async function appendTurn(m: Member, sizes: number[]): Promise<Array<{ index: number; offset: number }>> {
  const records = sizes.map(record);
  const acks = await Promise.all(records.map((r) => m.log!.append(r)));
  return acks.map((a) => ({ index: a.index, offset: a.offset }));
}

async function allApplied(members: Iterable<Member>, index: number): Promise<void> {
  const live = [...members].filter((m) => m.log !== null);
  await waitFor(`every node to apply ${index}`, () => live.every((m) => m.log!.status().applied >= index), 60_000);
}

function sameRecords(members: Iterable<Member>): string[] {
  const [first, ...rest] = [...members].map((m) => m.sm.applied);
  for (const r of rest) expect(r).toEqual(first);
  return first!;
}

it('a turn of records at maxRecordBytes appended on a follower, more than one peer frame holds, is committed on every node', async () => {
  const c = await cluster();
  const leader = await c.leader();
  const follower = [...c.members.values()].find((m) => m !== leader)!;
  // Three records at the limit: 12 MiB in one turn, twice the largest frame a peer reads (maxRecordBytes + 2 MiB).
  const acks = await appendTurn(follower, [LIMIT, 0, LIMIT, 1, LIMIT]);
  await allApplied(c.members.values(), Math.max(...acks.map((a) => a.index)));
  const applied = sameRecords(c.members.values());
  expect(applied.map((d) => Number(d.split(':')[0]))).toEqual([LIMIT, 0, LIMIT, 1, LIMIT]);
});
