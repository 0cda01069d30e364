// The edges of the embedded API: options are checked before anything is created,
// a record too large to replicate is refused, in-flight work is bounded, and a
// node cut off from every leader answers at once instead of holding requests.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { MessageType, type Message } from '../../src/raft/types.js';
import type { TransportHandlers } from '../../src/transport/transport.js';
import { enc, freePorts, tempDir, waitFor } from './helpers.js';
import { msg } from '../raft/network.js';

describe('ReplicatedLog limits', () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const fresh = (): string => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    return t.dir;
  };
  /** A transport the test drives: what the node sends is kept, and `deliver` hands it a message. */
  const scriptedTransport = () => {
    let handlers: TransportHandlers | undefined;
    const sent: Message[] = [];
    const transport = {
      start: async (h: TransportHandlers) => {
        handlers = h;
      },
      send: (ms: Message[]) => void sent.push(...ms),
      addPeer: () => undefined,
      removePeer: () => undefined,
      close: async () => undefined,
    };
    return { transport, sent, deliver: (m: Message) => handlers!.onMessage(m) };
  };
  const threePeers = { 1: '127.0.0.1:1', 2: '127.0.0.1:2', 3: '127.0.0.1:3' };
  /** A message of node 2, leader of term 1, to node 1. */
  const from2 = (type: MessageType): Message => msg({ type, from: 2, to: 1, term: 1 });

  it('refuses unknown and ill-typed options by name, before creating any file', async () => {
    const dir = join(fresh(), 'never');
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ snapshotevery: 5 }, /unknown option 'snapshotevery'/],
      [{ sync: 'sometimes' }, /sync must be one of 'always', 'none'/],
      [{ listen: 'nowhere' }, /listen must be 'host:port'/],
      [{ maxRecordBytes: 0 }, /maxRecordBytes must be a positive integer/],
      [{ maxInflightBytes: 1.5 }, /maxInflightBytes must be a positive integer/],
      [{ cacheBytes: -1 }, /cacheBytes must be a non-negative integer/],
      // Refused by the WAL, as WAL_INVALID_ARGUMENT: an option of open(), INVALID_ARGUMENT like the others.
      [{ segmentBytes: 100 }, /segmentBytes must be an integer from 4096 to 2\^30, got 100/],
      [{ logger: { warn() {} } }, /logger must have the methods/],
      [{ stateMachine: {} }, /stateMachine must have the methods apply, snapshot, restore/],
      [{ electionTicks: 3, heartbeatTicks: 3 }, /heartbeatTicks \(3\) must be below electionTicks \(3\)/],
      // An election timeout of 2 ms is over before a loaded node's turn is: its followers would elect without end.
      [{ electionTicks: 2, heartbeatTicks: 1, tickMs: 1 }, /electionTicks × tickMs \(2 ms\) must be at least 100 ms/],
      [{ electionTicks: 9, tickMs: 11 }, /electionTicks × tickMs \(99 ms\) must be at least 100 ms/],
      // A peer connection quiet for three election timeouts is closed: a timer Node cannot set fired
      // after 1 ms (with a warning on stderr), and every connection was closed as soon as it opened.
      [{ electionTicks: 20_000_000 }, /electionTicks × tickMs \(1000000000 ms\) must be at most 715827882 ms/],
      [{ electionTicks: 1_000_000, tickMs: 1000 }, /electionTicks × tickMs \(1000000000 ms\)/],
      // A record between the two was refused as OVERLOADED ('retry later') even on an idle log, at every retry.
      [{ maxRecordBytes: 64, maxPendingBytes: 32 }, /maxPendingBytes \(32\) must be at least maxRecordBytes \(64\)/],
      [{ maxRecordBytes: 512 * 1024 * 1024 }, /maxPendingBytes \(268435456\) must be at least maxRecordBytes \(536870912\)/],
      // Every hello carries it: a longer one made each too large for a peer to read, and no handshake succeeded.
      [{ clusterId: 'x'.repeat(257) }, /clusterId must be a non-empty string of at most 256 UTF-8 bytes/],
      // Compared byte for byte with its peers': blank, or with a pasted line end, it named no cluster another node was given.
      [{ clusterId: ' ' }, /clusterId must be .*not blank and without control characters/],
      [{ clusterId: 'prod\n' }, /clusterId must be .*not blank and without control characters/],
      [{ peers: { 1: '127.0.0.1:1', x: 'a:1' } }, /bad peer x/],
      [{ peers: { 1: '127.0.0.1:1', 2: '127.0.0.1:99999' } }, /bad peer 2=.127\.0\.0\.1:99999/],
      // A Map or an array has no entries of its own: read as an object, it named no peers, and the
      // node opened as a single-node log of its own.
      [
        {
          peers: new Map([
            [1, '127.0.0.1:1'],
            [2, '127.0.0.1:2'],
          ]),
        },
        /peers must be an object of id: 'host:port', got a Map/,
      ],
      [{ peers: [] }, /peers must be an object of id: 'host:port', got an array/],
      [{ listen: '127.0.0.1:65536' }, /listen must be 'host:port', with a port up to 65535/],
      [{ listen: '127.0.0.1:0', tls: { key: 'not a key', cert: 'not a certificate', ca: 'no CA' } }, /tls \(key, cert, ca\) cannot be used: .*PEM/],
      // Without its material a TLS listener opened, and no peer could ever complete a handshake with it.
      [{ listen: '127.0.0.1:0', tls: {} }, /tls must have key, cert and ca/],
      [{ listen: '127.0.0.1:0', tls: { key: 'k', cert: 'c', CA: 'a' } }, /tls must have key, cert and ca/],
    ];
    for (const [extra, why] of bad) {
      await expect(ReplicatedLog.open({ dataDir: dir, ...extra } as never)).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.stringMatching(why),
      });
    }
    expect(existsSync(dir)).toBe(false);
  });

  it('reads only own options, each once, and refuses keys and getters that are not options', async () => {
    const dir = join(fresh(), 'never');
    const boom = (): never => {
      throw new Error('boom');
    };
    const bad: Array<[object, RegExp]> = [
      // Looked up in the table of checks, these found Object.prototype's: a raw TypeError ('check is
      // not a function'), and 'constructor 1, got 1'.
      [JSON.parse(`{"dataDir": ${JSON.stringify(dir)}, "__proto__": {"id": 2}}`), /unknown option '__proto__'/],
      [{ dataDir: dir, constructor: 1 }, /unknown option 'constructor'/],
      // An inherited dataDir passed the check that it was given, then failed as LOG_OPEN_FAILED.
      [Object.create({ dataDir: dir }), /dataDir is required/],
      // A getter that throws: its raw Error, uncoded.
      [
        {
          dataDir: dir,
          get id() {
            return boom();
          },
        },
        /the options cannot be read: boom/,
      ],
      [
        {
          dataDir: dir,
          peers: {
            get 1() {
              return boom();
            },
          },
        },
        /the options cannot be read: boom/,
      ],
      [
        {
          dataDir: dir,
          stateMachine: {
            get apply() {
              return boom();
            },
          },
        },
        /the options cannot be read: boom/,
      ],
    ];
    for (const [options, why] of bad) {
      await expect(ReplicatedLog.open(options as never)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(why) });
    }
    expect(existsSync(dir)).toBe(false);
    // An inherited option is not an option: it was checked (heartbeatTicks 50 is not below
    // electionTicks 10) though the log would have run without it.
    const log = await ReplicatedLog.open(Object.assign(Object.create({ heartbeatTicks: 50, sync: 'sometimes' }), { dataDir: fresh() }));
    cleanups.push(() => log.close());
    expect((await log.append(enc('x'))).index).toBeGreaterThan(0);
  });

  it('refuses parts given in deps that it could not run on, before creating any file', async () => {
    const dir = join(fresh(), 'never');
    const bad: Array<[unknown, RegExp]> = [
      // Each failed later with a raw TypeError ('wal.snapshot' of a number, 'deps.random is not a
      // function'), or was ignored (a misspelt key left the default in place).
      [{ wal: 5 }, /deps\.wal must have the methods append, .*got 5/],
      [{ snapshots: {} }, /deps\.snapshots must have the methods save, /],
      [{ transport: { send() {} } }, /deps\.transport must have the methods start, send/],
      [{ clock: { setTimeout() {} } }, /deps\.clock must have the methods setTimeout, defer/],
      [{ random: 0.5 }, /deps\.random must be a function, got 0\.5/],
      [{ logger: console }, /deps\.logger must have the methods trace, /],
      [{ peerInstances: 'none' }, /deps\.peerInstances must have the methods forget, settled/],
      [{ Transport: null }, /unknown dependency 'Transport'/],
      [JSON.parse('{"__proto__": {"wal": 1}}'), /unknown dependency '__proto__'/],
      [5, /deps must be an object, got 5/],
      [
        {
          get clock() {
            throw new Error('boom');
          },
        },
        /the deps cannot be read: boom/,
      ],
    ];
    for (const [deps, why] of bad) {
      await expect(ReplicatedLog.open({ dataDir: dir }, deps as never)).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.stringMatching(why),
      });
    }
    expect(existsSync(dir)).toBe(false);
    // Null where a part may be absent, and undefined anywhere, take the defaults.
    const log = await ReplicatedLog.open({ dataDir: fresh() }, { transport: null, peerInstances: null, clock: undefined });
    cleanups.push(() => log.close());
    expect((await log.append(enc('x'))).index).toBeGreaterThan(0);
  });

  it('refuses a record over maxRecordBytes and bounds what is in flight', async () => {
    const log = await ReplicatedLog.open({ dataDir: fresh(), maxRecordBytes: 16, maxPendingAppends: 3, maxPendingBytes: 40 });
    cleanups.push(() => log.close());
    await expect(log.append(new Uint8Array(17))).rejects.toMatchObject({ code: 'RECORD_TOO_LARGE' });
    expect((await log.append(new Uint8Array(16))).index).toBeGreaterThan(0);
    // Four appends in one turn: the fourth is over maxPendingAppends and refused at once.
    const four = await Promise.allSettled([1, 2, 3, 4].map(() => log.append(enc('x'))));
    expect(four.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected']);
    expect((four[3] as PromiseRejectedResult).reason).toMatchObject({ code: 'OVERLOADED' });
    // 16 + 16 + 16 bytes > 40: the third is over maxPendingBytes.
    const bytes = await Promise.allSettled([1, 2, 3].map(() => log.append(new Uint8Array(16))));
    expect(bytes.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    expect((bytes[2] as PromiseRejectedResult).reason).toMatchObject({ code: 'OVERLOADED' });
    // Settled appends free their room.
    await log.append(new Uint8Array(16));
  });

  it("cacheBytes is the WAL's cache budget", async () => {
    const cached = async (cacheBytes: number | undefined): Promise<number> => {
      const log = await ReplicatedLog.open({ dataDir: fresh(), cacheBytes });
      cleanups.push(() => log.close());
      for (let i = 0; i < 50; i++) await log.append(new Uint8Array(1000));
      return log.metrics().walCachedBytes;
    };
    // The default holds the 1 MiB slab the entries were packed into; 0 holds nothing once they are durable.
    expect(await cached(undefined)).toBeGreaterThanOrEqual(1024 * 1024);
    expect(await cached(0)).toBe(0);
  });

  it('a node that knows no leader for two election timeouts answers appends and barriers with NO_LEADER at once', async () => {
    const [mine, gone2, gone3] = await freePorts(3);
    const peers = { 1: `127.0.0.1:${mine}`, 2: `127.0.0.1:${gone2}`, 3: `127.0.0.1:${gone3}` };
    // timeoutMs far beyond the test's own timeout: only the fail-fast path can settle these.
    const log = await ReplicatedLog.open({
      dataDir: fresh(),
      id: 1,
      peers,
      clusterSecret: 'a secret for the limits tests',
      tickMs: 20,
      electionTicks: 5,
      heartbeatTicks: 1,
      timeoutMs: 3_600_000,
    });
    cleanups.push(() => log.close());
    // Made before the node gave up on finding a leader: held, then answered when it does.
    const early = log.append(enc('early'));
    const earlyBarrier = log.barrier();
    await expect(early).rejects.toMatchObject({ code: 'NO_LEADER' });
    await expect(earlyBarrier).rejects.toMatchObject({ code: 'NO_LEADER' });
    // From then on, at once.
    await expect(log.append(enc('late'))).rejects.toMatchObject({ code: 'NO_LEADER' });
    await expect(log.barrier()).rejects.toMatchObject({ code: 'NO_LEADER' });
    // A leadership transfer too: no leader this node knows could hand over.
    await expect(log.transferLeadership(2)).rejects.toMatchObject({ code: 'NO_LEADER' });
    expect(log.status().lead).toBe(0);
  });

  it('a leadership transfer that timed out waiting for a leader is not asked for when one appears later', async () => {
    const { transport, sent, deliver } = scriptedTransport();
    // An election timeout far beyond the test's: node 1 waits for a leader rather than campaigning.
    const log = await ReplicatedLog.open({ dataDir: fresh(), peers: threePeers, tickMs: 10, electionTicks: 10_000, timeoutMs: 100 }, { transport });
    cleanups.push(() => log.close());
    await expect(log.transferLeadership(3)).rejects.toMatchObject({ code: 'TIMEOUT' });
    deliver(from2(MessageType.MsgHeartbeat));
    await waitFor('node 2 to be known as leader', () => log.status().lead === 2);
    await log.barrier().catch(() => undefined); // a turn of the driver or more, and a message of its own to node 2
    // The caller was told TIMEOUT: leadership must not move to node 3 behind its back.
    expect(sent.filter((m) => m.type === MessageType.MsgTransferLeader)).toEqual([]);
  });

  it('close() answers appends still waiting for a leader with LOG_CLOSED, and proposes none to a leader that appears while it closes', async () => {
    const { transport, sent, deliver } = scriptedTransport();
    // Time stands still: no tick, no election, and no grace ever runs out.
    const clock = { setTimeout: () => () => undefined, defer: (fn: () => void) => void setImmediate(fn) };
    const log = await ReplicatedLog.open({ dataDir: fresh(), peers: threePeers }, { transport, clock });
    // Its outcome is taken at once: close() rejects it before this test looks.
    const outcome = log.append(enc('queued')).then(
      () => 'appended',
      (err: { code?: string }) => err.code,
    );
    await new Promise(setImmediate); // the end of its turn: no leader to take it
    const closing = log.close();
    deliver(from2(MessageType.MsgHeartbeat));
    await new Promise(setImmediate);
    expect(sent.filter((m) => m.type === MessageType.MsgProp)).toEqual([]);
    expect(await outcome).toBe('LOG_CLOSED');
    await closing;
  });

  it("answers a leadership transfer asked while the core has just lost the leader the log still names with the log's codes", async () => {
    const { transport, deliver } = scriptedTransport();
    const log = await ReplicatedLog.open({ dataDir: fresh(), peers: threePeers, tickMs: 10, electionTicks: 40, timeoutMs: 300 }, { transport });
    cleanups.push(() => log.close());
    deliver(from2(MessageType.MsgHeartbeat));
    await waitFor('node 2 to be known as leader', () => log.status().lead === 2);
    // Leader 2 hands leadership to node 1, which campaigns at once: the core knows no leader, and the
    // log learns so at its next turn. A transfer asked in between waits for a leader, as one asked later does.
    deliver(from2(MessageType.MsgTimeoutNow));
    const transfer = log.transferLeadership(3);
    const err = await transfer.then(
      () => null,
      (e: unknown) => e as { code?: string },
    );
    expect(err?.code).toBe('TIMEOUT');
  });
});
