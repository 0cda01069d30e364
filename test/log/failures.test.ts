// How a node fails: an open that fails always settles and frees the directory; a
// storage failure stops the node where everyone can see it (status, pending
// appends), and close() then frees everything so the same process can reopen;
// an entry that cannot be decoded stops the node instead of being skipped.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { readAll } from '../../src/log/state-machine.js';
import { RECORD_VERSION } from '../../src/log/record-batch.js';
import type { LogStore, SnapshotMarker } from '../../src/storage/log-store.js';
import type { Entry, HardState } from '../../src/raft/types.js';
import { Wal, WalIoError } from '../../src/wal/index.js';
import { BrokenLogger, looseErrors } from '../broken-logger.js';
import { RecordingLogger } from '../recording-logger.js';
import { RecordingMachine, enc, fdsUnder, tempDir, waitFor } from './helpers.js';

/** A real WAL whose appends start failing after `okAppends` of them, as a disk that returns EIO would. */
class FailingStore implements LogStore {
  appends = 0;
  closed = false;
  constructor(
    private readonly wal: Wal,
    public okAppends: number,
  ) {}
  get hardState(): HardState {
    return this.wal.hardState;
  }
  get snapshot(): SnapshotMarker | null {
    return this.wal.snapshot;
  }
  get firstIndex(): number {
    return this.wal.firstIndex;
  }
  get lastIndex(): number {
    return this.wal.lastIndex;
  }
  append(entries: Entry[], hardState?: HardState): Promise<void> {
    if (++this.appends > this.okAppends) return Promise.reject(new WalIoError('fdatasync: Input/output error (injected)'));
    return this.wal.append(entries, hardState);
  }
  entriesSync(lo: number, hi: number, maxBytes?: number): Entry[] {
    return this.wal.entriesSync(lo, hi, maxBytes);
  }
  entries(lo: number, hi: number, maxBytes?: number): Promise<Entry[]> {
    return this.wal.entries(lo, hi, maxBytes);
  }
  get cachedFrom(): number {
    return this.wal.cachedFrom;
  }
  dataLength(index: number): number {
    return this.wal.dataLength(index);
  }
  term(index: number): number {
    return this.wal.term(index);
  }
  saveSnapshot(marker: SnapshotMarker, options?: { discardLog?: boolean }): Promise<void> {
    return this.wal.saveSnapshot(marker, options);
  }
  releaseTo(index: number): Promise<void> {
    return this.wal.releaseTo(index);
  }
  async close(): Promise<void> {
    this.closed = true;
    await this.wal.close();
  }
}

/** A state machine whose snapshot stream stalls for good once the store has opened the snapshot's file; `underway` says when it has. */
function stallingMachine(): { sm: RecordingMachine; underway: () => boolean } {
  const sm = new RecordingMachine();
  let underway = false;
  sm.snapshot = (() =>
    (async function* () {
      yield Buffer.alloc(2 * 1024 * 1024, 1); // more than the store gathers before it opens the file
      underway = true;
      await new Promise(() => undefined);
    })()) as unknown as RecordingMachine['snapshot'];
  return { sm, underway: () => underway };
}

describe('ReplicatedLog failures', () => {
  const dirs: Array<{ cleanup(): void }> = [];
  const fresh = (): string => {
    const d = tempDir();
    dirs.push(d);
    return d.dir;
  };
  afterEach(() => {
    vi.restoreAllMocks();
    for (const d of dirs.splice(0)) d.cleanup();
  });

  it('an open whose WAL fails while the node takes office rejects with a code and frees the directory', async () => {
    const dir = fresh();
    const store = new FailingStore(await Wal.open(`${dir}/wal`), 0);
    const logger = new RecordingLogger();
    await expect(ReplicatedLog.open({ dataDir: dir, logger }, { wal: store })).rejects.toMatchObject({ code: 'LOG_FATAL' });
    expect(store.closed).toBe(true);
    expect(logger.lines.some((l) => l.level === 'error' && l.fields['node'] === 1)).toBe(true);
    // The lock is free: the same process opens the directory again, and it works.
    const log = await ReplicatedLog.open({ dataDir: dir });
    await log.append(enc('after'));
    await log.close();
  });

  it('an open that fails after the transport started releases the port and the directory', async () => {
    const dir = fresh();
    const { createServer } = await import('node:net');
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    const store = new FailingStore(await Wal.open(`${dir}/wal`), 0);
    await expect(ReplicatedLog.open({ dataDir: dir, listen: `127.0.0.1:${port}`, insecure: true }, { wal: store })).rejects.toMatchObject({
      code: 'LOG_FATAL',
    });
    // Both are free again: the same port and directory serve a new node.
    const log = await ReplicatedLog.open({ dataDir: dir, listen: `127.0.0.1:${port}`, insecure: true });
    await log.append(enc('after'));
    await log.close();
  });

  it('a storage failure stops the node visibly; close frees everything and a reopen keeps every acknowledged record', async () => {
    const dir = fresh();
    const logger = new RecordingLogger();
    const store = new FailingStore(await Wal.open(`${dir}/wal`), 6);
    const log = await ReplicatedLog.open({ dataDir: dir, stateMachine: new RecordingMachine(), logger }, { wal: store });
    const acked: number[] = [];
    const failures: unknown[] = [];
    for (let i = 0; i < 10; i++) {
      try {
        acked.push((await log.append(enc(`r${i}`))).index);
      } catch (err) {
        failures.push(err);
      }
    }
    expect(acked.length).toBeGreaterThan(0);
    expect(failures.length).toBeGreaterThan(0);
    for (const f of failures) expect(f).toMatchObject({ code: 'LOG_FATAL' });
    const s = log.status();
    expect(s.role).toBe('fatal');
    expect(s.fatal).toMatchObject({ code: 'LOG_FATAL', message: expect.stringMatching(/injected/) });
    await expect(log.barrier()).rejects.toMatchObject({ code: 'LOG_FATAL' });
    expect(logger.lines.filter((l) => l.level === 'error').map((l) => l.fields['code'])).toContain('LOG_FATAL');
    await log.close();
    expect(store.closed).toBe(true);

    const sm = new RecordingMachine();
    const again = await ReplicatedLog.open({ dataDir: dir, stateMachine: sm });
    await again.barrier();
    const seen = new Set(sm.applied.map((a) => a.index));
    for (const i of acked) expect(seen.has(i)).toBe(true);
    expect(again.status().role).toBe('leader');
    await again.close();
  });

  /**
   * Opens a node whose log holds the record 'good' and then, committed, an entry of `type` made
   * of `data`, which passed every checksum: the node must stop on it with LOG_CORRUPT, having
   * applied 'good' and nothing of it. Returns its log lines and the entry's index.
   */
  async function stopsOnEntry(type: number, data: Uint8Array): Promise<{ logger: RecordingLogger; index: number }> {
    const dir = fresh();
    const first = await ReplicatedLog.open({ dataDir: dir });
    const { index, term } = await first.append(enc('good'));
    await first.close();
    const wal = await Wal.open(`${dir}/wal`);
    const hs = wal.hardState;
    await wal.append([{ index: index + 1, term, type, data }], { ...hs, commit: index + 1 });
    await wal.close();

    const sm = new RecordingMachine();
    const logger = new RecordingLogger();
    let log: ReplicatedLog<number> | undefined;
    try {
      log = await ReplicatedLog.open({ dataDir: dir, stateMachine: sm, logger });
      await waitFor('the node to stop', () => log!.status().role === 'fatal');
      expect(log.status().fatal).toMatchObject({ code: 'LOG_CORRUPT' });
    } catch (err) {
      expect(err).toMatchObject({ code: 'LOG_CORRUPT' }); // it may already stop while taking office
    }
    expect(sm.applied.map((a) => a.data)).toEqual(['good']);
    await log?.close();
    return { logger, index: index + 1 };
  }

  it('a committed entry whose record batch cannot be decoded stops the node with LOG_CORRUPT; it is never applied or skipped', async () => {
    // Another batch format: this node cannot tell whose record it is.
    const { logger, index } = await stopsOnEntry(0, Uint8Array.of(RECORD_VERSION + 7, 1, 2, 3));
    expect(logger.has(new RegExp(`entry ${index} cannot be decoded`))).toBe(true);
  });

  it('a committed membership change of an unknown format (3, 0, 255) stops the node with LOG_CORRUPT naming the entry, not as a storage failure', async () => {
    for (const version of [3, 0, 255]) {
      const { logger, index } = await stopsOnEntry(1, Uint8Array.of(version, 0, 1, 0));
      expect(logger.has(new RegExp(`entry ${index} cannot be decoded: invalid conf change: unknown encoding ${version}`)), `version ${version}`).toBe(true);
    }
  });

  it('a state machine that throws stops the node, which names the state machine, not its storage; close frees the directory', async () => {
    const dir = fresh();
    const cases: Array<[string, (sm: RecordingMachine) => void, RegExp]> = [
      [
        'apply',
        (sm) => {
          sm.apply = () => {
            throw new Error('apply refused');
          };
        },
        /state machine's apply\(\) failed: apply refused/,
      ],
      [
        'snapshot',
        (sm) => {
          sm.snapshot = () => {
            throw new Error('snapshot refused');
          };
        },
        /state machine's snapshot\(\) failed: snapshot refused/,
      ],
      [
        'a snapshot stream',
        (sm) => {
          sm.snapshot = (() =>
            (async function* () {
              yield enc('part');
              throw new Error('stream broke');
            })()) as unknown as RecordingMachine['snapshot'];
        },
        /state machine's snapshot\(\) failed: stream broke/,
      ],
      [
        'an async snapshot() that rejects',
        (sm) => {
          sm.snapshot = (async () => {
            await new Promise((r) => setTimeout(r, 10));
            throw new Error('too late');
          }) as unknown as RecordingMachine['snapshot'];
        },
        /state machine's snapshot\(\) failed: snapshot\(\) returned a promise/,
      ],
      [
        // The usual shape, `async snapshot() { ... throw }`: rejected before the store reads a chunk.
        'an async snapshot() that rejects at once',
        (sm) => {
          sm.snapshot = (async () => {
            throw new Error('at once');
          }) as unknown as RecordingMachine['snapshot'];
        },
        /state machine's snapshot\(\) failed: snapshot\(\) returned a promise/,
      ],
    ];
    // The application's own promise must not be left to reject unhandled: that ends a process.
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    onTestFinished(() => void process.off('unhandledRejection', onUnhandled));
    for (const [what, breakIt, message] of cases) {
      const sm = new RecordingMachine();
      const log = await ReplicatedLog.open({ dataDir: dir, stateMachine: sm, snapshotEvery: 1 });
      breakIt(sm);
      const fatal = new Promise((resolve) => log.once('fatal', resolve));
      await log.append(enc(what)).catch(() => undefined);
      await expect(fatal, what).resolves.toMatchObject({ code: 'LOG_FATAL', message: expect.stringMatching(message) });
      expect(log.status().fatal, what).toMatchObject({ code: 'LOG_FATAL', message: expect.stringMatching(message) });
      await expect(log.append(enc('after'))).rejects.toMatchObject({ code: 'LOG_FATAL' });
      await log.close(); // the next round opens the same directory
    }
    await new Promise((r) => setTimeout(r, 50)); // the async snapshot() has rejected by now
    expect(unhandled).toEqual([]);
  });

  it('an apply() that returns a promise stops the node with LOG_FATAL naming apply(); its rejection is never left unhandled', async () => {
    const dir = fresh();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    onTestFinished(() => void process.off('unhandledRejection', onUnhandled));
    const sm = new RecordingMachine();
    const log = await ReplicatedLog.open({ dataDir: dir, stateMachine: sm });
    await log.append(enc('sync'));
    // The usual mistake: `async apply()`, which has not applied the record when it returns.
    sm.apply = (async () => {
      throw new Error('applied later, and failed');
    }) as unknown as RecordingMachine['apply'];
    const fatal = new Promise((resolve) => log.once('fatal', resolve));
    const message = /state machine's apply\(\) failed: apply\(\) returned a promise/;
    await expect(log.append(enc('async'))).rejects.toMatchObject({ code: 'LOG_FATAL', message: expect.stringMatching(message) });
    await expect(fatal).resolves.toMatchObject({ code: 'LOG_FATAL', message: expect.stringMatching(message) });
    expect(log.status().role).toBe('fatal');
    await log.close();
    await new Promise((r) => setTimeout(r, 50)); // a rejection left unhandled is reported by now
    expect(unhandled).toEqual([]);
    const again = await ReplicatedLog.open({ dataDir: dir, stateMachine: new RecordingMachine() });
    await again.barrier();
    expect(again.status().applied).toBeGreaterThanOrEqual(3); // both records are committed: one was acknowledged
    await again.close();
  });

  it("an apply() whose result's then throws, when read or when called, stops the node with LOG_FATAL naming apply(), what then threw its cause", async () => {
    const read = new Error('then read');
    const called = new Error('then called');
    const cases: [unknown, Error][] = [
      [
        {
          get then(): never {
            throw read;
          },
        },
        read,
      ],
      [
        {
          then(): never {
            throw called;
          },
        },
        called,
      ],
    ];
    for (const [result, thrown] of cases) {
      const dir = fresh();
      const sm = new RecordingMachine();
      const log = await ReplicatedLog.open({ dataDir: dir, stateMachine: sm });
      sm.apply = (() => result) as unknown as RecordingMachine['apply'];
      const message = /state machine's apply\(\) failed/;
      const failed = log.append(enc('thenable'));
      await expect(failed).rejects.toMatchObject({ code: 'LOG_FATAL', message: expect.stringMatching(message) });
      await expect(failed).rejects.toHaveProperty('cause', thrown); // the state machine's own error
      expect(log.status().fatal?.message).toMatch(message);
      await log.close();
    }
  });

  it("a state machine's restore() that throws at open fails the open with LOG_FATAL naming restore(), and frees the directory", async () => {
    const dir = fresh();
    const first = await ReplicatedLog.open({ dataDir: dir, stateMachine: new RecordingMachine(), snapshotEvery: 1 });
    await first.append(enc('a'));
    await waitFor('a snapshot', () => first.status().snapshotIndex > 0);
    await first.close();
    const sm = new RecordingMachine();
    sm.restore = async () => {
      throw new Error('restore refused');
    };
    await expect(ReplicatedLog.open({ dataDir: dir, stateMachine: sm })).rejects.toMatchObject({
      code: 'LOG_FATAL',
      message: expect.stringMatching(/state machine's restore\(\) failed: restore refused/),
    });
    const again = await ReplicatedLog.open({ dataDir: dir, stateMachine: new RecordingMachine() });
    await again.close();
  });

  it('a restore() whose readAll() meets a snapshot over its maxBytes fails the open with LOG_FATAL naming restore() and the limit', async () => {
    const dir = fresh();
    const first = await ReplicatedLog.open({ dataDir: dir, stateMachine: new RecordingMachine(), snapshotEvery: 1 });
    await first.append(enc('more than four bytes'));
    await waitFor('a snapshot', () => first.status().snapshotIndex > 0);
    await first.close();
    const sm = new RecordingMachine();
    sm.restore = async (data) => void (await readAll(data, 4));
    await expect(ReplicatedLog.open({ dataDir: dir, stateMachine: sm })).rejects.toMatchObject({
      code: 'LOG_FATAL',
      message: expect.stringMatching(/state machine's restore\(\) failed: the snapshot is over 4 bytes/),
    });
    sm.restore = async (data) => void (await readAll(data, NaN));
    await expect(ReplicatedLog.open({ dataDir: dir, stateMachine: sm })).rejects.toMatchObject({
      code: 'LOG_FATAL',
      message: expect.stringMatching(/state machine's restore\(\) failed: readAll\(data, maxBytes\): maxBytes must be/),
    });
  });

  it('a snapshot that fails once close() has begun is logged, not silently dropped', async () => {
    const dir = fresh();
    const sm = new RecordingMachine();
    const logger = new RecordingLogger();
    let fail: (err: Error) => void = () => undefined;
    const failed = new Promise<never>((_, reject) => (fail = reject));
    failed.catch(() => undefined); // the stream's await handles it; this one only keeps it from counting as unhandled meanwhile
    let underway = false;
    sm.snapshot = (() =>
      (async function* () {
        yield enc('part');
        underway = true; // its first chunk was taken: the snapshot is being written
        await failed;
      })()) as unknown as RecordingMachine['snapshot'];
    const log = await ReplicatedLog.open({ dataDir: dir, stateMachine: sm, snapshotEvery: 1, logger });
    await log.append(enc('a'));
    await waitFor('the snapshot under way', () => underway);
    const closing = log.close();
    fail(new Error('stream broke while closing'));
    await closing;
    await waitFor('the failure to be logged', () => logger.has(/stream broke while closing/));
  });

  it("close() waits for a state machine's snapshot stream that stalls at most timeoutMs, then abandons the write and frees the directory", async () => {
    const dir = fresh();
    const logger = new RecordingLogger();
    const { sm, underway } = stallingMachine();
    const log = await ReplicatedLog.open({ dataDir: dir, stateMachine: sm, snapshotEvery: 1, timeoutMs: 200, logger });
    await log.append(enc('a'));
    await waitFor('the snapshot under way', underway);
    await log.close(); // it never settled: the WAL's lock and the snapshot's file stayed held
    expect(logger.lines.find((l) => /the state machine's stream yielded nothing for 200 ms/.test(l.message))?.fields.code).toBe('LOG_FATAL');
    expect(readdirSync(join(dir, 'snapshots')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const again = await ReplicatedLog.open({ dataDir: dir, stateMachine: new RecordingMachine() });
    await again.barrier();
    expect(again.status().applied).toBeGreaterThanOrEqual(2);
    await again.close();
  });

  it('close() after a storage failure waits for the snapshot being written: no file of the directory is left open', async () => {
    const dir = fresh();
    const store = new FailingStore(await Wal.open(`${dir}/wal`), Infinity);
    const { sm, underway } = stallingMachine(); // abandoned timeoutMs after the node stops
    const log = await ReplicatedLog.open({ dataDir: dir, stateMachine: sm, snapshotEvery: 1, timeoutMs: 200 }, { wal: store });
    await log.append(enc('a'));
    await waitFor('the snapshot under way', underway);
    store.okAppends = store.appends; // the disk fails while the snapshot is being written
    await expect(log.append(enc('b'))).rejects.toMatchObject({ code: 'LOG_FATAL' });
    await log.close();
    expect(fdsUnder(dir)).toEqual([]);
    expect(readdirSync(join(dir, 'snapshots')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('a WAL that fails to close is logged with its code, and close() still resolves', async () => {
    const dir = fresh();
    const logger = new RecordingLogger();
    const store = new FailingStore(await Wal.open(`${dir}/wal`), Infinity);
    const close = store.close.bind(store);
    store.close = async () => {
      await close();
      throw new WalIoError('close: Input/output error (injected)');
    };
    const log = await ReplicatedLog.open({ dataDir: dir, logger }, { wal: store });
    await log.append(enc('a'));
    await log.close();
    expect(logger.lines.find((l) => /closing the WAL failed/.test(l.message))?.fields).toMatchObject({ code: 'WAL_IO' });
  });

  it('a logger that throws stops nothing halfway: a state machine failure still settles each append with LOG_FATAL, and close frees the directory', async () => {
    const dir = fresh();
    const broken = new BrokenLogger();
    const loose = looseErrors();
    const sm = new RecordingMachine();
    // Bounded, so that a promise left pending fails here, naming itself.
    const settled = <T>(p: Promise<T>, what: string): Promise<T> =>
      Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} still pending after 15 s`)), 15_000))]);
    const log = await settled(ReplicatedLog.open({ dataDir: dir, stateMachine: sm, logger: broken }), 'open()');
    await settled(log.append(enc('a')), 'the first append');
    sm.apply = () => {
      throw new Error('apply refused');
    };
    const outcome = log.append(enc('b')).then(
      () => 'resolved',
      (err: unknown) => err,
    );
    expect(await settled(outcome, 'the append apply() refused')).toMatchObject({ code: 'LOG_FATAL', message: expect.stringMatching(/apply refused/) });
    expect(log.status().role).toBe('fatal');
    await log.close();
    expect(fdsUnder(dir)).toEqual([]);
    expect(loose).toEqual([]);
    expect(broken.calls).toBeGreaterThan(0);
  });

  it('the library writes nothing to the console', async () => {
    const spies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((m) => vi.spyOn(console, m));
    const dir = fresh();
    const store = new FailingStore(await Wal.open(`${dir}/wal`), 3);
    const log = await ReplicatedLog.open({ dataDir: dir }, { wal: store });
    await Promise.allSettled([log.append(enc('a')), log.append(enc('b'))]);
    await Promise.allSettled([log.append(enc('c'))]);
    await waitFor('the node to stop', () => log.status().role === 'fatal');
    await log.close();
    for (const s of spies) expect(s).not.toHaveBeenCalled();
  });
});
