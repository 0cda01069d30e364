// The example state machine: a key-value map changed only by committed commands.
// apply() is deterministic and never throws, since every node must reach the same state
// even from a command that fails (INCR of a non-number fails the same way everywhere).
import { pack, unpack } from 'msgpackr';
import type { LogEntry, StateMachine } from '../log/state-machine.js';

export type KvCommand = ['SET', Buffer, Buffer] | ['DEL', ...Buffer[]] | ['INCR', Buffer];

/** What apply returns: a value for the client, or a Redis-style error message. */
export type KvResult = { ok: 'OK' } | { int: number } | { error: string };

export function encodeCommand(cmd: KvCommand): Uint8Array {
  return pack(cmd);
}

const key = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

export class KvStateMachine implements StateMachine<KvResult> {
  private map = new Map<string, Buffer>();

  get(k: Buffer): Buffer | undefined {
    return this.map.get(key(k));
  }

  has(k: Buffer): boolean {
    return this.map.has(key(k));
  }

  get size(): number {
    return this.map.size;
  }

  apply(entry: LogEntry): KvResult {
    let cmd: unknown;
    try {
      cmd = unpack(entry.data);
    } catch {
      return { error: 'ERR malformed command in the log' };
    }
    if (!Array.isArray(cmd) || !cmd.slice(1).every((a) => a instanceof Uint8Array)) return { error: 'ERR malformed command in the log' };
    const args = cmd.slice(1) as Uint8Array[];
    switch (cmd[0]) {
      case 'SET':
        if (args.length !== 2) break;
        this.map.set(key(args[0]!), Buffer.from(args[1]!));
        return { ok: 'OK' };
      case 'DEL': {
        let n = 0;
        for (const k of args) if (this.map.delete(key(k))) n++;
        return { int: n };
      }
      case 'INCR': {
        if (args.length !== 1) break;
        const k = key(args[0]!);
        const cur = this.map.get(k);
        const s = cur === undefined ? '0' : cur.toString('latin1');
        if (!/^-?(0|[1-9]\d{0,18})$/.test(s) || !Number.isSafeInteger(Number(s) + 1)) return { error: 'ERR value is not an integer or out of range' };
        const v = Number(s) + 1;
        this.map.set(k, Buffer.from(String(v)));
        return { int: v };
      }
    }
    return { error: `ERR malformed command in the log` };
  }

  /**
   * The map as it is now, as a stream: the entries are listed at the call (values are
   * never changed in place, only replaced) and encoded a batch at a time as they are read.
   */
  snapshot(): AsyncIterable<Uint8Array> {
    return encodeKvSnapshot([...this.map]);
  }

  /** Builds the new map pair by pair as the chunks arrive; the old one is replaced at the end. */
  async restore(data: AsyncIterable<Uint8Array>): Promise<void> {
    const map = new Map<string, Buffer>();
    const r = new ChunkReader(data[Symbol.asyncIterator]());
    const magic = await r.take(SNAPSHOT_MAGIC.length);
    if (magic === undefined) {
      this.map = map; // an empty snapshot: an empty map
      return;
    }
    if (!magic.equals(SNAPSHOT_MAGIC)) {
      // The earlier format: one msgpack list of [key, value], read whole.
      const rest = await r.rest();
      const pairs = unpack(Buffer.concat([magic, rest])) as Array<[Uint8Array, Uint8Array]>;
      this.map = new Map(pairs.map(([k, v]) => [key(k), Buffer.from(v)]));
      return;
    }
    for (;;) {
      const kl = await r.take(4);
      if (kl === undefined) break;
      const k = await r.take(kl.readUInt32LE(0));
      const vl = await r.take(4);
      const v = vl === undefined ? undefined : await r.take(vl.readUInt32LE(0));
      if (k === undefined || v === undefined) throw new Error('KV snapshot ends inside an entry');
      map.set(key(k), Buffer.from(v)); // a copy: the chunk it came from is not kept alive
    }
    this.map = map;
  }
}

// Snapshot layout: "RLKV1\n", then per entry u32 LE key length, key, u32 LE value length, value.
const SNAPSHOT_MAGIC = Buffer.from('RLKV1\n');
const BATCH_BYTES = 256 * 1024;

async function* encodeKvSnapshot(pairs: Array<[string, Buffer]>): AsyncGenerator<Uint8Array> {
  yield SNAPSHOT_MAGIC;
  let batch: Buffer[] = [];
  let bytes = 0;
  for (const [k, v] of pairs) {
    const kb = Buffer.from(k, 'latin1');
    const kl = Buffer.alloc(4);
    kl.writeUInt32LE(kb.length, 0);
    const vl = Buffer.alloc(4);
    vl.writeUInt32LE(v.length, 0);
    batch.push(kl, kb, vl, v);
    bytes += 8 + kb.length + v.length;
    if (bytes >= BATCH_BYTES) {
      yield Buffer.concat(batch, bytes);
      batch = [];
      bytes = 0;
    }
  }
  if (bytes > 0) yield Buffer.concat(batch, bytes);
}

/** Exact-size reads over chunks of any size; a read spanning chunks joins only the bytes it needs. */
class ChunkReader {
  private parts: Buffer[] = [];
  private have = 0;
  private done = false;

  constructor(private readonly it: AsyncIterator<Uint8Array>) {}

  /** `n` bytes, or undefined at a clean end (no byte of them arrived). */
  async take(n: number): Promise<Buffer | undefined> {
    while (this.have < n && !this.done) {
      const r = await this.it.next();
      if (r.done === true) this.done = true;
      else if (r.value.byteLength > 0) {
        this.parts.push(Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength));
        this.have += r.value.byteLength;
      }
    }
    if (this.have < n) {
      if (this.have === 0) return undefined;
      throw new Error('KV snapshot ends inside an entry');
    }
    const first = this.parts[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.parts.shift();
      else this.parts[0] = first.subarray(n);
    } else {
      const joined = Buffer.concat(this.parts, this.have);
      out = joined.subarray(0, n);
      this.parts = joined.length > n ? [joined.subarray(n)] : [];
    }
    this.have -= n;
    return out;
  }

  async rest(): Promise<Buffer> {
    for (let r = await this.it.next(); r.done !== true; r = await this.it.next()) this.parts.push(Buffer.from(r.value));
    return Buffer.concat(this.parts);
  }
}
