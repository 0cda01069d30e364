// A state machine of its own, with snapshots: a tiny key-value store. Every
// `snapshotEvery` records the log asks it for a snapshot and releases the WAL
// below it; a reopen restores the snapshot and replays only the rest.
// Snapshots stream: this one is written one line per key and read back line by
// line, so no state of any size has to exist as one buffer.
// Run: npx tsx examples/snapshots.ts [data dir]
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { ReplicatedLog, type LogEntry, type StateMachine } from 'raftlog';

type Command = { set: string; value: string } | { del: string };

class KeyValue implements StateMachine<boolean> {
  readonly map = new Map<string, string>();
  restoredAt = 0;

  apply(e: LogEntry): boolean {
    const c = JSON.parse(new TextDecoder().decode(e.data)) as Command;
    if ('set' in c) {
      this.map.set(c.set, c.value);
      return true;
    }
    return this.map.delete(c.del);
  }
  // The entries are listed now; the lines are made as the log reads them.
  snapshot(): AsyncIterable<Uint8Array> {
    const entries = [...this.map];
    return (async function* () {
      for (const e of entries) yield new TextEncoder().encode(JSON.stringify(e) + '\n');
    })();
  }
  async restore(chunks: AsyncIterable<Uint8Array>, meta: { index: number }): Promise<void> {
    this.map.clear();
    const lines = createInterface({ input: Readable.from(chunks), crlfDelay: Infinity });
    for await (const line of lines) {
      const pair: unknown = JSON.parse(line);
      // Destructured unchecked, a damaged line such as "ab" would become the key a.
      if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string')
        throw new TypeError(`not a [key, value] line: ${line.slice(0, 80)}`);
      this.map.set(pair[0], pair[1]);
    }
    this.restoredAt = meta.index;
  }
}

const dataDir = process.argv[2] ?? './snapshots-data';
const encode = (c: Command): Uint8Array => new TextEncoder().encode(JSON.stringify(c));

let kv = new KeyValue();
let log = await ReplicatedLog.open({ dataDir, stateMachine: kv, snapshotEvery: 100 });
for (let i = 0; i < 250; i++) await log.append(encode({ set: `key${i % 50}`, value: `v${i}` }));
await log.append(encode({ del: 'key0' }));
await log.close();

kv = new KeyValue();
log = await ReplicatedLog.open({ dataDir, stateMachine: kv, snapshotEvery: 100 });
await log.barrier();
const s = log.status();
console.log(`keys ${kv.map.size}, key49=${kv.map.get('key49')}, restored from a snapshot at ${kv.restoredAt}, WAL from ${s.firstIndex}`);
await log.close();
