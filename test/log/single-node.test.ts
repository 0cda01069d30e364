import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { realClock } from '../../src/log/clock.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { FileSnapshotStore } from '../../src/storage/snapshot-store.js';
import { Wal } from '../../src/wal/index.js';
import { RecordingLogger } from '../recording-logger.js';
import { countReadsOnCaller } from '../wal/helpers.js';
import { RecordingMachine, enc, pos, runChild, tempDir, waitFor } from './helpers.js';

describe('ReplicatedLog, one node with no peers (the embedded default)', () => {
  const dirs: Array<{ cleanup(): void }> = [];
  const fresh = (): string => {
    const d = tempDir();
    dirs.push(d);
    return d.dir;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) d.cleanup();
  });

  it('makes a missing data directory, and its missing parents, readable by its owner alone, whatever the umask', async () => {
    const dataDir = join(fresh(), 'a', 'data');
    const old = process.umask(0);
    let log: ReplicatedLog<unknown>;
    try {
      log = await ReplicatedLog.open({ dataDir, sync: 'none' });
    } finally {
      process.umask(old);
    }
    await log.close();
    for (const d of [dataDir, join(dataDir, '..')]) expect((statSync(d).mode & 0o777).toString(8), d).toBe('700');
  });

  it("proposes what a caller appends as it continues from a commit at once, not at the turn's end", async () => {
    // The end of a turn comes only when the test says so.
    const turnEnds: (() => void)[] = [];
    const clock = { setTimeout: realClock.setTimeout, defer: (fn: () => void) => void turnEnds.push(fn) };
    const log = await ReplicatedLog.open({ dataDir: fresh(), sync: 'none' }, { clock });
    const first = log.append(enc('0'));
    for (const end of turnEnds.splice(0)) end();
    await first;
    // This continuation is a caller that waits for each commit: every append after the first
    // is made as it continues from the one before, and commits with no turn's end.
    const caller = (async () => {
      for (let i = 1; i < 10; i++) await log.append(enc(String(i)));
    })();
    const done = await Promise.race([caller.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000))]);
    expect(done).toBe(true);
    expect(turnEnds.length).toBeGreaterThan(0); // each append still asked for one
    await log.close();
  });

  it('lets the event loop turn while a caller appends in a loop over a store that settles writes at once', async () => {
    const dir = fresh();
    const wal = await Wal.open(join(dir, 'wal'), { sync: 'none' });
    const write = wal.append.bind(wal);
    // An in-memory store's writes are durable when the call returns: every commit then
    // comes within one pass of microtasks.
    wal.append = (entries, hardState) => {
      write(entries, hardState).catch(() => undefined);
      return Promise.resolve();
    };
    const log = await ReplicatedLog.open({ dataDir: dir, sync: 'none' }, { wal });
    let n = 0;
    let timerAt = -1;
    setTimeout(() => (timerAt = n), 0);
    for (; n < 5000; n++) await log.append(enc(String(n)));
    expect(timerAt).toBeGreaterThanOrEqual(0); // it ran while the caller was still appending
    await log.close();
  });

  it('commits, applies in order and returns the state machine result', async () => {
    const sm = new RecordingMachine();
    const log = await ReplicatedLog.open({ dataDir: fresh(), stateMachine: sm });
    const results = await Promise.all(['a', 'b', 'c'].map((s) => log.append(enc(s))));
    expect(results.map((r) => r.result)).toEqual([1, 2, 3]);
    // One turn's appends: one entry, the records in call order.
    expect(results.map((r) => [r.index, r.offset])).toEqual([0, 1, 2].map((k) => [results[0]!.index, k]));
    expect(sm.applied.map(pos)).toEqual(results.map(pos));
    expect(sm.applied.map((a) => a.data)).toEqual(['a', 'b', 'c']);
    expect(log.status().role).toBe('leader');
    await log.close();
  });

  it('batches the appends of one turn into one proposal and survives a reopen', async () => {
    const dir = fresh();
    let log = await ReplicatedLog.open({ dataDir: dir, stateMachine: new RecordingMachine() });
    const n = 2000;
    const acks = await Promise.all(Array.from({ length: n }, (_, i) => log.append(enc(`r${i}`))));
    await log.close();

    const sm = new RecordingMachine();
    log = await ReplicatedLog.open({ dataDir: dir, stateMachine: sm });
    await log.barrier();
    const byPosition = new Map(sm.applied.map((a) => [pos(a), a.data]));
    for (let i = 0; i < n; i++) expect(byPosition.get(pos(acks[i]!))).toBe(`r${i}`);
    // every position exactly once in this lifetime
    expect(new Set(sm.applied.map(pos)).size).toBe(sm.applied.length);
    // 2,000 records of a few bytes: one entry
    expect(new Set(acks.map((a) => a.index)).size).toBe(1);
    await log.close();
  });

  it('a log that commits alone opens with every record acknowledged before the restart applied: its state is read as of then', async () => {
    const dir = fresh();
    let log = await ReplicatedLog.open({ dataDir: dir, stateMachine: new RecordingMachine(), snapshotEvery: 3 });
    for (const s of ['a', 'b', 'c', 'd', 'e']) await log.append(enc(s));
    await log.close();
    // Read straight after open, as an embedded application reads its state: the records after the
    // snapshot were applied only once the new term's first entry committed, after open() resolved.
    const sm = new RecordingMachine();
    log = await ReplicatedLog.open({ dataDir: dir, stateMachine: sm });
    expect(sm.applied.map((a) => a.data)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(log.status().applied).toBe(log.status().commit);
    await log.close();
  });

  it('snapshots every snapshotEvery records and restores from the snapshot plus the rest of the log', async () => {
    const dir = fresh();
    let log = await ReplicatedLog.open({ dataDir: dir, stateMachine: new RecordingMachine(), snapshotEvery: 100 });
    const turns: number[] = [];
    for (let round = 0; round < 5; round++) {
      const acks = await Promise.all(Array.from({ length: 70 }, (_, i) => log.append(enc(`${round}-${i}`))));
      turns.push(acks[0]!.index);
    }
    const before = log.status();
    // 140 records by the second turn's entry: the snapshot is at that entry or a later one.
    expect(before.snapshotIndex).toBeGreaterThanOrEqual(turns[1]!);
    await log.close();

    const sm = new RecordingMachine();
    log = await ReplicatedLog.open({ dataDir: dir, stateMachine: sm, snapshotEvery: 100 });
    await log.barrier();
    expect(sm.restoredFrom).toBe(before.snapshotIndex);
    expect(sm.applied.map((a) => a.data)).toEqual(Array.from({ length: 5 }, (_, r) => Array.from({ length: 70 }, (_, i) => `${r}-${i}`)).flat());
    expect(log.status().firstIndex).toBeGreaterThan(1);
    await log.close();
  });

  it('a member added after a snapshot was taken gets a snapshot taken at or after its addition', async () => {
    // A peer port: a member is added only to a log that has one to reach it on.
    const log = await ReplicatedLog.open({
      dataDir: fresh(),
      listen: '127.0.0.1:0',
      insecure: true,
      sync: 'none',
      stateMachine: new RecordingMachine(),
      snapshotEvery: 100,
    });
    await Promise.all(Array.from({ length: 100 }, (_, i) => log.append(enc(`r${i}`))));
    await waitFor('the first snapshot', () => log.status().snapshotIndex > 0);
    // The learner never answers: only the leader's snapshot for it is at stake.
    await log.addLearner(2, '127.0.0.1:1');
    const added = log.status().applied;
    // The earlier snapshot does not name the learner, which would refuse it; far fewer than
    // snapshotEvery records came since, so only the new member calls for this one.
    await waitFor('a snapshot at the change', () => log.status().snapshotIndex >= added);
    expect(log.status().conf.learners).toEqual([2]);
    await log.close();
  });

  it('a prune of old snapshots that fails is logged and retried at the next one: the new snapshot stands and the node runs on', async () => {
    const dir = fresh();
    const store = await FileSnapshotStore.open(join(dir, 'snapshots'));
    const prune = store.prune.bind(store);
    let failures = 0;
    store.prune = async (index) => {
      if (failures++ === 0) throw Object.assign(new Error('EIO: i/o error, unlink'), { code: 'EIO' });
      return prune(index);
    };
    const logger = new RecordingLogger();
    const held = (): string[] => readdirSync(join(dir, 'snapshots')).filter((n) => n.endsWith('.snap'));
    let log = await ReplicatedLog.open({ dataDir: dir, stateMachine: new RecordingMachine(), snapshotEvery: 2 }, { snapshots: store, logger });
    for (let i = 0; i < 3; i++) await log.append(enc(`a${i}`));
    await waitFor('a failed prune', () => failures > 0 && logger.lines.some((l) => l.level === 'warn' && l.fields.code === 'EIO'));
    expect(log.status().role).toBe('leader');
    for (let i = 0; i < 6; i++) await log.append(enc(`b${i}`));
    await waitFor('a later prune', () => failures > 1 && held().length === 1);
    expect(log.status().role).toBe('leader');
    const snapshotIndex = log.status().snapshotIndex;
    await log.close();
    const sm = new RecordingMachine();
    log = await ReplicatedLog.open({ dataDir: dir, stateMachine: sm });
    await log.barrier();
    expect(sm.restoredFrom).toBe(snapshotIndex);
    expect(sm.applied).toHaveLength(9);
    await log.close();
  });

  it('streams committed entries from an index, then follows new ones', async () => {
    const log = await ReplicatedLog.open({ dataDir: fresh() });
    const first = await log.append(enc('x0'));
    await log.append(enc('x1'));
    const seen: string[] = [];
    const reader = (async () => {
      for await (const e of log.entries({ from: first.index })) {
        seen.push(Buffer.from(e.data).toString());
        if (seen.length === 4) break;
      }
    })();
    await log.append(enc('x2'));
    await log.append(enc('x3'));
    await reader;
    expect(seen).toEqual(['x0', 'x1', 'x2', 'x3']);
    await log.close();
  });

  it('entries() reads records older than the WAL keeps in memory off the event loop; a reader whose log closes under a read ends', async () => {
    const dir = fresh();
    const wal = await Wal.open(join(dir, 'wal'));
    const readsOnLoop = countReadsOnCaller(wal);
    const log = await ReplicatedLog.open({ dataDir: dir }, { wal });
    // 24 MiB in 64 KiB records, one a turn: the WAL keeps the newest 16 MiB in memory.
    const record = (k: number): Buffer => Buffer.alloc(64 * 1024, k % 251);
    for (let k = 0; k < 384; k++) await log.append(record(k));
    expect(wal.cachedFrom).toBeGreaterThan(wal.firstIndex + 100);
    let k = 0;
    for await (const e of log.entries()) {
      expect(Buffer.compare(Buffer.from(e.data), record(k))).toBe(0);
      if (++k === 384) break;
    }
    expect(readsOnLoop()).toBe(0);

    const reader = log.entries({ from: 1 })[Symbol.asyncIterator]();
    const first = reader.next(); // a read from disk in flight
    await log.close();
    const got = await first;
    if (!got.done) expect(Buffer.compare(Buffer.from(got.value.data), record(0))).toBe(0);
    await expect(reader.next()).resolves.toMatchObject({ done: true });
  });

  it('a reader returned while it waits for the next record ends at once, and holds nothing: 10,000 of them on an idle log', async () => {
    const log = await ReplicatedLog.open({ dataDir: fresh(), sync: 'none' });
    await log.append(enc('a'));
    const from = log.status().lastIndex + 1;
    let ended = 0;
    for (let i = 0; i < 10_000; i++) {
      const reader = log.entries({ from })[Symbol.asyncIterator]();
      const next = reader.next(); // waits: nothing is committed past `from`
      const returned = reader.return(undefined);
      for (const p of [next, returned])
        p.then(
          (r) => void (r.done === true && ended++),
          () => undefined,
        );
    }
    // Nothing is appended meanwhile: a return() that waited for the next record waited for good.
    await waitFor('every reader to end', () => ended === 20_000, 30_000);
    const listeners = (log as unknown as { committed: { listeners: Set<unknown> } }).committed.listeners;
    expect(listeners.size).toBe(0);
    // The log goes on serving readers.
    const b = await log.append(enc('b'));
    const after = await log.entries({ from: b.index }).next();
    expect(after.value).toMatchObject({ index: b.index });
    await log.close();
  });

  it('a reader of a log that stops on a failure throws its error; entries() of a closed log throws LOG_CLOSED', async () => {
    const sm = new RecordingMachine();
    const log = await ReplicatedLog.open({ dataDir: fresh(), stateMachine: sm });
    await log.append(enc('a'));
    const seen: number[] = [];
    const following = (async () => {
      for await (const e of log.entries({ from: 1 })) seen.push(e.index);
    })();
    await waitFor('the reader to catch up', () => seen.length === 1);
    sm.apply = () => {
      throw new Error('broken');
    };
    await expect(log.append(enc('b'))).rejects.toMatchObject({ code: 'LOG_FATAL' });
    // Ending as at a close would look like the end of the log to whoever follows it.
    await expect(following).rejects.toMatchObject({ code: 'LOG_FATAL', message: expect.stringMatching(/broken/) });
    await expect(log.entries().next()).rejects.toMatchObject({ code: 'LOG_FATAL' });
    await log.close();

    const closed = await ReplicatedLog.open({ dataDir: fresh() });
    await closed.append(enc('a'));
    await closed.close();
    // Not an empty log: a closed one.
    await expect(closed.entries({ from: 1 }).next()).rejects.toMatchObject({ code: 'LOG_CLOSED' });
  });

  it('rejects bad input and calls after close with coded errors', async () => {
    const dir = fresh();
    const log = await ReplicatedLog.open({ dataDir: dir });
    await expect(log.append('text' as unknown as Uint8Array)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    // Sizes are counted in elements (`.length`), which are bytes only in a Uint8Array: any other view is refused.
    await expect(log.append(new Uint16Array(4) as unknown as Uint8Array)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(log.append(new DataView(new ArrayBuffer(4)) as unknown as Uint8Array)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    // A misspelt option read from the start of the log, as if none were given; null threw a TypeError.
    await log.append(enc('first'));
    const second = await log.append(enc('second'));
    await expect(log.entries({ form: second.index } as never).next()).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/unknown option 'form'/),
    });
    await expect(log.entries(null as never).next()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    // null read from the start of the log, as a missing `from` does.
    await expect(log.entries({ from: null } as never).next()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const inflight = log.append(enc('late')); // made before close: close lets it commit
    await log.close();
    await expect(inflight).resolves.toMatchObject({ index: expect.any(Number) });
    await expect(log.append(enc('after'))).rejects.toMatchObject({ code: 'LOG_CLOSED' });
    await expect(log.barrier()).rejects.toMatchObject({ code: 'LOG_CLOSED' });
    await expect(ReplicatedLog.open({ dataDir: '' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(ReplicatedLog.open({ dataDir: dir, tickMs: -1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(ReplicatedLog.open({ dataDir: dir, id: 2, peers: { 1: '127.0.0.1:1' } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('answers status() and metrics() after close, though its WAL then answers no reads: the figures of the moment it closed', async () => {
    const dir = fresh();
    const wal = await Wal.open(join(dir, 'wal'));
    const log = await ReplicatedLog.open({ dataDir: dir }, { wal });
    for (let k = 0; k < 5; k++) await log.append(enc(String(k)));
    const before = log.status();
    await log.close();
    expect(wal.closed).toBe(true);
    expect(() => wal.lastIndex).toThrow(expect.objectContaining({ code: 'WAL_CLOSED' }));
    const after = log.status();
    expect(after.role).toBe('closed');
    expect(after.lastIndex).toBe(before.lastIndex);
    expect(after.firstIndex).toBe(before.firstIndex);
    const m = log.metrics();
    expect(m.walBytesWritten).toBeGreaterThan(0);
    expect(m.walSegments).toBeGreaterThan(0);
    // Its WAL is not asked: a reader of a closed log is refused at once, not ended as if the log were empty.
    await expect(log.entries()[Symbol.asyncIterator]().next()).rejects.toMatchObject({ code: 'LOG_CLOSED' });
  });

  it('refuses a tickMs or timeoutMs longer than a Node timer can wait', async () => {
    const dir = fresh();
    // Node fires a longer timer after 1 ms: an append waiting for a leader failed at once, "not committed within 2147483648 ms".
    await expect(ReplicatedLog.open({ dataDir: dir, timeoutMs: 2 ** 31 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/timeoutMs/),
    });
    await expect(ReplicatedLog.open({ dataDir: dir, tickMs: 2 ** 31 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/tickMs/),
    });
    const log = await ReplicatedLog.open({ dataDir: dir, timeoutMs: 2 ** 31 - 1 });
    await log.append(enc('fine'));
    await log.close();
  });

  it('refuses to add a member as what it already is, at another address (which would move it) or at its own', async () => {
    const dir = fresh();
    const log = await ReplicatedLog.open({ dataDir: dir });
    const moved = { code: 'ALREADY_MEMBER', nodeId: 1, role: 'voter', message: expect.stringMatching(/already a voter, at embedded; to move it/) };
    await expect(log.addMember(1, '10.0.0.9:7100')).rejects.toMatchObject(moved);
    await expect(log.changeMembership([{ add: 1, address: '10.0.0.9:7100' }])).rejects.toMatchObject(moved);
    await expect(log.addLearner(1, '10.0.0.9:7100')).rejects.toMatchObject(moved);
    // 'embedded' is no address a peer could dial: no add may name it.
    await expect(log.addMember(1, 'embedded')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(log.status().members).toEqual({ 1: 'embedded' });
    await log.close();
  });

  it('refuses a node id that is not a positive integer by what is wrong with it, in every membership call and a transfer', async () => {
    const log = await ReplicatedLog.open({ dataDir: fresh() });
    const badId = (got: string): object => ({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(new RegExp(`id must be a positive integer, got ${got}$`)),
    });
    // These said the log had no peer port to reach node NaN, or that node 1 (the string) was not a voter.
    await expect(log.addMember(NaN, '127.0.0.1:7102')).rejects.toMatchObject(badId('NaN'));
    await expect(log.addLearner('2' as never, '127.0.0.1:7102')).rejects.toMatchObject(badId('"2"'));
    await expect(log.removeMember(1.5)).rejects.toMatchObject(badId('1.5'));
    await expect(log.transferLeadership('1' as never)).rejects.toMatchObject(badId('"1"'));
    await log.transferLeadership(1);
    await log.close();
  });

  it('refuses to add another member to a log without a peer port, which could never reach it', async () => {
    const log = await ReplicatedLog.open({ dataDir: fresh() });
    const noPort = { code: 'INVALID_ARGUMENT', message: expect.stringMatching(/no peer port/) as unknown };
    await expect(log.addMember(2, '127.0.0.1:7102')).rejects.toMatchObject(noPort);
    await expect(log.addLearner(2, '127.0.0.1:7102')).rejects.toMatchObject(noPort);
    await expect(log.changeMembership([{ add: 2, address: '127.0.0.1:7102' }])).rejects.toMatchObject(noPort);
    // Still a voter alone, committing by itself.
    expect(log.status().conf).toEqual({ voters: [1], learners: [] });
    await log.append(enc('still alone'));
    await log.close();
  });

  it("refuses a maxRecordBytes over the WAL's largest entry, which would stop the node when such a record was written", async () => {
    const dir = fresh();
    await expect(ReplicatedLog.open({ dataDir: dir, maxRecordBytes: 2 ** 30 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/maxRecordBytes/),
    });
    const log = await ReplicatedLog.open({ dataDir: dir, maxRecordBytes: 2 ** 30 - 2 ** 20, maxPendingBytes: 2 ** 30 });
    await log.append(enc('fine'));
    await log.close();
  });

  it('an append whose buffer is detached fails with INVALID_ARGUMENT; the appends of its turn commit and the node runs on', async () => {
    const dir = fresh();
    const log = await ReplicatedLog.open({ dataDir: dir, stateMachine: new RecordingMachine() });
    const detached = (u: Uint8Array): void => void structuredClone(u.buffer, { transfer: [u.buffer as ArrayBuffer] });
    const before = new Uint8Array(8);
    detached(before);
    await expect(log.append(before)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    // Transferred after the call, before the end of the turn, when the record is read.
    const first = log.append(enc('first'));
    const late = new Uint8Array(8).fill(7);
    const lost = log.append(late);
    const last = log.append(enc('last'));
    detached(late);
    await expect(lost).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await Promise.all([first, last]);
    await log.append(enc('next turn'));
    expect(log.status().role).toBe('leader');
    await log.close();
    const sm = new RecordingMachine();
    const again = await ReplicatedLog.open({ dataDir: dir, stateMachine: sm });
    await again.barrier();
    expect(sm.applied.map((r) => r.data)).toEqual(['first', 'last', 'next turn']);
    await again.close();
  });

  it('an open that fails (its port is taken) releases the directory for the next one', async () => {
    const { createServer } = await import('node:net');
    const squatter = createServer();
    await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', r));
    const port = (squatter.address() as { port: number }).port;
    const dir = fresh();
    await expect(ReplicatedLog.open({ dataDir: dir, id: 1, listen: `127.0.0.1:${port}`, insecure: true })).rejects.toMatchObject({
      code: 'TRANSPORT_LISTEN_FAILED',
      message: expect.stringMatching(/EADDRINUSE/),
    });
    await new Promise((r) => squatter.close(r));
    const log = await ReplicatedLog.open({ dataDir: dir });
    await log.append(enc('fine'));
    await log.close();
  });

  it('close() holds the process open until it is done: a process whose only work is the close it awaits gets to the end of it', async () => {
    const dir = fresh();
    const { code, stdout, stderr } = await runChild('./close-child.ts', [dir, '100']);
    expect({ code, stdout, stderr }).toMatchObject({ code: 0, stdout: expect.stringContaining('"closed":true') });
    const { acked } = JSON.parse(stdout.trim().split('\n').at(-1)!) as { acked: number[] };
    expect(acked.length).toBeGreaterThan(0);
    // What the close acknowledged is there after it.
    const sm = new RecordingMachine();
    const again = await ReplicatedLog.open({ dataDir: dir, stateMachine: sm });
    const seen = new Set(sm.applied.map((a) => a.index));
    for (const i of acked) expect(seen.has(i)).toBe(true);
    await again.close();
  });

  it('a second open of the same directory fails with the WAL lock error', async () => {
    const dir = fresh();
    const log = await ReplicatedLog.open({ dataDir: dir });
    await expect(ReplicatedLog.open({ dataDir: dir })).rejects.toMatchObject({ code: 'WAL_LOCKED' });
    await log.close();
  });
});
