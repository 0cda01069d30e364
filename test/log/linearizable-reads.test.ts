// barrier() then reading the state machine is a linearizable read, on any node,
// also on a follower that trails the leader by hundreds of milliseconds. The
// same workload reading without the barrier is caught by the checker: the
// lagging follower makes stale reads certain, so the test can fail.
import { afterEach, describe, expect, it } from 'vitest';
import { encodeCommand } from '../../src/kv/kv-state-machine.js';
import type { LogError } from '../../src/log/errors.js';
import { checkRegisters, describeHistory } from '../lin/checker.js';
import { HistoryRecorder, laggingCluster, type KvMember, type LaggingCluster } from '../lin/lagging-cluster.js';
import { seeded, testSeed } from '../seeded.js';

const WORKERS = 6;
const OPS_PER_WORKER = 20;
const KEYS = ['a', 'b'];

const notApplied = (err: unknown): boolean => ['APPEND_NOT_COMMITTED', 'NO_LEADER'].includes((err as LogError).code);

function write(h: HistoryRecorder, client: string, m: KvMember, key: string, value: string): Promise<void> {
  return h.write(client, key, value, () => m.log.append(encodeCommand(['SET', Buffer.from(key), Buffer.from(value)])), notApplied);
}

function read(h: HistoryRecorder, client: string, m: KvMember, key: string, barrier: boolean): Promise<void> {
  return h.read(client, key, async () => {
    if (barrier) await m.log.barrier();
    return m.kv.get(Buffer.from(key))?.toString() ?? null;
  });
}

describe('reads through log.barrier() on a 3-node cluster with a lagging follower', () => {
  let c: LaggingCluster | undefined;
  afterEach(async () => {
    await c?.close();
    c = undefined;
  });

  it('a concurrent history of writes and barrier reads on every node is linearizable', async () => {
    const seed = testSeed('barrier reads linearizable');
    const rnd = seeded(seed ^ 0x11);
    c = await laggingCluster(seed);
    const cl = c;
    const h = new HistoryRecorder();
    // The lagging follower gets the most traffic: it is where a stale read would come from.
    const nodes = [cl.leader, cl.other, cl.lagging, cl.lagging];
    await Promise.all(
      Array.from({ length: WORKERS }, async (_, w) => {
        for (let i = 0; i < OPS_PER_WORKER; i++) {
          const m = nodes[Math.floor(rnd() * nodes.length)]!;
          const key = KEYS[Math.floor(rnd() * KEYS.length)]!;
          const client = `w${w}@${m.id}`;
          if (rnd() < 0.5) await write(h, client, m, key, `w${w}-${i}`);
          else await read(h, client, m, key, true);
        }
      }),
    );
    const laggingReads = h.ops.filter((o) => o.kind === 'read' && String(o.client).endsWith(`@${cl.lagging.id}`)).length;
    expect(laggingReads, 'reads served by the lagging follower').toBeGreaterThan(5);
    const result = checkRegisters(h.ops);
    expect(result.ok, `not linearizable (seed ${seed}), key ${result.key}:\n${describeHistory(result.history ?? [])}`).toBe(true);
    expect(result.ops).toBeGreaterThan(WORKERS * OPS_PER_WORKER * 0.8);
  });

  it('the same reads without the barrier are caught: the lagging follower serves stale values', async () => {
    const seed = testSeed('reads without barrier are stale');
    c = await laggingCluster(seed);
    const cl = c;
    const h = new HistoryRecorder();
    // A write acknowledged by the leader, then at once a read on the lagging follower.
    for (let i = 0; i < 10; i++) {
      await write(h, 'writer', cl.leader, 'k', `v${i}`);
      await read(h, `reader@${cl.lagging.id}`, cl.lagging, 'k', false);
    }
    const result = checkRegisters(h.ops);
    expect(result.ok, `a stale read went unnoticed (seed ${seed}):\n${describeHistory(h.ops)}`).toBe(false);
    // And with the barrier the very same pattern is fine.
    const safe = new HistoryRecorder();
    for (let i = 0; i < 5; i++) {
      await write(safe, 'writer', cl.leader, 'k2', `v${i}`);
      await read(safe, `reader@${cl.lagging.id}`, cl.lagging, 'k2', true);
    }
    expect(safe.reads).toBe(5);
    expect(checkRegisters(safe.ops).ok).toBe(true);
  });
});
