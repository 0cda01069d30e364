// A snapshot received from the leader replaces the state machine once its file is
// installed. Until it is restored, the entries committed after it (and any later
// snapshot) wait here, in order: the state machine sees them only on top of the
// state they follow.
import type { Entry, Snapshot } from '../raft/types.js';

/** What restoring needs from the driver. */
export interface SnapshotRestoreHost {
  /** The snapshot storage holds now: the latest installed. */
  installedSnapshot(): Snapshot;
  /** Streams an installed snapshot into the state machine. */
  restore(snap: Snapshot): Promise<void>;
  applyEntries(entries: Entry[]): void;
  stopped(): boolean;
  /** Everything that waited is restored and applied. */
  onDrained(): void;
  fail(err: unknown): void;
}

type Held = { entries: Entry[] } | { snap: Snapshot; installed: Promise<void> };

export class SnapshotRestore {
  private readonly held: Held[] = [];
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

  /** Restores `snap` once `installed` resolves, after whatever waits already. */
  add(snap: Snapshot, installed: Promise<void>): void {
    this.held.push({ snap, installed });
    if (this.restoring) return; // the loop below is running and will reach it
    this.restoring = true;
    this.drain().then(
      () => this.host.onDrained(),
      (err: unknown) => this.host.fail(err),
    );
  }

  private async drain(): Promise<void> {
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
      const { snap, installed } = item;
      await installed;
      const held = this.host.installedSnapshot();
      if (held.meta.index > snap.meta.index && this.held.some((h) => 'snap' in h)) {
        // A later snapshot is installed already (this one's file is gone): it covers this one
        // and the entries waiting behind it, so restoring starts from it.
        while (this.held.length > 0 && 'entries' in this.held[0]!) this.held.shift();
        continue;
      }
      if (held.meta.index !== snap.meta.index || held.meta.term !== snap.meta.term) {
        throw new Error(`the snapshot at ${snap.meta.index}/${snap.meta.term} was not installed (held: ${held.meta.index}/${held.meta.term})`);
      }
      await this.host.restore(held);
    }
    // In the same turn as the queue was found empty: whatever comes next applies directly.
    this.restoring = false;
  }
}
