import type { Readable } from 'node:stream';
import { InvalidArgumentError, SnapshotLimitError } from './errors.js';

/**
 * A committed record as the application sees it. The records a node appended in one
 * event-loop turn share one Raft entry, so several records may share an `index`;
 * (`index`, `offset`) is a record's position, the same on every node.
 */
export interface LogEntry {
  /** The Raft index of the entry that carries the record. */
  index: number;
  term: number;
  /** The record's place among its entry's records, from 0. */
  offset: number;
  /**
   * A view into a buffer the record shares with others: a view kept in the state keeps
   * all of it alive. Keep a copy, and not a small `Buffer.from` copy either, which is a
   * view into a shared 8 KiB pool (the KV example keeps small values as strings).
   */
  data: Uint8Array;
}

/**
 * The bytes of a snapshot as a state machine hands them over: all at once, or as a
 * stream (a Node Readable or any async iterable of chunks), so that a state larger
 * than memory never has to exist as one buffer.
 */
export type SnapshotSource = Uint8Array | Readable | AsyncIterable<Uint8Array>;

/**
 * The application's state, fed committed records in order. `apply` must be
 * deterministic: every node applies the same records and must reach the same state.
 */
export interface StateMachine<R = unknown> {
  /**
   * Called once per committed record, in log order. Its return value resolves the append on
   * the node that made it. It applies the record before it returns: a promise returned (an
   * `async apply`) stops the node with LOG_FATAL.
   */
  apply(entry: LogEntry): R;
  /**
   * The whole state as of the last applied record. A stream is read after this call
   * returns, while later records are applied: it must still describe the state at
   * the moment of the call (iterate over a copy, or an immutable version).
   */
  snapshot(): SnapshotSource;
  /**
   * Replaces the whole state with a snapshot taken at `meta.index`, read from `data`
   * in chunks (their sizes are arbitrary). No record is applied until the returned
   * promise settles; a rejection stops the node. open() waits for it (bound that with its
   * `signal`); once the log stops, or its open is aborted, a restore still running is
   * abandoned and its chunks closed.
   */
  restore(data: AsyncIterable<Uint8Array>, meta: { index: number; term: number }): void | Promise<void>;
}

/** The default: keeps no state, so a log without a state machine is a plain durable log. */
export class NullStateMachine implements StateMachine<undefined> {
  apply(): undefined {
    return undefined;
  }
  snapshot(): Uint8Array {
    return new Uint8Array(0);
  }
  async restore(data: AsyncIterable<Uint8Array>): Promise<void> {
    for await (const _ of data); // a snapshot is read to its end, so its checksum is checked
  }
}

/** A snapshot source as chunks; a Readable in object mode must yield Uint8Arrays too. */
export function snapshotChunks(source: SnapshotSource): AsyncGenerator<Uint8Array> {
  // A promise is refused when the chunks are first read, which can be turns later (the
  // store opens its file first): its rejection is handled now, or an async snapshot() that
  // rejects at once would reject unhandled before then, which ends the process.
  if (typeof (source as Partial<PromiseLike<unknown>> | null)?.then === 'function')
    (source as unknown as PromiseLike<unknown>).then(undefined, () => undefined);
  return chunksOf(source);
}

async function* chunksOf(source: SnapshotSource): AsyncGenerator<Uint8Array> {
  if (source instanceof Uint8Array) {
    yield source;
    return;
  }
  if (typeof (source as Partial<PromiseLike<unknown>> | null)?.then === 'function') {
    // The state must be captured at the index being snapshotted, before the next apply, so a
    // promise of it cannot be waited for.
    throw new TypeError('snapshot() returned a promise: it must return its state synchronously (a Uint8Array, or a stream of it)');
  }
  if (source === null || typeof source !== 'object' || typeof (source as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] !== 'function') {
    throw new TypeError('snapshot() must return a Uint8Array, a Readable or an AsyncIterable<Uint8Array>');
  }
  for await (const chunk of source as AsyncIterable<unknown>) {
    if (!(chunk instanceof Uint8Array)) throw new TypeError('a snapshot stream yielded something other than a Uint8Array');
    yield chunk;
  }
}

/**
 * Gathers a snapshot's chunks into one buffer: for state machines whose state is
 * small enough to hold twice. Past `maxBytes` it throws instead of growing.
 */
export async function readAll(data: AsyncIterable<Uint8Array>, maxBytes = Number.MAX_SAFE_INTEGER): Promise<Uint8Array> {
  // NaN or a string compares false with every size: it would set no limit at all.
  if (maxBytes !== Infinity && !(Number.isSafeInteger(maxBytes) && maxBytes >= 0))
    throw new InvalidArgumentError(`readAll(data, maxBytes): maxBytes must be a non-negative integer, got ${String(maxBytes)}`);
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const c of data) {
    n += c.byteLength;
    if (n > maxBytes) throw new SnapshotLimitError(maxBytes);
    parts.push(c);
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
}
