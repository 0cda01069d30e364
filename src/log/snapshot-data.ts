import { pack, unpack } from 'msgpackr';

/**
 * What a raft snapshot of the log carries besides the application's bytes: the
 * members' addresses, so that a node restored from a snapshot can reach peers
 * that joined before it.
 */
export interface SnapshotData {
  members: Array<[number, string]>;
  app: Uint8Array;
}

export function encodeSnapshotData(d: SnapshotData): Uint8Array {
  return pack([1, d.members, d.app]);
}

export function decodeSnapshotData(bytes: Uint8Array): SnapshotData {
  if (bytes.byteLength === 0) return { members: [], app: new Uint8Array(0) };
  const v = unpack(bytes) as unknown;
  if (!Array.isArray(v) || v[0] !== 1 || !Array.isArray(v[1]) || !(v[2] instanceof Uint8Array)) {
    throw new TypeError('snapshot data is not in the raftlog snapshot format');
  }
  return { members: v[1] as Array<[number, string]>, app: v[2] };
}
