// Snapshots this node takes of its state machine: every snapshotEvery records applied,
// and once more after a member joins (a snapshot taken before does not name it, and it
// refuses one that does not). One at a time: the state machine's bytes stream into the
// file while later entries apply, and once the log stops, a stream that yields nothing
// for timeoutMs is abandoned.
import type { ConfState } from '../raft/types.js';
import type { Logger } from '../logger.js';
import { snapshotFileBytes } from '../storage/snapshot-store.js';
import type { Clock } from './clock.js';
import type { MetricCounters } from './metrics.js';
import type { ResolvedOptions } from './options.js';
import { encodeSnapshotData } from './snapshot-data.js';
import { snapshotChunks, type StateMachine } from './state-machine.js';
import { attribute, stateMachineFailed } from './state-machine-failure.js';

/** What taking a snapshot needs from the node. */
export interface SnapshotTakingHost {
  sm: Pick<StateMachine<unknown>, 'snapshot'>;
  /** The address book and the configuration, written into the snapshot beside the state. */
  membership: { readonly members: ReadonlyMap<number, string>; readonly conf: ConfState };
  /** Writes the snapshot, then releases the log below it. */
  compact(index: number, term: number, conf: ConfState, data: AsyncIterable<Uint8Array>): Promise<void>;
  /** The term of an entry the log holds. */
  term(index: number): number;
  applied(): number;
  stopped(): boolean;
  /** A received snapshot is being restored: the state machine is not the log's until it is. */
  restoring(): boolean;
  counters: Pick<MetricCounters, 'snapshots' | 'snapshotDuration'>;
  clock: Pick<Clock, 'setTimeout'>;
  logger: Logger;
  fail(err: unknown): void;
}

export type SnapshotTakingOptions = Pick<ResolvedOptions, 'snapshotEvery' | 'maxSnapshotBytes' | 'timeoutMs'>;

export class SnapshotTaking {
  /** Records (and membership changes) applied since `index`: what snapshotEvery counts. */
  private since = 0;
  private forNewMember = false;
  /**
   * A snapshot is being written. The next waits for it: a state machine that takes longer to
   * write than snapshotEvery entries take to apply would otherwise queue one snapshot after
   * another, each superseded before it is on disk.
   */
  private writing = false;
  /** Bounds the wait for the state machine's stream once the log stops (see chunk). */
  private armDeadline: (() => void) | undefined;

  constructor(
    private readonly host: SnapshotTakingHost,
    private readonly opts: SnapshotTakingOptions,
    /** The index of the latest snapshot, taken here or received. */
    public index: number,
  ) {}

  /** `n` records or membership changes were applied. */
  counted(n: number): void {
    this.since += n;
  }

  /** A change added a member: if the leader must catch it up by snapshot, it needs one that names it. */
  memberAdded(): void {
    if (this.index > 0) this.forNewMember = true;
  }

  /** A received snapshot at `index` was restored into the state machine. */
  restored(index: number): void {
    this.index = index;
    this.since = 0;
  }

  /** Snapshots the state machine if snapshotEvery records (or a new member) call for it. `term`: the applied entry's. */
  maybeTake(term: number): void {
    if (this.writing || this.host.stopped() || this.host.restoring()) return;
    if (this.since < this.opts.snapshotEvery && !this.forNewMember) return;
    this.forNewMember = false;
    this.take(this.host.applied(), term);
  }

  /** The log stopped: a snapshot being written gets timeoutMs for each chunk of its stream. */
  onStop(): void {
    this.armDeadline?.();
    this.armDeadline = undefined;
  }

  private take(index: number, term: number): void {
    const { host, opts } = this;
    // The state machine's bytes stream into the file while later entries apply: it promised
    // they describe the state of this moment.
    const started = performance.now();
    let bytes = 0;
    const taking = this;
    const counted = async function* (chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
      const it = chunks[Symbol.asyncIterator]();
      let ended = false;
      try {
        for (;;) {
          let r: IteratorResult<Uint8Array>;
          try {
            r = await taking.chunk(it.next()); // the state machine's stream: what fails here is the application's
          } catch (err) {
            ended = true;
            // Abandoned after the log stopped: the stream closes once its pending chunk settles, if ever.
            if (host.stopped()) Promise.resolve(it.return?.()).catch(() => undefined);
            throw attribute('snapshot', err);
          }
          if (r.done === true) {
            ended = true;
            return;
          }
          bytes += r.value.byteLength;
          yield r.value;
        }
      } finally {
        if (!ended) await it.return?.(); // as for-await would: a write that failed closes the stream
      }
    };
    let source;
    try {
      source = host.sm.snapshot();
    } catch (err) {
      throw stateMachineFailed('snapshot', err);
    }
    const data = counted(encodeSnapshotData([...host.membership.members], snapshotChunks(source)));
    const conf = host.membership.conf;
    this.index = index;
    this.since = 0;
    this.writing = true;
    host
      .compact(index, term, conf, data)
      .then(() => {
        this.writing = false;
        host.counters.snapshots++;
        const ms = performance.now() - started;
        host.counters.snapshotDuration.observe(ms / 1000);
        host.logger.info({ index, term, bytes, ms: Math.round(ms) }, `snapshot taken at ${index}`);
        // Peers refuse it as soon as it is announced: a follower that falls behind the log kept
        // after it could never catch up, and said so only in its own log and the leader's retries.
        // They check the file's size (the members and the file's header and meta included), not the state's.
        const fileBytes = snapshotFileBytes({ index, term, conf }, bytes);
        if (fileBytes > opts.maxSnapshotBytes)
          host.logger.warn(
            { code: 'SNAPSHOT_OVER_PEER_LIMIT', index, fileBytes, maxSnapshotBytes: opts.maxSnapshotBytes },
            `the snapshot at ${index} is a file of ${fileBytes} bytes, more than maxSnapshotBytes (${opts.maxSnapshotBytes}): ` +
              'a node with that limit refuses it, so a follower that falls behind, or a member added, never catches up; raise maxSnapshotBytes on every node',
          );
        // Entries applied while it was written may already call for the next one.
        if (!host.stopped() && host.applied() > index) this.maybeTake(host.term(host.applied()));
      })
      .catch((err: unknown) => host.fail(err));
  }

  /**
   * The next chunk of the state machine's snapshot stream. close() waits for the snapshot
   * being written, and a stream that never yielded again held it, the WAL's lock and the
   * snapshot's file for good: once the log has stopped, a chunk not come within timeoutMs
   * abandons the write (the store deletes its file). A failure of the stream after that is
   * still logged.
   */
  private chunk(next: Promise<IteratorResult<Uint8Array>>): Promise<IteratorResult<Uint8Array>> {
    const { host } = this;
    return new Promise((resolve, reject) => {
      let abandoned = false;
      let cancel = (): void => undefined;
      const arm = (): void => {
        const ms = this.opts.timeoutMs;
        cancel = host.clock.setTimeout(() => {
          abandoned = true;
          const err = stateMachineFailed('snapshot', new Error(`its stream yielded nothing for ${ms} ms after the log stopped`));
          host.logger.warn(
            { code: err.code },
            `closed without waiting longer for the snapshot being written: the state machine's stream yielded nothing for ${ms} ms`,
          );
          reject(err);
        }, ms);
      };
      if (host.stopped()) arm();
      else this.armDeadline = arm;
      const settled = (): void => {
        cancel();
        if (this.armDeadline === arm) this.armDeadline = undefined;
      };
      next.then(
        (r) => {
          settled();
          resolve(r);
        },
        (err: unknown) => {
          settled();
          if (abandoned) host.fail(attribute('snapshot', err)); // the log is closed: said at debug
          reject(err);
        },
      );
    });
  }
}
