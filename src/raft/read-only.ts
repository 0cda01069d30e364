// Linearizable reads without a log write. Safe mode: the leader records its
// commit index with the request and serves it once a quorum acknowledges a
// heartbeat round tagged with its context or a later request's (it was still
// leader when the request arrived). Lease mode trusts CheckQuorum's lease instead.
import type { Message } from './types.js';

export type ReadOnlyOption = 'safe' | 'lease';

interface ReadIndexStatus {
  req: Message;
  index: number;
  acks: Set<number>;
}

/**
 * A ReadIndex context as a map key: contexts are bytes, and the core's pending
 * table and the caller's table of waiting reads both key them by their latin1
 * spelling (one byte, one char: distinct contexts never share a key).
 */
export function readContextKey(ctx: Uint8Array): string {
  let s = '';
  for (let i = 0; i < ctx.length; i++) s += String.fromCharCode(ctx[i]!);
  return s;
}

/**
 * Reads a leader holds at most, waiting for a quorum's heartbeat answers or for its first commit of
 * the term. Local callers and forwarding followers ask at any rate, and a leader cut off from its
 * quorum answers none until it steps down (or never, without CheckQuorum). Callers that batch their
 * reads (ReplicatedLog asks once per event-loop turn) hold few each: a quorum's round trip answers all.
 */
export const MAX_PENDING_READS = 4096;
/** Bytes of the contexts of the reads a leader holds at most; the first read always fits. */
export const MAX_PENDING_READ_BYTES = 1024 * 1024;

export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];
  /** Context bytes of the pending requests. */
  bytes = 0;

  constructor(readonly option: ReadOnlyOption) {}

  /** Registers a request seen at commit index `index`; a duplicate context is ignored. */
  addRequest(index: number, req: Message): void {
    const key = readContextKey(req.context!);
    if (this.pending.has(key)) return;
    this.pending.set(key, { req, index, acks: new Set() });
    this.queue.push(key);
    this.bytes += req.context!.length;
  }

  /** Records a heartbeat acknowledgement; returns the acks so far, or undefined for an unknown context. */
  recvAck(id: number, ctx: Uint8Array): ReadonlySet<number> | undefined {
    const rs = this.pending.get(readContextKey(ctx));
    if (rs === undefined) return undefined;
    rs.acks.add(id);
    return rs.acks;
  }

  /**
   * The request tagged `ctx` is confirmed, and so is every request queued
   * before it (a later heartbeat round proves leadership for earlier ones too).
   */
  advance(ctx: Uint8Array): { req: Message; index: number }[] {
    const key = readContextKey(ctx);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const done = this.queue.slice(0, at + 1);
    this.queue = this.queue.slice(at + 1);
    const out: { req: Message; index: number }[] = [];
    for (const k of done) {
      const rs = this.pending.get(k)!;
      this.pending.delete(k);
      this.bytes -= rs.req.context!.length;
      out.push({ req: rs.req, index: rs.index });
    }
    return out;
  }

  has(key: string): boolean {
    return this.pending.has(key);
  }

  lastPendingContext(): Uint8Array | undefined {
    if (this.queue.length === 0) return undefined;
    return this.pending.get(this.queue[this.queue.length - 1]!)!.req.context;
  }

  pendingCount(): number {
    return this.queue.length;
  }

  reset(): void {
    this.pending.clear();
    this.queue = [];
    this.bytes = 0;
  }
}
