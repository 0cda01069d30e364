// A map of keys to values whose snapshot costs nothing at the call, however large the map:
// the snapshot's bytes are produced later, a chunk at a time, while writes go on, and still
// describe the map as it was at the call.
//
// No copy is made. The stream walks the live map (a Map iterator visits, in insertion order,
// the entries present when it reaches them: it skips deleted ones and visits ones added since,
// and a set of an existing key keeps the key's place). Meanwhile every write first records,
// in the snapshot's undo map, the key's value before its first change since the call (null
// if the key was absent). The stream skips a key that has an undo entry while walking, and
// after the walk emits every undo entry that is not null. Why that is the map at the call:
// - a key present at the call and unchanged when the walk reaches it has no undo entry, so
//   it is emitted with its value at the call;
// - a key changed before the walk reaches it is skipped (or, if deleted, not visited) and
//   emitted from its undo entry with its value at the call, or not at all if it was absent;
// - a key changed after the walk passed it was emitted with its value at the call, and its
//   undo entry holds that same value, so it is emitted twice with the same bytes. Restore
//   keeps the last of duplicates, and since they are equal the order does not matter;
// - a key absent at the call gets null as its undo entry the moment it is added, so the walk
//   skips it and the undo pass leaves it out.
// Once the walk is over, writes need no more undo entries: a key without one was either
// emitted by the walk or absent at the call.
//
// Values are never changed in place (a write stores a new value), so an undo entry is the
// old value itself, and a chunk may hand out a view of a large one.
//
// Snapshots may overlap (one is still being read when the next is taken): each has its own
// undo map, filled from its own call on. A snapshot stops recording when the walk ends, when
// its stream is stopped (return() or throw(), as a for-await loop does on break or error,
// even before the first chunk), or when nothing references its stream any more: the map
// holds its snapshots by WeakRef, so a stream dropped without being read costs memory and a
// little time per write only until the garbage collector takes it.
import { setImmediate as turn } from 'node:timers/promises';
import { ChunkWriter, SNAPSHOT_MAGIC } from './kv-snapshot-format.js';
import type { StoredValue } from './stored-value.js';

/** Entries walked between two turns of the event loop when few of them are written (the others were skipped). */
const WALK_PER_TURN = 8192;

/** The state of one snapshot while its stream is open. */
class Undo {
  /** The value of each key changed since the call, as it was at the call; null: absent then. */
  readonly before = new Map<string, StoredValue | null>();
}

export class SnapshotMap {
  /** Snapshots still walking, whose undo maps writes must fill. */
  private recording: Array<WeakRef<Undo>> = [];

  constructor(private readonly map = new Map<string, StoredValue>()) {}

  get(k: string): StoredValue | undefined {
    return this.map.get(k);
  }

  has(k: string): boolean {
    return this.map.has(k);
  }

  get size(): number {
    return this.map.size;
  }

  /** `v` is stored as it is and must not be changed afterwards. */
  set(k: string, v: StoredValue): void {
    this.beforeWrite(k);
    this.map.set(k, v);
  }

  delete(k: string): boolean {
    if (!this.map.has(k)) return false;
    this.beforeWrite(k);
    return this.map.delete(k);
  }

  /** Snapshots whose writes are still recorded (after pruning the collected ones). @internal */
  get recordingSnapshots(): number {
    this.recording = this.recording.filter((r) => r.deref() !== undefined);
    return this.recording.length;
  }

  /** The map as it is now, in the KV snapshot format, produced as it is read. */
  snapshot(): AsyncIterableIterator<Uint8Array> {
    const undo = new Undo();
    const ref = new WeakRef(undo);
    this.recording.push(ref);
    const stopRecording = (): void => {
      const i = this.recording.indexOf(ref);
      if (i >= 0) this.recording.splice(i, 1);
    };
    return new SnapshotStream(encode(this.map, undo, stopRecording), stopRecording);
  }

  private beforeWrite(k: string): void {
    if (this.recording.length === 0) return;
    const old = this.map.get(k) ?? null;
    for (let i = 0; i < this.recording.length;) {
      const undo = this.recording[i]!.deref();
      if (undo === undefined) {
        this.recording.splice(i, 1); // its stream was dropped and collected
        continue;
      }
      if (!undo.before.has(k)) undo.before.set(k, old);
      i++;
    }
  }
}

async function* encode(map: Map<string, StoredValue>, undo: Undo, stopRecording: () => void): AsyncGenerator<Uint8Array, void, undefined> {
  try {
    const w = new ChunkWriter();
    w.raw(SNAPSHOT_MAGIC);
    let walked = 0;
    // Each chunk, and each stretch of skipped entries, is followed by a turn of the event
    // loop, whatever the reader does: a large map is spread over many turns.
    for (const [k, v] of map) {
      if (!undo.before.has(k)) w.entry(k, v);
      if (w.ready || ++walked >= WALK_PER_TURN) {
        walked = 0;
        for (let c = w.take(); c !== undefined; c = w.take()) yield c;
        await turn();
      }
    }
    stopRecording();
    for (const [k, v] of undo.before) {
      if (v !== null) w.entry(k, v);
      if (w.ready || ++walked >= WALK_PER_TURN) {
        walked = 0;
        for (let c = w.take(); c !== undefined; c = w.take()) yield c;
        await turn();
      }
    }
    w.flush();
    for (let c = w.take(); c !== undefined; c = w.take()) yield c;
  } finally {
    stopRecording();
  }
}

/** The generator, with return() and throw() releasing the snapshot even before it started (a generator's finally runs only once it has). */
class SnapshotStream implements AsyncIterableIterator<Uint8Array> {
  constructor(
    private readonly gen: AsyncGenerator<Uint8Array, void, undefined>,
    private readonly stopRecording: () => void,
  ) {}

  next(): Promise<IteratorResult<Uint8Array>> {
    return this.gen.next();
  }

  return(): Promise<IteratorResult<Uint8Array>> {
    this.stopRecording();
    return this.gen.return(undefined);
  }

  throw(err: unknown): Promise<IteratorResult<Uint8Array>> {
    this.stopRecording();
    return this.gen.throw(err);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Uint8Array> {
    return this;
  }
}
