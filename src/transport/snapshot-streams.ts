// How a transport reaches snapshot bytes without holding them: the owner (the log)
// hands it a place to read the snapshots it sends and to write those it receives.
// A MsgSnap's `snapshot.data` is then only a reference the owner understands;
// the transport carries the bytes behind it and never interprets them.
import type { Snapshot, SnapshotMeta } from '../raft/types.js';

/** A snapshot on its way to a peer: how many bytes, and the bytes. */
export interface OutgoingSnapshot {
  size: number;
  chunks: AsyncIterable<Uint8Array>;
}

/** Where a snapshot arriving from a peer is written as it arrives. */
export interface IncomingSnapshot {
  write(chunk: Uint8Array): Promise<void>;
  /** Checks what arrived; resolves to the `data` the delivered MsgSnap carries. Rejects (having deleted it) on a failed check. */
  finish(): Promise<Uint8Array>;
  /** Deletes what arrived: the stream was abandoned. Called once no write() or finish() is under way. */
  abort(): Promise<void>;
}

/**
 * The transport's close() waits for a source being closed (its `return()`) and a spool being
 * deleted (`abort()`), but no longer than its idle timeout: one still under way then is logged and left.
 */
export interface SnapshotStreams {
  /** The bytes a MsgSnap's snapshot stands for. */
  open(snapshot: Snapshot): Promise<OutgoingSnapshot>;
  /** Receives the `size` bytes a peer announced for `meta` (already checked against the size limit). */
  spool(meta: SnapshotMeta, size: number): Promise<IncomingSnapshot>;
}

/**
 * The default without an owner: `data` is the snapshot itself, gathered in memory
 * (bounded by maxSnapshotBytes). The replicated log supplies its snapshot directory instead.
 */
export const inMemorySnapshots: SnapshotStreams = {
  async open(snapshot) {
    const data = snapshot.data;
    return {
      size: data.byteLength,
      chunks: (async function* () {
        yield data;
      })(),
    };
  },
  async spool(_meta, size) {
    const parts: Uint8Array[] = [];
    let n = 0;
    return {
      async write(chunk) {
        parts.push(chunk);
        n += chunk.byteLength;
      },
      async finish() {
        return Buffer.concat(parts, Math.min(n, size));
      },
      async abort() {
        parts.length = 0;
      },
    };
  },
};
