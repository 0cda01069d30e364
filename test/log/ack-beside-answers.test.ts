// A follower's acknowledgement of an append promises the leader that the entries are on its
// disk: the leader counts it toward a commit. The core lists it in Ready.messagesAfterPersist
// for that reason, apart from the answers it may send at once (Ready.messages). Here one turn
// delivers an append and a heartbeat, so that the follower's single Ready carries both kinds,
// and the follower's write is held until the test lets it finish.
import { afterEach, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { EntryType, MessageType, type Message } from '../../src/raft/types.js';
import type { Transport, TransportHandlers } from '../../src/transport/transport.js';
import { Wal, type WalEntry, type WalHardState } from '../../src/wal/index.js';
import { msg } from '../raft/network.js';
import { tempDir, waitFor } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** From leader 1, in its term 1, to this follower, node 2. */
const fromLeader = (type: MessageType, fields: Partial<Message>): Message => msg({ type, from: 1, to: 2, term: 1, ...fields });

it('a follower whose Ready carries answers to send at once and an acknowledgement sends the acknowledgement only once its write is durable', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const wal = await Wal.open(t.dir, { sync: 'none' });
  // Once `hold` is set, every write stays unfinished until release() (the WAL's own write has run).
  let hold = false;
  const held: Array<() => void> = [];
  const release = (): void => {
    hold = false;
    for (const r of held.splice(0)) r();
  };
  const append = wal.append.bind(wal);
  wal.append = (entries: readonly WalEntry[], hs?: WalHardState): Promise<void> => {
    const done = append(entries, hs);
    if (!hold) return done;
    return done.then(() => new Promise<void>((resolve) => held.push(resolve)));
  };

  let handlers: TransportHandlers | null = null;
  const sent: Message[] = [];
  const transport: Transport = {
    start: async (h) => void (handlers = h),
    send: (ms) => void sent.push(...ms),
    addPeer: () => {},
    removePeer: () => {},
    close: async () => {},
  };
  const log = await ReplicatedLog.open(
    { dataDir: t.dir, id: 2, peers: { 1: '127.0.0.1:1', 2: '127.0.0.1:2', 3: '127.0.0.1:3' }, sync: 'none', electionTicks: 100_000 },
    { wal, transport },
  );
  cleanups.push(() => {
    release();
    return log.close();
  });
  expect(handlers).not.toBeNull();

  hold = true;
  // One turn: both are stepped before the driver's next Ready.
  handlers!.onMessage(fromLeader(MessageType.MsgApp, { entries: [{ index: 1, term: 1, type: EntryType.Normal, data: new Uint8Array(0) }] }));
  handlers!.onMessage(fromLeader(MessageType.MsgHeartbeat, {}));

  const acks = (): Message[] => sent.filter((m) => m.type === MessageType.MsgAppResp && !m.reject && m.index >= 1);
  await waitFor('the answer to the heartbeat', () => sent.some((m) => m.type === MessageType.MsgHeartbeatResp));
  await waitFor('the write of entry 1 to start', () => held.length > 0);
  expect(acks()).toEqual([]);

  release();
  await waitFor('the acknowledgement of entry 1', () => acks().length > 0);
  expect(acks().map((m) => m.index)).toContain(1);
});
