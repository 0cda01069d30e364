// A snapshot received from the leader replaces the state machine before the storage
// records it: the storage calls beforeInstall() with the spooled snapshot, and installs it
// only once the state machine has loaded it. A snapshot the application cannot load then
// leaves the node's durable state as it was, so that a reopen runs from the old log. Until
// it is restored, the entries committed after it (and any later snapshot) wait here, in
// order: the state machine sees them only on top of the state they follow.
import type { Entry, Snapshot } from '../raft/types.js';

/** What restoring needs from the driver. */
export interface SnapshotRestoreHost {
  /** The snapshot storage holds now: the latest installed. */
  installedSnapshot(): Snapshot;
  /** Streams a snapshot into the state machine; resolves to what makes it the log's, called once it is installed. */
  restore(snap: Snapshot): Promise<() => void>;
  applyEntries(entries: Entry[]): void;
  stopped(): boolean;
  /** What a snapshot not restored because the node stopped fails its install with. */
  stopReason(): Error;
  /** Everything that waited is restored and applied. */
  onDrained(): void;
  fail(err: unknown): void;
}

interface Waiting {
  snap: Snapshot;
  installed: Promise<void>;
  /** Resolved when the storage reaches this snapshot's install. */
  reached: Promise<void>;
  reach: () => void;
  /** The storage's install, waiting for the state machine to load the snapshot. */
  gate?: { resolve: () => void; reject: (err: unknown) => void };
}

type Held = { entries: Entry[] } | Waiting;

export class SnapshotRestore {
  private readonly held: Held[] = [];
  /** The snapshot the loop below has taken off `held` and not finished. */
  private current: Waiting | undefined;
  private restoring = false;

  constructor(private readonly host: SnapshotRestoreHost) {}

  /** A snapshot is being restored into the state machine, or entries wait behind one. */
  get active(): boolean {
    return this.restoring;
  }

  /** True if committed entries must wait behind a snapshot being restored (they are queued then). */
  holds(entries: Entry[]): boolean {
    if (!this.restoring) return false;
    if (entries.length > 0) this.held.push({ entries });
    return true;
  }

  /** Restores `snap` when the storage reaches its install (see beforeInstall), after whatever waits already. */
  add(snap: Snapshot, installed: Promise<void>): void {
    let reach = (): void => undefined;
    const reached = new Promise<void>((resolve) => (reach = resolve));
    this.held.push({ snap, installed, reached, reach });
    if (this.restoring) return; // the loop below is running and will reach it
    this.restoring = true;
    this.drain().then(
      () => this.host.onDrained(),
      (err: unknown) => this.host.fail(err),
    );
  }

  /** The storage is about to install `snap`: resolves once the state machine has loaded it, rejects if it could not. */
  beforeInstall(snap: Snapshot): Promise<void> {
    const item = [this.current, ...this.held].find((h): h is Waiting => h !== undefined && 'snap' in h && h.snap === snap);
    if (item === undefined) {
      return Promise.reject(
        this.host.stopped() ? this.host.stopReason() : new Error(`the snapshot at ${snap.meta.index}/${snap.meta.term} was not handed over`),
      );
    }
    return new Promise<void>((resolve, reject) => {
      item.gate = { resolve, reject };
      item.reach();
    });
  }

  private async drain(): Promise<void> {
    try {
      await this.drainHeld();
    } catch (err) {
      this.refuseWaiting(err);
      throw err;
    }
    this.refuseWaiting(this.host.stopReason()); // stopped: installs still waiting must not hold the storage
  }

  /** Fails the installs waiting for a restore that will not come. */
  private refuseWaiting(err: unknown): void {
    for (const h of [this.current, ...this.held.splice(0)]) if (h !== undefined && 'snap' in h) h.gate?.reject(err);
    this.current = undefined;
  }

  private async drainHeld(): Promise<void> {
    for (let item = this.held.shift(); item !== undefined && !this.host.stopped(); item = this.held.shift()) {
      if ('entries' in item) {
        this.restoring = false;
        try {
          this.host.applyEntries(item.entries);
        } finally {
          this.restoring = true;
        }
        continue;
      }
      this.current = item;
      const { snap, installed } = item;
      // Not reached: the storage passed over it (it held a newer one), which the core never asks,
      // since it takes no snapshot at or below its commit: refused below as one not installed.
      let done: (() => void) | undefined;
      const reached = await Promise.race([item.reached.then(() => true), installed.then(() => false)]);
      // Stopped while the storage got there: the state machine is not handed a snapshot after
      // close() (its restore would read the spool past the release of the node's files).
      if (this.host.stopped()) break;
      if (reached) {
        try {
          done = await this.host.restore(snap);
        } catch (err) {
          item.gate?.reject(err);
          throw err;
        }
        item.gate?.resolve();
      }
      await installed;
      this.current = undefined;
      const held = this.host.installedSnapshot();
      if (done === undefined || held.meta.index !== snap.meta.index || held.meta.term !== snap.meta.term) {
        throw new Error(`the snapshot at ${snap.meta.index}/${snap.meta.term} was not installed (held: ${held.meta.index}/${held.meta.term})`);
      }
      done();
    }
    // In the same turn as the queue was found empty: whatever comes next applies directly.
    this.restoring = false;
  }
}
