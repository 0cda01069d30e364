// A RESP client of a node that a membership change took out of the cluster: no leader sends
// that node anything more, so its reads and writes are refused at once with NOT_MEMBER, not
// held until the log's timeout, and a read never answers from the state it was left with.
import { afterEach, expect, it } from 'vitest';
import { KvStateMachine } from '../../src/kv/kv-state-machine.js';
import { serveResp } from '../../src/kv/server.js';
import { MessageType } from '../../src/raft/types.js';
import type { ReplicatedLog } from '../../src/log/replicated-log.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { waitFor } from '../log/helpers.js';
import { memoryTrio } from '../log/memory-trio.js';
import { RespClient } from './resp-client.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

// Far past the test's own timeout: a command held until the log's deadline fails the test.
const LOG_TIMEOUT_MS = 600_000;

async function kvTrio(): Promise<{
  net: MemoryNetwork;
  logs: ReplicatedLog<number>[];
  leader: ReplicatedLog<number>;
  client(log: ReplicatedLog<number>): Promise<RespClient>;
}> {
  const kvs = new Map<number, KvStateMachine>();
  const net = new MemoryNetwork();
  const { logs, leader } = await memoryTrio(net, cleanups, (id) => {
    const kv = new KvStateMachine();
    kvs.set(id, kv);
    return { options: { tickMs: 10, electionTicks: 20, heartbeatTicks: 2, timeoutMs: LOG_TIMEOUT_MS, stateMachine: kv as never } };
  });
  const client = async (log: ReplicatedLog<number>): Promise<RespClient> => {
    const server = await serveResp({ log, kv: kvs.get(log.id)!, address: '127.0.0.1:0' });
    cleanups.push(() => server.close());
    const c = await RespClient.connect(Number(server.address.split(':').pop()));
    cleanups.push(() => c.close());
    return c;
  };
  return { net, logs, leader, client };
}

it('a removed node answers GET and SET with NOT_MEMBER at once, and serves none of its stale state', async () => {
  const { logs, leader, client } = await kvTrio();
  const removed = logs.find((l) => l !== leader)!;
  const onRemoved = await client(removed);
  const onLeader = await client(leader);
  expect(await onRemoved.call('SET', 'k', 'before')).toBe('OK');
  expect(await onRemoved.call('GET', 'k')).toBe('before');
  await leader.removeMember(removed.id);
  await waitFor('the removed node to apply its removal', () => !(removed.id in removed.status().members));
  expect(await onLeader.call('SET', 'k', 'after')).toBe('OK');
  const get = await onRemoved.call('GET', 'k');
  expect(get).toBeInstanceOf(Error);
  expect((get as Error).message).toMatch(/^ERR NOT_MEMBER .*removed from the cluster/);
  const set = await onRemoved.call('SET', 'k', 'lost');
  expect(set).toBeInstanceOf(Error);
  expect((set as Error).message).toMatch(/^ERR NOT_MEMBER .*removed from the cluster/);
  expect(await onLeader.call('GET', 'k')).toBe('after');
}, 30_000);

it('a read waiting for its barrier when its node is removed is answered NOT_MEMBER then, not held', async () => {
  const { net, logs, leader, client } = await kvTrio();
  const removed = logs.find((l) => l !== leader)!;
  const onRemoved = await client(removed);
  expect(await onRemoved.call('SET', 'k', 'v')).toBe('OK');
  // The removed node's read requests never reach the leader: the GET waits for its barrier.
  net.filter = (m) => !(m.from === removed.id && m.type === MessageType.MsgReadIndex);
  const get = onRemoved.call('GET', 'k');
  await leader.removeMember(removed.id);
  const reply = await get;
  expect(reply).toBeInstanceOf(Error);
  expect((reply as Error).message).toMatch(/^ERR NOT_MEMBER .*removed from the cluster/);
}, 30_000);

it('a removed leader, once it has handed off and knows no leader, still answers NOT_MEMBER rather than NO_LEADER', async () => {
  const { leader, client } = await kvTrio();
  const onRemoved = await client(leader);
  expect(await onRemoved.call('SET', 'k', 'v')).toBe('OK');
  await leader.removeMember(leader.id);
  await waitFor('the removed leader to know no leader', () => leader.status().lead === 0);
  // Well past two election timeouts (400 ms here) without a leader, after which a node answers
  // NO_LEADER: ticks delayed by a busy machine make this wait check less, never fail wrongly.
  await new Promise((r) => setTimeout(r, 2_000));
  const reply = await onRemoved.call('GET', 'k');
  expect(reply).toBeInstanceOf(Error);
  expect((reply as Error).message).toMatch(/^ERR NOT_MEMBER .*removed from the cluster/);
}, 30_000);
