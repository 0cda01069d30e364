// The TCP transport a log opens to reach its peers, sized, timed and secured from
// the log's options.
import type { Logger } from '../logger.js';
import type { PeerInstanceFile } from '../storage/peer-instances.js';
import type { SnapshotStore } from '../storage/snapshot-store.js';
import { InsecureTransportError } from '../transport/errors.js';
import type { PeerInstances } from '../transport/peer-instances.js';
import { TcpTransport } from '../transport/tcp-transport.js';
import { checkedOnArrival } from './checked-snapshots.js';
import type { ResolvedOptions } from './options.js';

/** Before any file or socket exists: a log reachable over TCP must say how peers prove who they are. */
export function requirePeerAuthentication(o: ResolvedOptions): void {
  if (o.clusterSecret === undefined && o.tls === undefined && o.insecure !== true) throw new InsecureTransportError();
}

/**
 * The largest frame a node takes from a peer. Any record append() accepts fits one: alone in a
 * MsgApp or a forwarded MsgProp, or among others up to raft's 1 MiB per message. A peer whose
 * maxRecordBytes is larger can send a record this node's frames do not hold.
 */
export function peerFrameBytes(maxRecordBytes: number): number {
  return maxRecordBytes + 2 * 1024 * 1024;
}

/**
 * `instance`: the data directory's instance id, its record of the peers' (instance-id.ts,
 * peer-instances.ts), and the log index the node has applied, which each record keeps.
 */
export function openPeerTransport(
  o: ResolvedOptions,
  listen: string | undefined,
  snapshots: SnapshotStore,
  logger: Logger,
  instance?: { id: string; peers: PeerInstanceFile; applied: () => number },
): TcpTransport {
  const transport = new TcpTransport({
    id: o.id,
    ...(instance !== undefined ? { instanceId: instance.id, peerInstances: stamped(instance.peers, instance.applied) } : {}),
    clusterId: o.clusterId,
    maxFrameBytes: peerFrameBytes(o.maxRecordBytes),
    // Snapshots travel as their files: spooled to the snapshot directory, checked, then installed.
    maxSnapshotBytes: o.maxSnapshotBytes,
    snapshots: checkedOnArrival(snapshots),
    listen: listen ?? '127.0.0.1:0',
    peers: Object.fromEntries(Object.entries(o.peers).filter(([k]) => Number(k) !== o.id)),
    clusterSecret: o.clusterSecret,
    tls: o.tls,
    insecure: o.insecure,
    // The transport's dead-peer detection runs on the same clock as elections.
    electionTimeoutMs: o.tickMs * o.electionTicks,
    heartbeatIntervalMs: o.tickMs * o.heartbeatTicks,
    logger,
  });
  if (o.insecure === true && o.clusterSecret === undefined && o.tls === undefined) {
    logger.warn({}, "insecure: peers are not authenticated; anyone who can reach this node's port can rewrite its log");
  }
  return transport;
}

/** The record as the transport reads and adds to it, each record made with the index applied then. */
function stamped(file: PeerInstanceFile, applied: () => number): PeerInstances {
  return { recorded: (peer) => file.recorded(peer), record: (peer, instance) => file.record(peer, instance, applied()) };
}
