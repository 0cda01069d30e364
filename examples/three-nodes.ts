// A three-node cluster in one script, on loopback: each node is what would run
// on its own machine. An append made on any node is replicated to a majority and
// applied everywhere in the same order.
// Run: npx tsx examples/three-nodes.ts [data dir]
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { LogError, ReplicatedLog, readAll, type AppendResult, type LogEntry, type StateMachine } from 'raftlog';

class Journal implements StateMachine<number> {
  readonly lines: string[] = [];
  apply(e: LogEntry): number {
    return this.lines.push(new TextDecoder().decode(e.data));
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify(this.lines));
  }
  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const lines: unknown = JSON.parse(new TextDecoder().decode(await readAll(chunks)));
    if (!Array.isArray(lines) || !lines.every((l) => typeof l === 'string')) throw new TypeError('not a journal snapshot');
    // Not splice(0, n, ...lines): spread as arguments, a journal of some 120,000 lines overflows the stack.
    this.lines.length = 0;
    for (const l of lines) this.lines.push(l);
  }
}

/** Three ports nobody listens on right now. */
async function freePorts(): Promise<number[]> {
  const servers = await Promise.all(
    [0, 1, 2].map(
      () =>
        new Promise<ReturnType<typeof createServer>>((r) => {
          const s = createServer();
          s.listen(0, '127.0.0.1', () => r(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/**
 * NO_LEADER and APPEND_NOT_COMMITTED promise the record was not committed: safe to
 * append again (here on the same node, once an election has had time to finish).
 * APPEND_OUTCOME_UNKNOWN would need a read first; everything else is a real error.
 */
async function appendSurely(log: ReplicatedLog<number>, data: Uint8Array): Promise<AppendResult<number>> {
  for (;;) {
    try {
      return await log.append(data);
    } catch (err) {
      if (!(err instanceof LogError) || (err.code !== 'NO_LEADER' && err.code !== 'APPEND_NOT_COMMITTED')) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const base = process.argv[2] ?? './three-nodes-data';
const ports = await freePorts();
const peers = { 1: `127.0.0.1:${ports[0]}`, 2: `127.0.0.1:${ports[1]}`, 3: `127.0.0.1:${ports[2]}` };
// Every node proves it holds the same secret; on real machines it comes from a file or a vault.
const clusterSecret = randomBytes(32);
const journals = [new Journal(), new Journal(), new Journal()];
const nodes = await Promise.all(
  [1, 2, 3].map((id) => {
    const dataDir = join(base, `node${id}`);
    mkdirSync(dataDir, { recursive: true });
    return ReplicatedLog.open({ dataDir, id, peers, clusterSecret, stateMachine: journals[id - 1]!, clusterId: 'example' });
  }),
);

await appendSurely(nodes[0]!, new TextEncoder().encode('hello from node 1'));
await appendSurely(nodes[2]!, new TextEncoder().encode('hello from node 3')); // any node takes appends: on a follower (node 1 or 3 may lead) it is forwarded to the leader
for (const n of nodes) await n.barrier(); // each node has applied everything committed so far
console.log(
  `leader ${nodes[0]!.status().lead}; every node applied: ${journals.every((j) => j.lines.join('|') === journals[0]!.lines.join('|'))}; ${journals[0]!.lines.join(', ')}`,
);
await Promise.all(nodes.map((n) => n.close()));
