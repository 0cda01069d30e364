// The embedded default: one node, no peers, a crash-safe local log.
// Run: npx tsx examples/counter.ts [data dir]
import { ReplicatedLog, readAll, type LogEntry, type StateMachine } from 'raftlog';

class Counter implements StateMachine<number> {
  total = 0;
  apply(e: LogEntry): number {
    return (this.total += e.data[0]!); // once per committed record, in order
  }
  snapshot(): Uint8Array {
    return new Uint8Array(new Float64Array([this.total]).buffer);
  }
  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const bytes = await readAll(chunks, 8); // a damaged snapshot must not become a total of 0, or grow without bound
    if (bytes.byteLength !== 8) throw new RangeError(`a counter snapshot is 8 bytes, got ${bytes.byteLength}`);
    this.total = new Float64Array(new Uint8Array(bytes).buffer)[0]!; // a copy: readAll may return a view into a Buffer's pool
  }
}

const dataDir = process.argv[2] ?? './counter-data';
const counter = new Counter();
const log = await ReplicatedLog.open({ dataDir, stateMachine: counter });
await log.barrier(); // everything committed before this open is applied: the total is current
const before = counter.total;
const { result } = await log.append(Uint8Array.of(5)); // committed, durable, applied
console.log(`total was ${before}, now ${result}`);
await log.close();
