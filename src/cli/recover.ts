// `raftlog recover --force-new-cluster`: when a majority of a cluster is lost for
// good, one survivor's data becomes a new one-member cluster (etcd's
// --force-new-cluster). Offline: the node must be stopped.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { KvStateMachine } from '../kv/index.js';
import { ConfChangeType, EntryType } from '../raft/types.js';
import { checkDataDir } from '../log/data-dir.js';
import { decodeMembershipEntry } from '../log/membership.js';
import { decodeBatch } from '../log/record-batch.js';
import { decodeSnapshotData, encodeSnapshotData } from '../log/snapshot-data.js';
import { NullStateMachine, snapshotChunks, type StateMachine } from '../log/state-machine.js';
import { RaftStorage } from '../storage/raft-storage.js';
import { FileSnapshotStore } from '../storage/snapshot-store.js';
import { forgetAllPeerInstances, readPeerInstances } from '../storage/peer-instances.js';
import { StateCorruptError } from '../storage/errors.js';
import { RECOVER, markUnfinished, unmarkUnfinished } from '../storage/unfinished.js';
import { Wal } from '../wal/index.js';
import { isPeerAddress } from '../transport/address.js';
import { UsageError, addressArg, intArg, parseArgs, strArg } from './args.js';
import { CliError, EXIT, runCommand } from './failure.js';

const USAGE = `usage: raftlog recover --force-new-cluster --data DIR --id N [--listen HOST:PORT] [--state-machine kv|none] --yes [--json]
For a cluster that lost a majority of its members for good: turns the data of one
surviving node (stopped) into a new cluster whose only member is that node. Then start
it with \`raftlog serve --id N --data DIR --listen HOST:PORT\` (its peer address, with its
secret or certificates; no --peers) and add new, empty members with \`raftlog member add\`
+ \`serve --join\`. Without --listen the node has no peer port and can add no member.
RISKS, read before --yes:
  - every entry in this node's log counts as committed, including ones the old cluster
    never committed (their clients were told the outcome is unknown or failed);
  - records the old cluster committed that never reached this node are lost: pick the
    survivor with the highest last index (raftlog inspect DIR shows it);
  - the other old members must never be started again with their old data: wipe them
    (this node forgets their instances, and meets each added back as a new one);
  - --state-machine must be the one the node served with: the log is compacted into a
    snapshot of it, so with 'none' the records are gone, as at any snapshot of such a node.`;

export async function main(args: string[]): Promise<number> {
  return runCommand('recover', USAGE, args, async (a) => {
    const opts = parseArgs(a, {
      'force-new-cluster': 'boolean',
      data: 'string',
      id: 'string',
      listen: 'string',
      'state-machine': 'string',
      yes: 'boolean',
      json: 'boolean',
      help: 'boolean',
    });
    if (!opts.has('force-new-cluster')) throw new UsageError('recover needs --force-new-cluster (the only recovery it knows)');
    const dataDir = strArg(opts, 'data');
    const id = intArg(opts, 'id', undefined, 1);
    const machine = strArg(opts, 'state-machine', 'kv');
    if (machine !== 'kv' && machine !== 'none') throw new UsageError(`--state-machine must be 'kv' or 'none'`);
    if (!opts.has('yes'))
      throw new CliError('NOT_CONFIRMED', "this rewrites the node's data into a new one-member cluster and may commit or lose records", EXIT.failed);
    const listen = opts.has('listen') ? addressArg(opts, 'listen') : undefined;
    // The address is written into the new cluster's configuration, for the members it is to be given.
    if (listen !== undefined && !isPeerAddress(listen))
      throw new UsageError(`--listen: ${listen} is a new free port at every start: the members to be added could not find the node; give its peer port`);
    const r = await forceNewCluster(dataDir, id, listen, machine === 'kv' ? new KvStateMachine() : new NullStateMachine());
    console.log(
      opts.has('json')
        ? JSON.stringify({ ok: true, ...r })
        : `node ${id} is now the only member of a new cluster, at index ${r.index} term ${r.term}; start it with raftlog serve --id ${id} --data ${dataDir} --listen HOST:PORT (its peer address, to add members)`,
    );
    return EXIT.ok;
  });
}

/**
 * Replays the node's snapshot and its whole log into the state machine, then writes
 * a snapshot at the last index whose configuration is this node alone, and a hard
 * state that commits it. The node's term stays: the new cluster's first leader
 * campaigns above every entry it holds.
 */
async function forceNewCluster(
  dataDir: string,
  id: number,
  listen: string | undefined,
  sm: StateMachine<unknown>,
): Promise<{ index: number; term: number; replayed: number }> {
  // Wal.open would create a WAL (its LOCK, a preallocated segment) where there is none: a
  // wrong path, or an empty wal/, is refused before it, so the refusal leaves the directory as it was.
  const walDir = join(dataDir, 'wal');
  if (!existsSync(dataDir)) throw new CliError('NO_WAL', `${dataDir} does not exist`);
  // What the log's open refuses before the WAL opens (and cuts a torn tail, replaces its prepared
  // segment) is refused here alike, with its code: rewritten, such a directory would lose what
  // could still be put back. A restore's unfinished directory among it: made into a new cluster,
  // it would keep its marker, and the restore run again would find a WAL in use.
  await checkDataDir(dataDir, RECOVER);
  if (!existsSync(walDir) || !statSync(walDir).isDirectory()) throw new CliError('NO_WAL', `${dataDir} has no wal/ directory`);
  // LOCK or TAIL beside no segment is a WAL that lost its log: Wal.open names what is missing.
  if (!readdirSync(walDir).some((n) => n.endsWith('.wal') || n === 'LOCK' || n === 'TAIL')) throw new CliError('NO_WAL', `${dataDir} holds no log to recover`);
  const wal = await Wal.open(walDir);
  try {
    if (wal.lastIndex === 0 && wal.snapshot === null) throw new CliError('NO_WAL', `${dataDir} holds no log to recover`);
    // Not made until the new snapshot is written: a refusal before then (its snapshot is
    // missing, say) must leave the directory as it was.
    const snapDir = join(dataDir, 'snapshots');
    const snaps = await FileSnapshotStore.open(snapDir, { create: false });
    const storage = await RaftStorage.open(wal, snaps, { voters: [id], learners: [] });
    // A snapshot received from the leader, whose install a crash cut short before the WAL recorded
    // it, lies past the log's end: committed state the node would fetch again, and with no leader
    // left, the newest this node holds. Left out, the records it covers were lost here.
    const received = (await snaps.held()).filter((h) => h.received === true && h.index > storage.lastIndex()).at(-1);
    const snap = received === undefined ? storage.snapshot() : await snaps.load(received.index, received.term);
    const members = new Map<number, string>();
    const { voters, learners, votersOutgoing = [], learnersNext = [] } = snap.meta.conf;
    const conf = new Set([...voters, ...learners, ...votersOutgoing, ...learnersNext]);
    if (snap.meta.index > 0) {
      const d = await decodeSnapshotData(snaps.read(snap), `at index ${snap.meta.index}, term ${snap.meta.term}`);
      await sm.restore(d.app, { index: snap.meta.index, term: snap.meta.term });
      for (const [m, addr] of d.members) members.set(m, addr);
    }
    const last = received === undefined ? storage.lastIndex() : received.index;
    let replayed = 0;
    for (let lo = received === undefined ? storage.firstIndex() : last + 1; lo <= last;) {
      const batch = storage.entries(lo, Math.min(last + 1, lo + 1024), 4 * 1024 * 1024);
      for (const e of batch) {
        if (e.type === EntryType.Normal) {
          const records = decodeBatch(e.data, e.index);
          records?.payloads.forEach((data, offset) => sm.apply({ index: e.index, term: e.term, offset, data }));
        } else {
          // Either format: a `member replace` or a multi-change request writes format 2.
          for (const cc of decodeMembershipEntry(e).changes) {
            if (cc.type === ConfChangeType.RemoveNode) {
              members.delete(cc.nodeId);
              conf.delete(cc.nodeId);
            } else {
              conf.add(cc.nodeId);
              if (cc.context !== undefined) members.set(cc.nodeId, new TextDecoder().decode(cc.context));
            }
          }
        }
        replayed++;
        lo = e.index + 1;
      }
    }
    await refuseOtherId(dataDir, id, snap.meta.index > 0 ? conf : undefined);
    const term = last === snap.meta.index ? snap.meta.term : storage.term(last);
    const address = listen ?? members.get(id);
    const data = encodeSnapshotData(address === undefined ? [] : [[id, address]], snapshotChunks(sm.snapshot()));
    // Until the last step is durable the directory is refused on open: stopped between the forget and
    // the WAL's record of the new snapshot, it would be the old node trusting any instance of its peers.
    // Run again, this goes on from whichever of them were done, as the snapshot it then finds is the new one.
    await markUnfinished(dataDir, RECOVER);
    // The old members come back wiped, as new instances of their ids: none is to be held to the one met before.
    await forgetAllPeerInstances(dataDir);
    await (await FileSnapshotStore.open(snapDir)).save({ meta: { index: last, term, conf: { voters: [id], learners: [] } }, data });
    await wal.saveSnapshot({ index: last, term }, { discardLog: true });
    const hs = wal.hardState;
    await wal.append([], { term: Math.max(hs.term, term), vote: hs.vote, commit: last });
    await unmarkUnfinished(dataDir, RECOVER);
    return { index: last, term, replayed };
  } finally {
    await wal.close();
  }
}

/**
 * Refuses an `id` that cannot be this node's: one its directory recorded as a peer's, or one
 * missing from a configuration of several members the log ends in (`conf`, known where a
 * snapshot gave the start). Made a cluster of a mistyped id, the node would lead nothing
 * under its own. A configuration of one member is what a recover made, perhaps with a mistyped
 * id, and is no evidence: running it again corrects the id.
 */
async function refuseOtherId(dataDir: string, id: number, conf: ReadonlySet<number> | undefined): Promise<void> {
  // A damaged record of the peers is no evidence either (and is overwritten after this).
  const peers = await readPeerInstances(dataDir).catch((err: unknown) => {
    if (err instanceof StateCorruptError) return new Map<number, unknown>();
    throw err;
  });
  if (peers.has(id)) throw new CliError('NOT_MEMBER', `node ${id} is one of this node's peers (${join(dataDir, 'peer-instances')}): give this node's own id`);
  if (conf !== undefined && conf.size > 1 && !conf.has(id))
    throw new CliError(
      'NOT_MEMBER',
      `node ${id} is not a member of the configuration this log ends in (${[...conf].sort((a, b) => a - b).join(', ')}): give this node's own id`,
    );
}
