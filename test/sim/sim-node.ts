// One simulated machine and what survives its crashes: the core, the storage
// that holds exactly its durable state, its disk queue and its state machine
// (a running hash of applied entries, which snapshots carry).
import { StateType, type ConfState, type Ready } from '../../src/raft/types.js';
import { MemoryStorage, type RawNode } from '../../src/raft/index.js';

/** Virtual time units between two ticks of a node whose clock runs true. */
export const TICK = 10;

export interface PendingWrite {
  rd: Ready;
  doneAt: number;
}

/** One simulated machine: the core, its durable storage, its disk queue and its state machine. */
export class SimNode {
  raw!: RawNode;
  up = true;
  incarnation = 0;
  /** Exactly the durable state: written only when a simulated write completes. */
  storage: MemoryStorage;
  readonly disk: PendingWrite[] = [];
  lastDiskDone = 0;
  state: StateType = StateType.StateFollower;
  term = 0;
  /** State machine: applied index, and its hash at every index since `base`. */
  base = 0;
  hashes: number[] = [0];
  /** Applied membership, and where it changed, so a snapshot at any applied index knows its ConfState. */
  conf: ConfState;
  confHistory: { index: number; conf: ConfState }[] = [];
  /** The state machine's own durable copy (when the seed persists it): restart resumes from there, not the snapshot. */
  smDurable: { index: number; hash: number; conf: ConfState } | undefined = undefined;
  /** Virtual time between this node's ticks: clocks run at slightly different rates. */
  tickPeriod = TICK;
  /** The process is stalled until then: it handles nothing and its clock does not tick. */
  pausedUntil = 0;
  /** A 'ready' event is queued: the Ready is taken later, so several inputs land in one Ready. */
  readyScheduled = false;
  /** Index of an applied conf change that no snapshot covers yet (0 when none). */
  confSnapshotDue = 0;

  constructor(
    readonly id: number,
    storage: MemoryStorage,
    conf: ConfState,
  ) {
    this.storage = storage;
    this.conf = conf;
  }

  get applied(): number {
    return this.base + this.hashes.length - 1;
  }

  hashAt(index: number): number {
    return this.hashes[index - this.base]!;
  }

  confAt(index: number): ConfState {
    let c = this.confHistory[0]!.conf;
    for (const h of this.confHistory) if (h.index <= index) c = h.conf;
    return c;
  }
}

export function encodeState(index: number, hash: number): Uint8Array {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  v.setFloat64(0, index);
  v.setUint32(8, hash);
  return b;
}

export function decodeState(data: Uint8Array): { index: number; hash: number } {
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return { index: v.getFloat64(0), hash: v.getUint32(8) };
}

/** A fresh MemoryStorage holding the same durable state, as a restarted process would read it back. */
export function copyStorage(from: MemoryStorage): MemoryStorage {
  const to = new MemoryStorage();
  to.applySnapshot(from.snapshot());
  const first = from.firstIndex();
  const last = from.lastIndex();
  if (last >= first) to.append(from.entries(first, last + 1, Number.POSITIVE_INFINITY));
  to.setHardState(from.initialState().hardState);
  return to;
}

/**
 * A disk that acknowledged writes it had not made durable: up to `lost` of the newest entries vanish (never
 * below the durable commit, so the node restarts consistent with itself and only the cluster can notice).
 */
export function forgetTail(from: MemoryStorage, lost: number): MemoryStorage {
  const to = new MemoryStorage();
  to.applySnapshot(from.snapshot());
  const first = from.firstIndex();
  const last = Math.max(from.lastIndex() - lost, first - 1, from.initialState().hardState.commit);
  if (last >= first) to.append(from.entries(first, last + 1, Number.POSITIVE_INFINITY));
  const hs = from.initialState().hardState;
  to.setHardState({ ...hs, commit: Math.min(hs.commit, to.lastIndex()) });
  return to;
}
