// The example state machine: a key-value map changed only by committed commands.
// apply() is deterministic and never throws, since every node must reach the same state
// even from a command that fails (INCR of a non-number fails the same way everywhere).
import { pack, unpack } from 'msgpackr';
import { InvalidArgumentError } from '../log/errors.js';
import type { LogEntry, StateMachine } from '../log/state-machine.js';
import { decodeKvSnapshot } from './kv-snapshot-format.js';
import { SnapshotMap } from './snapshot-map.js';
import { latin1 as key, storeValue, valueBytes, type StoredValue } from './stored-value.js';

export type KvCommand = ['SET', Buffer, Buffer] | ['DEL', ...Buffer[]] | ['INCR', Buffer];

/** What apply returns: a value for the client, or a Redis-style error message. */
export type KvResult = { ok: 'OK' } | { int: number | bigint } | { error: string };

export function encodeCommand(cmd: KvCommand): Uint8Array {
  return pack(cmd);
}

// Shared results: apply runs for every command on every node.
const SET_OK: KvResult = Object.freeze({ ok: 'OK' });
const MALFORMED: KvResult = Object.freeze({ error: 'ERR malformed command in the log' });
const NOT_AN_INTEGER: KvResult = Object.freeze({ error: 'ERR value is not an integer or out of range' });
const OVERFLOW: KvResult = Object.freeze({ error: 'ERR increment or decrement would overflow' });
/** What Redis's string2ll takes: no sign but '-', no leading zero, no '-0'. */
export const INTEGER = /^(0|-?[1-9]\d{0,18})$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * `s` plus one, over Redis's range (64-bit signed): a double counts by one only up to 2^53, so
 * a longer counter (a nanosecond timestamp, say) is counted as a bigint.
 */
function increment(s: string): KvResult | number | bigint {
  if (!INTEGER.test(s)) return NOT_AN_INTEGER;
  if (s.length <= 15) return Number(s) + 1;
  const n = BigInt(s);
  if (n < INT64_MIN || n > INT64_MAX) return NOT_AN_INTEGER;
  if (n === INT64_MAX) return OVERFLOW;
  const v = n + 1n;
  return Number.isSafeInteger(Number(v)) ? Number(v) : v;
}

/** A key that is no byte array failed deep inside, as a raw TypeError (a string: 'Received undefined'). */
function checkKey(k: unknown, where: string): Uint8Array {
  if (!(k instanceof Uint8Array)) throw new InvalidArgumentError(`KvStateMachine.${where}(key): key must be a Buffer`);
  return k;
}

export class KvStateMachine implements StateMachine<KvResult> {
  private map = new SnapshotMap();

  /** The value's bytes: a copy of a small one, a large one as it is stored (it must not be changed). */
  get(k: Buffer): Buffer | undefined {
    const v = this.map.get(key(checkKey(k, 'get')));
    return v === undefined ? undefined : valueBytes(v);
  }

  /** The value as the map keeps it, not a copy: for a reply written later (it must not be changed). @internal */
  stored(k: Buffer): StoredValue | undefined {
    return this.map.get(key(k));
  }

  has(k: Buffer): boolean {
    return this.map.has(key(checkKey(k, 'has')));
  }

  get size(): number {
    return this.map.size;
  }

  apply(entry: LogEntry): KvResult {
    let cmd: unknown;
    try {
      cmd = unpack(entry.data);
    } catch {
      return MALFORMED;
    }
    if (!Array.isArray(cmd)) return MALFORMED;
    for (let i = 1; i < cmd.length; i++) if (!(cmd[i] instanceof Uint8Array)) return MALFORMED;
    const args = cmd as Uint8Array[]; // from 1 on, as just checked
    switch (cmd[0]) {
      case 'SET':
        if (args.length !== 3) break;
        this.map.set(key(args[1]!), storeValue(args[2]!));
        return SET_OK;
      case 'DEL': {
        let n = 0;
        for (let i = 1; i < args.length; i++) if (this.map.delete(key(args[i]!))) n++;
        return { int: n };
      }
      case 'INCR': {
        if (args.length !== 2) break;
        const k = key(args[1]!);
        const cur = this.map.get(k);
        const s = cur === undefined ? '0' : typeof cur === 'string' ? cur : cur.toString('latin1');
        const v = increment(s);
        if (typeof v === 'object') return v;
        this.map.set(k, String(v));
        return { int: v };
      }
    }
    return MALFORMED;
  }

  /**
   * The map as it is now, as a stream: nothing is copied at the call, and the chunks are
   * produced as they are read, while later commands apply (see SnapshotMap).
   */
  snapshot(): AsyncIterable<Uint8Array> {
    return this.map.snapshot();
  }

  /** Builds the new map pair by pair as the chunks arrive; the old one is replaced at the end. */
  async restore(data: AsyncIterable<Uint8Array>): Promise<void> {
    // Snapshots still being read keep the old map, which nothing changes any more.
    this.map = new SnapshotMap(await decodeKvSnapshot(data, key));
  }
}
