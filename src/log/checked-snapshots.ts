// What the log hands a transport to carry snapshots with: the TCP transport it opens is given
// it when made, a transport from deps when started (TransportHandlers.snapshots).
import type { SnapshotStore } from '../storage/snapshot-store.js';
import type { SnapshotStreams } from '../transport/snapshot-streams.js';
import { checkSnapshotData } from './snapshot-data.js';

/**
 * The store as the transport sees it, a received snapshot's data checked as far as the log
 * reads it before raft is handed the snapshot: installed, it replaces the log, and data the
 * log cannot decode would stop the node there and at every open after.
 */
export function checkedOnArrival(store: SnapshotStore): SnapshotStreams {
  return {
    open: (snapshot) => store.open(snapshot),
    spool: async (meta, size) => {
      const spool = await store.spool(meta, size);
      return {
        write: (chunk) => spool.write(chunk),
        abort: () => spool.abort(),
        finish: async () => {
          const snapshot = { meta, data: await spool.finish() };
          try {
            await checkSnapshotData(store.read(snapshot), `received at index ${meta.index}, term ${meta.term}`);
          } catch (err) {
            await store.discard(snapshot);
            throw err;
          }
          return snapshot.data;
        },
      };
    },
  };
}
