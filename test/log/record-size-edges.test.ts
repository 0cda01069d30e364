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

async function cluster(extra: { snapshotEvery?: number; snapshotCatchUpEntries?: number; maxSnapshotBytes?: number } = {}) {
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
      // An election timeout of a second: megabytes synced on a loaded machine must not depose the
      // leader mid-test, which leaves the forwarded records' fate unknown.
      tickMs: 10,
      electionTicks: 100,
      heartbeatTicks: 10,
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
  // Forwarded proposals are not resent: a link to the leader still being dialled would drop them.
  // A barrier answered through the leader shows the link is up.
  for (
    let tries = 0;
    !(await follower.log!.barrier().then(
      () => true,
      () => false,
    ));
    tries++
  )
    expect(tries).toBeLessThan(10);
  // Three records at the limit: 12 MiB in one turn, twice the largest frame a peer reads (maxRecordBytes + 2 MiB).
  const acks = await appendTurn(follower, [LIMIT, 0, LIMIT, 1, LIMIT]);
  await allApplied(c.members.values(), Math.max(...acks.map((a) => a.index)));
  const applied = sameRecords(c.members.values());
  expect(applied.map((d) => Number(d.split(':')[0]))).toEqual([LIMIT, 0, LIMIT, 1, LIMIT]);
});

it('records at maxRecordBytes, empty and of one byte are committed everywhere, reach a follower that was down by log, and survive a restart; one byte over is refused', async () => {
  const c = await cluster();
  const leader = await c.leader();
  const [down, up] = [...c.members.values()].filter((m) => m !== leader);
  await expect(leader.log!.append(new Uint8Array(LIMIT + 1))).rejects.toMatchObject({ code: 'RECORD_TOO_LARGE' });
  await expect(down!.log!.append(new Uint8Array(LIMIT + 1))).rejects.toMatchObject({ code: 'RECORD_TOO_LARGE' });
  const first = await appendTurn(leader, [LIMIT, 0, 1]);
  await allApplied(c.members.values(), first[2]!.index);
  // The follower misses records at the limit from both other nodes, several turns' worth.
  await c.stop(down!);
  let last = 0;
  for (const [m, sizes] of [
    [leader, [LIMIT, LIMIT, 0]],
    [up, [0, LIMIT, LIMIT]],
    [leader, [LIMIT - 1, 1]],
  ] as const) {
    const acks = await appendTurn(m!, [...sizes]);
    last = Math.max(last, ...acks.map((a) => a.index));
  }
  await c.open(down!);
  await allApplied(c.members.values(), last);
  expect(down!.sm.restoredFrom).toBeNull(); // caught up by log, not by snapshot
  const applied = sameRecords(c.members.values());
  expect(applied.map((d) => Number(d.split(':')[0]))).toEqual([LIMIT, 0, 1, LIMIT, LIMIT, 0, 0, LIMIT, LIMIT, LIMIT - 1, 1]);
  // Every node closed and opened again applies the same records from its WAL.
  for (const m of c.members.values()) await c.stop(m);
  for (const m of c.members.values()) await c.open(m);
  await c.leader();
  await allApplied(c.members.values(), last);
  expect(sameRecords(c.members.values())).toEqual(applied);
});

it('a follower that was down is caught up by a snapshot holding records at maxRecordBytes, and appends at the limit continue', async () => {
  const c = await cluster({ snapshotEvery: 3, snapshotCatchUpEntries: 0 });
  const leader = await c.leader();
  const [down] = [...c.members.values()].filter((m) => m !== leader);
  await c.stop(down!);
  let last = 0;
  for (let i = 0; i < 3; i++) last = (await appendTurn(leader, [LIMIT, 0, LIMIT]))[2]!.index;
  await waitFor('the leader to snapshot past the follower', () => leader.log!.status().snapshotIndex >= 4, 60_000);
  await c.open(down!);
  await allApplied(c.members.values(), last);
  expect(down!.sm.restoredFrom).not.toBeNull();
  const after = await appendTurn(down!, [LIMIT, 1]);
  await allApplied(c.members.values(), after[1]!.index);
  const applied = sameRecords(c.members.values());
  expect(applied.map((d) => Number(d.split(':')[0]))).toEqual([LIMIT, 0, LIMIT, LIMIT, 0, LIMIT, LIMIT, 0, LIMIT, LIMIT, 1]);
});

it('a single node with the smallest WAL segments takes records at maxRecordBytes, each larger than a segment, and reads them back after a restart', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const open = async (sm: DigestMachine): Promise<ReplicatedLog<number>> => ReplicatedLog.open({ dataDir: t.dir, stateMachine: sm, segmentBytes: 4096 });
  const sm = new DigestMachine();
  let log = await open(sm);
  cleanups.push(() => log.close());
  await expect(log.append(new Uint8Array(LIMIT + 1))).rejects.toMatchObject({ code: 'RECORD_TOO_LARGE' });
  const records = [LIMIT, 0, LIMIT, 1, LIMIT].map(record);
  await Promise.all(records.map((r) => log.append(r)));
  await log.append(record(LIMIT));
  await log.close();
  const again = new DigestMachine();
  log = await open(again);
  await waitFor('the reopened log to apply every record', () => again.applied.length === 6);
  expect(again.applied).toEqual(sm.applied);
  expect(again.applied.map((d) => Number(d.split(':')[0]))).toEqual([LIMIT, 0, LIMIT, 1, LIMIT, LIMIT]);
});
