// entries(): a reader of the committed records, in order, that then follows the log
// as new ones apply. Each reader wakes when the log changes and reads on from its
// position, so a slow reader holds nothing but its own place.
import { CompactedError } from '../raft/errors.js';
import { EntryType, type Entry } from '../raft/types.js';
import { CompactedRangeError, InvalidArgumentError } from './errors.js';
import { decodeBatch, type DecodedBatch } from './record-batch.js';
import type { LogEntry } from './state-machine.js';

/** What a reader needs from the driver. */
export interface CommittedSource {
  /** `read` takes what is only on disk off the event loop. */
  storage: { firstIndex(): number; lastIndex(): number; read(lo: number, hi: number, maxBytes: number): Promise<Entry[]> };
  /** The index of the last snapshot restored into the state machine: nothing at or below it is served. */
  snapshotFloor(): number;
  applied(): number;
  stopped(): boolean;
  /** The error a new request gets (the log is closing or stopped), null while it runs. */
  refusal(): Error | null;
  /** What stopped the node, if a failure did. */
  fatal(): Error | undefined;
  /** An entry that cannot be decoded stops the node. */
  fail(err: unknown): void;
}

/** One entries() reader: return() was called; what ends its wait for the log to change. */
interface Reader {
  ended: boolean;
  wake: (() => void) | null;
}

export class CommittedEntries {
  private readonly listeners = new Set<() => void>();

  constructor(private readonly source: CommittedSource) {}

  /** Something readers wait for changed: an apply, a durable write, a restore, or the log stopping. */
  notify(): void {
    for (const l of [...this.listeners]) l();
  }

  /** Resolves at the next notify(), or when `reader` is woken. */
  changed(reader?: Reader): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.listeners.delete(done);
        if (reader !== undefined) reader.wake = null;
        resolve();
      };
      this.listeners.add(done);
      if (reader !== undefined) reader.wake = done;
    });
  }

  read(options: { from?: number }): AsyncGenerator<LogEntry> {
    const reader: Reader = { ended: false, wake: null };
    const gen = this.follow(options, reader);
    // A generator's return() waits for the next() it is running to settle: one called while the
    // reader waits for the log to change held the reader, its listener and the caller until
    // the next record, for good on an idle log. It ends the wait instead.
    const end = gen.return.bind(gen);
    gen.return = (value) => {
      reader.ended = true;
      reader.wake?.();
      return end(value);
    };
    return gen;
  }

  private async *follow(options: { from?: number }, reader: Reader): AsyncGenerator<LogEntry> {
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('entries(options): options must be an object');
    // A misspelt key would read from the start of the log, as if no option were given.
    for (const key of Object.keys(options)) if (key !== 'from') throw new InvalidArgumentError(`entries: unknown option '${key}'`);
    // A closed log is not an empty one, and its storage may be closed already: refused before any read.
    const refused = this.source.refusal();
    if (refused !== null) throw refused;
    const { storage } = this.source;
    // Only a missing `from` means the start: a null (a field left empty) is refused below, not read as it.
    let next = options.from === undefined ? Math.max(storage.firstIndex(), this.source.snapshotFloor() + 1) : options.from;
    if (!Number.isSafeInteger(next) || next < 1) throw new InvalidArgumentError(`entries({ from }): from must be a positive integer`);
    while (!this.source.stopped() && !reader.ended) {
      // Below a snapshot the log is gone, even while the storage still holds the old
      // (possibly never committed) suffix that a received snapshot is about to discard.
      const floor = this.source.snapshotFloor();
      if (next <= floor) throw new CompactedRangeError(next, floor + 1);
      const upTo = Math.min(this.source.applied(), storage.lastIndex());
      if (next <= upTo) {
        let batch: Entry[];
        try {
          // Committed entries: whatever changes in the log while this reads, they stay what they are.
          batch = await storage.read(next, Math.min(upTo + 1, next + 1024), 4 * 1024 * 1024);
        } catch (err) {
          if (err instanceof CompactedError) throw new CompactedRangeError(next, storage.firstIndex());
          if (this.source.stopped()) break; // the log stopped under the read: as if it had stopped before
          throw err;
        }
        for (const e of batch) {
          next = e.index + 1;
          if (e.type !== EntryType.Normal) continue;
          let records: DecodedBatch | null;
          try {
            records = decodeBatch(e.data, e.index);
          } catch (err) {
            this.source.fail(err);
            throw err;
          }
          const payloads = records?.payloads ?? [];
          for (let k = 0; k < payloads.length; k++) yield { index: e.index, term: e.term, offset: k, data: payloads[k]! };
        }
        continue;
      }
      await this.changed(reader);
    }
    if (reader.ended) return;
    // A reader of a log that closes ends; of one that failed, it says why: ending would look
    // like the end of the log.
    const fatal = this.source.fatal();
    if (fatal !== undefined) throw fatal;
  }
}
