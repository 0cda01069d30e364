// `npm run mutate [-- --only NAME] [--files PREFIX,...] [--budget-s N]`: mutation testing on demand (not in CI).
// Each mutant is one small textual change to src/raft, src/log, src/wal,
// src/storage or src/transport, the kind of slip a person makes. For each, the repository is copied to a scratch
// directory, the change applied, and a fast test subset run there under a time
// budget. A mutant the tests fail on is killed; one they pass survives and names
// a gap in the tests; one that does not compile is invalid, as the tests' build of
// src/ would fail every test on it. Writes bench/results/mutation.json and mutation.md.
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, realpath, rm, symlink, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { intArg, strArg } from '../src/cli/args.js';
import { scriptFlags } from './flags.js';

interface Mutant {
  name: string;
  file: string;
  find: string;
  replace: string;
  /** Why a mutant the tests cannot kill is fine (an equivalent mutant), shown with its outcome. */
  survives?: string;
  /** The tests that judge it, where the default subset for its layer does not reach its code. */
  tests?: string[];
}

// Each `find` must occur exactly once in its file (checked before anything runs: the script refuses otherwise).
const MUTANTS: Mutant[] = [
  {
    name: 'raft: commit an older term by counting (Figure 8)',
    file: 'src/raft/log.ts',
    find: 'if (maxIndex > this.committed && this.zeroTerm(maxIndex) === term) {',
    replace: 'if (maxIndex > this.committed) {',
  },
  {
    name: 'raft: up-to-date check compares index first',
    file: 'src/raft/log.ts',
    find: 'return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());',
    replace: 'return lastIndex >= this.lastIndex();',
  },
  { name: 'raft: up-to-date check off by one', file: 'src/raft/log.ts', find: 'lastIndex >= this.lastIndex());', replace: 'lastIndex > this.lastIndex());' },
  {
    name: 'raft: vote granted to anyone (canVote always)',
    file: 'src/raft/raft.ts',
    find: 'const canVote = this.vote === m.from ||',
    replace: 'const canVote = true ||',
  },
  { name: 'raft: vote not recorded', file: 'src/raft/raft.ts', find: '            this.vote = m.from;', replace: '            void m.from;' },
  {
    name: 'raft: snapshot restore drops a matching suffix',
    file: 'src/raft/raft.ts',
    find: '    if (this.raftLog.matchTerm(s.meta.index, s.meta.term)) {',
    replace: '    if (false) {',
  },
  {
    name: 'raft: transfer before the transferee caught up',
    file: 'src/raft/raft.ts',
    find: '        if (pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(transferee);',
    replace: '        this.sendTimeoutNow(transferee);',
  },
  {
    name: 'raft: stale append response accepted past the leader log',
    file: 'src/raft/raft.ts',
    find: 'if (!m.reject && m.index > this.raftLog.lastIndex()) {',
    replace: 'if (false) {',
  },
  {
    name: 'raft: commitTo beyond the log allowed',
    file: 'src/raft/log.ts',
    find: '    if (tocommit > this.lastIndex()) throw',
    replace: '    if (false) throw',
  },
  {
    name: 'raft: committed entries handed out before durable',
    file: 'src/raft/log.ts',
    find: '    const hi = Math.min(this.committed, this.stableLastIndex()) + 1;',
    replace: '    const hi = this.committed + 1;',
  },
  {
    name: 'raft: findConflict ignores terms',
    file: 'src/raft/log.ts',
    find: '      if (!this.matchTerm(e.index, e.term)) return e.index;',
    replace: '      if (e.index > this.lastIndex()) return e.index;',
  },
  { name: 'raft: pre-vote skips the lease', file: 'src/raft/raft.ts', find: '        if (!force && inLease) return;', replace: '        if (false) return;' },
  {
    name: 'log: acks sent before the write is durable',
    file: 'src/log/replicated-log.ts',
    find: '    if (rd.messages.length > 0) this.deps.transport?.send(rd.messages);',
    replace: '    if (rd.messages.length > 0) this.deps.transport?.send([...rd.messages, ...rd.messagesAfterPersist]);',
  },
  {
    name: 'log: no fresh snapshot for a new member',
    file: 'src/log/replicated-log.ts',
    find: 'if (this.membership.apply(e)) this.snapshotTaking.memberAdded();',
    replace: 'this.membership.apply(e);',
    tests: ['test/log/membership.test.ts'],
  },
  {
    name: 'log: entries() reads below a restored snapshot',
    file: 'src/log/committed-entries.ts',
    find: '      if (next <= floor) throw new CompactedRangeError(next, floor + 1);',
    replace: '      if (next <= floor) next = floor + 1;',
  },
  {
    name: 'log: snapshot never taken',
    file: 'src/log/snapshot-taking.ts',
    find: '    if (this.since < this.opts.snapshotEvery && !this.forNewMember) return;',
    replace: '    if (this.since >= 0) return;',
  },
  {
    name: 'wal: truncateAfter keeps one entry too few',
    file: 'src/wal/positions.ts',
    find: '    this.count = index - this.base + 1;',
    replace: '    this.count = index - this.base;',
  },
  {
    name: 'wal: entries() serves one compacted index',
    file: 'src/wal/wal.ts',
    find: '    if (lo < this.#first) throw',
    replace: '    if (lo < this.#first - 1) throw',
  },
  {
    name: 'wal: entries() serves one index past the end',
    file: 'src/wal/wal.ts',
    find: '    if (hi > this.#last + 1) throw',
    replace: '    if (hi > this.#last + 2) throw',
  },
  {
    name: 'wal: releaseTo past the snapshot allowed',
    file: 'src/wal/wal.ts',
    find: '    if (this.#snap === null || index > this.#snap.index)',
    replace: '    if (this.#snap === null)',
  },
  {
    name: 'wal: cache truncateAfter keeps one stale entry',
    file: 'src/wal/cache.ts',
    find: '    const keep = index - this.lo + 1;',
    replace: '    const keep = index - this.lo + 2;',
  },
  {
    name: 'wal: cache truncateAfter below the cache keeps it',
    file: 'src/wal/cache.ts',
    find: '    if (index < this.lo) {',
    replace: '    if (index < this.lo - 1) {',
    survives: 'equivalent: at index = lo - 1 the general path also empties the cache and keeps lo, as clear(lo) does',
  },
  {
    name: 'wal: positions dropBefore miscounts',
    file: 'src/wal/positions.ts',
    find: '    this.count -= k;',
    replace: '    this.count -= k - 1;',
  },
  {
    name: 'wal: getU64 drops the high word',
    file: 'src/wal/record.ts',
    find: '  return dv.getUint32(at, true) + dv.getUint32(at + 4, true) * TWO32;',
    replace: '  return dv.getUint32(at, true);',
  },
  {
    name: 'wal: append below firstIndex allowed',
    file: 'src/wal/wal.ts',
    find: '    if (first < this.#first) throw new WalGapError(',
    replace: '    if (false) throw new WalGapError(',
  },
  {
    name: 'wal: append leaving a gap allowed',
    file: 'src/wal/wal.ts',
    find: '    if (first > this.#last + 1) throw new WalGapError(',
    replace: '    if (false) throw new WalGapError(',
  },
  {
    name: 'wal: term() serves a compacted index',
    file: 'src/wal/wal.ts',
    find: '    if (index < this.#positions.base) throw new WalCompactedError(`term(',
    replace: '    if (index < this.#positions.base - 1) throw new WalCompactedError(`term(',
  },
  {
    name: 'wal: snapshot older than the log start accepted',
    file: 'src/wal/wal.ts',
    find: '      if (index < this.#positions.base) throw new WalInvalidArgumentError(`snapshot at',
    replace: '      if (false) throw new WalInvalidArgumentError(`snapshot at',
  },
  {
    name: 'wal: snapshot keeps a suffix whose term differs',
    file: 'src/wal/positions.ts',
    find: '    if (discardLog || index > this.last || this.term(index) !== term) {',
    replace: '    if (discardLog || index > this.last) {',
  },
  {
    name: 'wal: received snapshot keeps the old log',
    file: 'src/wal/positions.ts',
    find: '    if (discardLog || index > this.last || this.term(index) !== term) {',
    replace: '    if (index > this.last || this.term(index) !== term) {',
  },
  {
    name: 'wal: replay accepts an entry at or below the start',
    file: 'src/wal/replay.ts',
    find: '      if (a <= p.base) throw corruptAt(',
    replace: '      if (false) throw corruptAt(',
  },
  {
    name: 'wal: replay accepts a gap',
    file: 'src/wal/replay.ts',
    find: '      if (a > p.last + 1) throw corruptAt(',
    replace: '      if (false) throw corruptAt(',
  },
  {
    name: 'wal: replay keeps an overwritten suffix',
    file: 'src/wal/replay.ts',
    find: '      if (a <= p.last) p.truncateAfter(a - 1);',
    replace: '      if (a < p.last) p.truncateAfter(a - 1);',
  },
  {
    name: 'wal: read ignores a term mismatch on disk',
    file: 'src/wal/wal.ts',
    find: ' || index !== plan.lo + k || term !== plan.terms[k])',
    replace: ' || index !== plan.lo + k)',
    survives: 'not killed: a second guard; the term on disk can only differ from the one replayed if the segment changes under an open WAL',
  },
  {
    name: 'wal: releaseTo frees the segment holding the snapshot index',
    file: 'src/wal/segments.ts',
    find: '    while (this.#list.length > 1 && this.#list[0]!.maxIndex <= index) {',
    replace: '    while (this.#list.length > 1 && this.#list[0]!.maxIndex <= index + 1) {',
  },
  {
    name: 'wal: dataLength serves the compacted index at the log start',
    file: 'src/wal/wal.ts',
    find: '    if (index <= this.#positions.base) throw new WalCompactedError(`dataLength(',
    replace: '    if (index < this.#positions.base) throw new WalCompactedError(`dataLength(',
  },
  {
    name: "raft: a held commit is not released at the leader's own acknowledgement",
    file: 'src/raft/raft.ts',
    find: '    } else if (m.from === this.id && this.commitHeld && pr.match >= this.raftLog.committed) {',
    replace: '    } else if (false) {',
  },
  {
    name: 'raft: a leader handing off holds its commit back',
    file: 'src/raft/raft.ts',
    find: '    if (self === undefined || self.match >= this.raftLog.committed || this.handoffIndex > 0) {',
    replace: '    if (self === undefined || self.match >= this.raftLog.committed) {',
    tests: ['test/raft', 'test/log/membership.test.ts'],
  },
  {
    name: 'log: a change that removed the leader resolves before it hands off',
    file: 'src/log/membership.ts',
    find: '    if (this.host.isLeader() && !this.conf.voters.includes(this.id)) this.confHandoff.add(resolve);',
    replace: '    if (false) this.confHandoff.add(resolve);',
    tests: ['test/log/membership.test.ts'],
  },
  {
    name: 'storage: the catch-up window ignores its byte bound',
    file: 'src/storage/raft-storage.ts',
    find: '      if (bytes > WINDOW_MAX_BYTES) break;',
    replace: '      if (bytes < 0) break;',
    tests: ['test/storage'],
  },
  {
    name: 'transport: a turn is held for as long as the driver says it sends later',
    file: 'src/transport/outbound.ts',
    find: '    if (this.c.sendingLater() && this.flushDeferrals++ < MAX_FLUSH_DEFERRALS) {',
    replace: '    if (this.c.sendingLater()) {',
    tests: ['test/transport/tcp-transport.test.ts'],
  },
  {
    name: 'raft: a vote request from an id the configuration does not name is refused',
    file: 'src/raft/raw-node.ts',
    find: '    return r.lead === None && !r.removedPeers.has(m.from); // a leader knows one: itself',
    replace: '    return false;',
    tests: ['test/raft'],
  },
  {
    name: "raft: a follower that applied its leader's removal refuses that leader's hand-off",
    file: 'src/raft/raw-node.ts',
    find: '    if (r.lead === m.from && m.term === r.term) return true;\n    if (m.type === MsgTimeoutNow) return false;',
    replace: '    if (m.type === MsgTimeoutNow) return false;',
    tests: ['test/raft'],
  },
  {
    name: 'raft: a learner that knows a leader refuses an unknown leader of a later term',
    file: 'src/raft/raw-node.ts',
    find: '    return (!r.trk.progress.has(r.id) || r.isLearner) && m.term > r.term;',
    replace: '    return !r.trk.progress.has(r.id) && m.term > r.term;',
    tests: ['test/raft'],
  },
  {
    name: 'raft: leader traffic of an earlier term from an unknown id is refused, not answered',
    file: 'src/raft/raw-node.ts',
    find: '    return (m.type === MsgApp || m.type === MsgHeartbeat) && m.term < this.raft.term;',
    replace: '    return false;',
    tests: ['test/raft'],
  },
  {
    name: 'raft: a removed leader whose hand-off ended unfinished never campaigns to finish it',
    file: 'src/raft/raft.ts',
    find: '    return ((pr !== undefined && !pr.isLearner) || this.handoffUnfinished) && !this.raftLog.hasNextOrInProgressSnapshot();',
    replace: '    return pr !== undefined && !pr.isLearner && !this.raftLog.hasNextOrInProgressSnapshot();',
    tests: ['test/raft'],
  },
  {
    name: 'raft: a refused vote request restarts the election timer',
    file: 'src/raft/raft.ts',
    find: '            [this.electionElapsed, this.randomizedElectionTimeout] = timer;',
    replace: '',
    tests: ['test/raft'],
  },
  {
    name: 'raft: a removed leader steps down without naming a new voter to campaign',
    file: 'src/raft/raft.ts',
    find: '        if (successor !== None) this.sendTimeoutNow(successor);',
    replace: '',
    tests: ['test/raft'],
  },
  {
    name: 'raft: every heartbeat answer resumes a paused probe',
    file: 'src/raft/raft.ts',
    find: '        if (pr.state !== ProgressStateProbe || pr.probeDue) pr.msgAppFlowPaused = false;',
    replace: '        pr.msgAppFlowPaused = false;',
    tests: ['test/raft'],
  },
  {
    name: 'log: a membership change is applied before its commit is durable',
    file: 'src/log/replicated-log.ts',
    find: '    const held = commitsConfChange(rd);',
    replace: '    const held = false;',
    tests: ['test/log/membership.test.ts'],
  },
  {
    name: 'transport: a peer with no address is not answered on its connection',
    file: 'src/transport/tcp-transport.ts',
    find: '      else if (!this.answer(m)) this.config.unreachable(m.to);',
    replace: '      else this.config.unreachable(m.to);',
    tests: ['test/transport/tcp-transport.test.ts'],
  },
  {
    name: 'log: a read batch asked for before its turn ended takes the barriers that join after',
    file: 'src/log/read-barriers.ts',
    find: '    if (this.batch === b) this.batch = null;\n    this.host.schedulePump();',
    replace: '    this.host.schedulePump();',
    tests: ['test/log/read-barriers.test.ts', 'test/log/read-batch-sent-early.test.ts'],
  },
  {
    name: "log: a read batch stays open past its turn's end",
    file: 'src/log/read-barriers.ts',
    find: '        if (this.batch === opened) this.batch = null;\n        this.request(key);',
    replace: '        this.request(key);',
    tests: ['test/log/read-barriers.test.ts', 'test/log/read-batch-sent-early.test.ts'],
  },
  {
    name: 'storage: a prune removes the received marks before the snapshots',
    file: 'src/storage/snapshot-store.ts',
    find: '    for (const batch of [snapshots, marks]) {',
    replace: '    for (const batch of [marks, snapshots]) {',
    tests: ['test/storage'],
  },
  {
    name: 'storage: a snapshot streamed from its file is not checked against its checksum',
    file: 'src/storage/snapshot-store.ts',
    find: "    if (crc !== tail.readUInt32LE(0)) throw new SnapshotCorruptError(file, 'checksum mismatch');",
    replace: "    if (false) throw new SnapshotCorruptError(file, 'checksum mismatch');",
    tests: ['test/storage'],
  },
  {
    name: 'storage: a later instance recorded for a peer replaces the first',
    file: 'src/storage/peer-instances.ts',
    find: '      if (!map.has(peer)) map.set(peer, { instance, applied });',
    replace: '      map.set(peer, { instance, applied });',
    tests: ['test/storage'],
  },
  {
    name: 'transport: a peer met with another instance than the recorded one is admitted',
    file: 'src/transport/peer-instances.ts',
    find: '  if (known !== undefined) throw new PeerReplacedError(peer);',
    replace: '  if (known !== undefined) return undefined;',
    tests: ['test/storage/peer-instances.test.ts', 'test/transport/instance.test.ts'],
  },
  {
    name: 'log: a membership change whose leader was lost is reported not committed',
    file: 'src/log/membership.ts',
    find: "      c.reject(new OutcomeUnknownError('leadership changed before the membership change was known to commit'));",
    replace: "      c.reject(new NotCommittedError('leadership changed before the membership change was known to commit'));",
    tests: ['test/log/conf-change-leader-loss.test.ts', 'test/log/membership.test.ts'],
  },
  {
    name: 'transport: a handshake proof is taken without being checked',
    file: 'src/transport/auth.ts',
    find: '    if (got.length === want.length && timingSafeEqual(want, got)) proven = s;',
    replace: '    proven = s;',
    tests: ['test/security/handshake.test.ts'],
  },
  {
    name: 'transport: a hello of another cluster is admitted',
    file: 'src/transport/inbound.ts',
    find: '    if (f.clusterId !== this.c.clusterId) throw new ClusterMismatchError(',
    replace: '    if (f.clusterId !== f.clusterId) throw new ClusterMismatchError(',
    tests: ['test/transport/tcp-transport.test.ts'],
  },
  {
    name: 'transport: a hello of another wire version is admitted',
    file: 'src/transport/inbound.ts',
    find: '    if (f.version !== WIRE_VERSION) throw new MalformedFrameError(',
    replace: '    if (f.version !== f.version) throw new MalformedFrameError(',
    tests: ['test/security/handshake.test.ts'],
  },
  {
    name: 'transport: a message naming another sender than its connection proved is delivered',
    file: 'src/transport/inbound.ts',
    find: '    if (m.to !== this.c.self || (m.from !== this.peer && !forwarded)) {',
    replace: '    if (m.to !== this.c.self) {',
    tests: ['test/security/handshake.test.ts'],
  },
  {
    name: 'storage: a received snapshot is installed without its checksum checked',
    file: 'src/storage/snapshot-store.ts',
    find: "    if (crc !== tail.readUInt32LE(0)) throw bad('checksum mismatch');",
    replace: "    if (false) throw bad('checksum mismatch');",
    tests: ['test/storage'],
  },
  {
    name: 'storage: a hard state committing past the last entry is opened',
    file: 'src/storage/raft-storage.ts',
    find: '  if (hs.commit > last) throw new StateCorruptError(',
    replace: '  if (false) throw new StateCorruptError(',
    tests: ['test/storage/raft-storage.test.ts', 'test/log/damaged-dir.test.ts'],
  },
  {
    name: 'storage: a log whose terms fall is opened',
    file: 'src/storage/raft-storage.ts',
    find: '    if (t < prev) throw new StateCorruptError(',
    replace: '    if (false) throw new StateCorruptError(',
    tests: ['test/storage/raft-storage.test.ts', 'test/log/damaged-dir.test.ts'],
  },
  {
    name: 'wal: replay accepts a segment that starts past the end of the ones before it',
    file: 'src/wal/replay.ts',
    find: '      if (s.firstIndex > p.last + 1)',
    replace: '      if (false)',
  },
  {
    name: 'log: a record batch whose last record runs past its end is read',
    file: 'src/log/record-batch.ts',
    find: '      if (end < 0 || end + this.#varint > size) throw new LogCorruptError(',
    replace: '      if (end < 0) throw new LogCorruptError(',
    tests: ['test/log/record-batch.test.ts'],
  },
  {
    name: "log: a snapshot's member list length is not bounded before it is read",
    file: 'src/log/snapshot-data.ts',
    find: '  if (len > MAX_MEMBERS_BYTES) throw bad(',
    replace: '  if (false) throw bad(',
    tests: ['test/log/snapshot-data.test.ts'],
  },
  {
    name: 'log: a node removed from the cluster takes appends and barriers',
    file: 'src/log/removal.ts',
    find: '    return this.wasMember && (this.refusedBy !== 0 || !confMembers(this.host.conf()).has(this.id))',
    replace: '    return false && (this.refusedBy !== 0 || !confMembers(this.host.conf()).has(this.id))',
    tests: ['test/log/removed-restart.test.ts'],
  },
  {
    name: 'log: a change that leaves too few voters answering is proposed',
    file: 'src/log/membership.ts',
    find: '    if (voters.length === 0 || voters.length - down.length > voters.length / 2) return null;',
    replace: '    return null;',
    tests: ['test/log/unheard-voter.test.ts'],
  },
  {
    name: 'kv: a multibulk count over maxArgs is taken',
    file: 'src/kv/resp.ts',
    find: '            if (n > this.limits.maxArgs)\n',
    replace: '            if (false)\n',
    tests: ['test/kv/resp-parser.test.ts', 'test/kv/resp.test.ts'],
  },
  {
    name: 'kv: a line whose end has not come is kept past its bound',
    file: 'src/kv/resp.ts',
    find: '    if (end - start > max + 1) throw new RespProtocolError(code, tooLong);',
    replace: '    if (false) throw new RespProtocolError(code, tooLong);',
    tests: ['test/kv/resp-parser.test.ts', 'test/kv/resp.test.ts'],
  },
  {
    name: "kv: a bulk string's buffer is as long as its header claims before its bytes arrive",
    file: 'src/kv/resp.ts',
    find: '          this.bulk = Buffer.allocUnsafe(Math.min(len, Math.max(BULK_START, end - pos)));',
    replace: '          this.bulk = Buffer.allocUnsafe(len);',
    tests: ['test/kv/resp-parser.test.ts', 'test/kv/resp.test.ts'],
  },
  {
    name: 'admin: a body sent without a length is kept past maxBodyBytes',
    file: 'src/admin/handler.ts',
    find: '        if (size > maxBody) {',
    replace: '        if (false) {',
    tests: ['test/admin/server.test.ts'],
  },
  {
    name: "admin: a connection's unanswered requests are not bounded",
    file: 'src/admin/server.ts',
    find: '    if (n > MAX_UNANSWERED) {',
    replace: '    if (false) {',
    tests: ['test/admin/server.test.ts'],
  },
  {
    name: 'transport: a connection that has not identified itself may send frames as large as a member',
    file: 'src/transport/inbound.ts',
    find: '    this.decoder = new FrameDecoder(Math.min(HANDSHAKE_MAX_BYTES, c.maxFrameBytes));',
    replace: '    this.decoder = new FrameDecoder(c.maxFrameBytes);',
    tests: ['test/transport/inbound.test.ts', 'test/security/handshake.test.ts'],
  },
  {
    name: 'transport: a snapshot announced over maxSnapshotBytes is stored',
    file: 'src/transport/inbound.ts',
    find: '      if (f.total > this.c.maxSnapshotBytes) throw new SnapshotTooLargeError(',
    replace: '      if (false) throw new SnapshotTooLargeError(',
    tests: ['test/transport/snapshot-stream.test.ts'],
  },
  {
    name: 'log: a removal of a node that is not a member commits having changed nothing',
    file: 'src/log/membership.ts',
    find: "      if (s.kind === 'remove' || s.kind === 'promote' || s.kind === 'demote') return new NotMemberError(",
    replace: "      if (s.kind === 'promote' || s.kind === 'demote') return new NotMemberError(",
    tests: ['test/log/membership.test.ts'],
  },
];

const root = resolve(import.meta.dirname, '..');
const USAGE = `usage: npm run mutate -- [--only NAME] [--files PREFIX,...] [--budget-s N] [--report-only]
  --only NAME,...    only the mutants whose name contains one of these (their rows in the last results are updated)
  --files PREFIX,..  only the mutants in files starting with one of these (e.g. src/wal,src/log)
  --budget-s N       seconds each test run may take before the mutant counts as a timeout (default 240)
  --report-only      rewrite the report from the last results (for example after noting why a mutant survives)
Mutants in src/wal are judged by the WAL's tests alone, a mutant that names its tests by those, the rest by the fast subset (SUBSET in scripts/mutate.ts).
Writes bench/results/mutation.json and mutation.md; a run restricted by --files writes mutation-<areas>.json and .md.`;
const known = { only: 'string', files: 'string', 'budget-s': 'string', 'report-only': 'boolean' } as const;
const { only, files, budgetS, reportOnlyAsked } = scriptFlags('mutate', USAGE, known, (opts) => ({
  only: opts.has('only') ? strArg(opts, 'only') : undefined,
  files: opts.has('files') ? strArg(opts, 'files').split(',') : undefined,
  budgetS: intArg(opts, 'budget-s', 240, 1),
  reportOnlyAsked: opts.has('report-only'),
}));
/** The fast subset: the core's scripted tests, the core simulator's checks and planted-bug test, the WAL's pure parts, the log on one node. */
const SUBSET = [
  'test/raft',
  'test/sim/checker.test.ts',
  'test/sim/regressions.test.ts',
  'test/sim/mutations.test.ts',
  'test/wal/wal.test.ts',
  'test/wal/positions.test.ts',
  'test/log/single-node.test.ts',
  'test/log/ack-beside-answers.test.ts',
  'test/sim-log/log-checker.test.ts',
];
/** The WAL is a layer of its own: its tests (recovery, damage and power cuts included) judge its mutants. */
const WAL_SUBSET = ['test/wal'];
const subsetFor = (m: Mutant): string[] => m.tests ?? (m.file.startsWith('src/wal/') ? WAL_SUBSET : SUBSET);

/** A test run's outcome; `failing` names the first failing tests, as vitest's JSON report gives them. */
interface RunResult {
  code: number | null;
  out: string;
  ms: number;
  failing?: string;
}

function run(cwd: string, budgetMs: number, subset: string[]): Promise<RunResult> {
  const started = performance.now();
  const json = join(cwd, '.mutate-vitest.json');
  return new Promise((done) => {
    execFile(
      process.execPath,
      [join(root, 'node_modules/vitest/vitest.mjs'), 'run', '--bail=1', '--reporter=default', '--reporter=json', `--outputFile.json=${json}`, ...subset],
      // Uncoloured, so that the output quoted for a failing baseline reads as plain text.
      { cwd, timeout: budgetMs, maxBuffer: 64 << 20, env: { ...process.env, CI: '1', NO_COLOR: '1', FORCE_COLOR: '0' } },
      (err, stdout, stderr) => {
        // vitest stopped by the budget's SIGTERM exits with a code of its own: that is a timeout, not a failing test.
        const code = err === null ? 0 : err.killed !== true && typeof err.code === 'number' ? err.code : null;
        const ms = Math.round(performance.now() - started);
        void failingTests(cwd, json).then((failing) => done({ code, out: `${stdout}${stderr}`, ms, ...(failing !== undefined ? { failing } : {}) }));
      },
    );
  });
}

interface VitestJson {
  testResults?: { name: string; status: string; message?: string; assertionResults?: { fullName: string; status: string }[] }[];
}

/** The first failing tests of a run, from vitest's JSON report: a file that failed without a failing test (it did not load) is named by its message. */
async function failingTests(cwd: string, json: string): Promise<string | undefined> {
  if (!existsSync(json)) return undefined;
  let report: VitestJson;
  try {
    report = JSON.parse(await readFile(json, 'utf8')) as VitestJson;
  } catch {
    return undefined;
  }
  const names: string[] = [];
  for (const f of report.testResults ?? []) {
    const file = relative(cwd, f.name);
    const failed = (f.assertionResults ?? []).filter((a) => a.status === 'failed');
    for (const a of failed) names.push(`${file} > ${a.fullName}`);
    if (failed.length === 0 && f.status === 'failed') names.push(`${file}: ${(f.message ?? 'failed').split('\n')[0]}`);
  }
  // --bail stops the other workers' tests, but a test each of two workers had under way may both fail.
  return names.length === 0 ? undefined : names.slice(0, 3).join('; ').slice(0, 300);
}

/** The first errors of the mutated sources' build (the tests' global setup builds src/ and fails every test when it does not compile), or undefined when it compiles. */
function typeErrors(cwd: string, budgetMs: number): Promise<string | undefined> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--noEmit', '--pretty', 'false'],
      { cwd, timeout: budgetMs, maxBuffer: 16 << 20 },
      (err, stdout) => {
        if (err === null) return done(undefined);
        const errors = stdout.split('\n').filter((l) => /error TS\d+/.test(l));
        done(errors.length > 0 ? errors.slice(0, 2).join('; ').slice(0, 300) : `tsc did not finish: ${err.message.split('\n')[0]}`);
      },
    );
  });
}

/** Each mutant's `find` text must occur exactly once in its file, or the mutant is not the change its name says. */
async function staleMutants(): Promise<string[]> {
  const stale: string[] = [];
  for (const m of MUTANTS) {
    const path = join(root, m.file);
    const count = existsSync(path) ? (await readFile(path, 'utf8')).split(m.find).length - 1 : 0;
    if (count !== 1) stale.push(`${m.name}: its text occurs ${count} times in ${m.file}${existsSync(path) ? '' : ' (no such file)'}`);
  }
  return stale;
}

async function scratchCopy(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'raftlog-mutant-'));
  for (const p of ['src', 'test', 'bench', 'native', 'package.json', 'tsconfig.json', 'tsconfig.build.json', 'vitest.config.ts', 'binding.gyp'])
    await cp(join(root, p), join(dir, p), { recursive: true });
  await symlink(join(root, 'node_modules'), join(dir, 'node_modules'));
  // The native addon is not mutated: reuse a built one.
  for (const b of [join(root, 'build'), join(await realpath(join(root, 'node_modules')), '../build')]) {
    if (existsSync(b)) {
      await symlink(resolve(b), join(dir, 'build'));
      break;
    }
  }
  return dir;
}

interface Outcome {
  name: string;
  file: string;
  status: 'killed' | 'survived' | 'timeout' | 'invalid';
  ms: number;
  /** The first failing tests, for a killed mutant. */
  killedBy?: string;
  /** The first type errors, for a mutant that does not compile (invalid: the tests cannot judge it). */
  typeErrors?: string;
  survives?: string;
}

const resultsName = (): string => (files === undefined ? 'mutation' : `mutation-${files.map((f) => f.replace(/^src\//, '').replace(/\W+/g, '-')).join('-')}`);

/** A run with --only updates the rows of the mutants it ran in the last results, and keeps the others. */
async function mergedWithLast(outcomes: Outcome[]): Promise<Outcome[]> {
  const path = join(root, `bench/results/${resultsName()}.json`);
  if (!existsSync(path)) return outcomes;
  const last = JSON.parse(await readFile(path, 'utf8')) as { outcomes: Outcome[] };
  const fresh = new Map(outcomes.map((o) => [o.name, o]));
  const merged = last.outcomes.map((o) => fresh.get(o.name) ?? o);
  for (const o of outcomes) if (!last.outcomes.some((l) => l.name === o.name)) merged.push(o);
  return merged;
}

/** --report-only: rewrites the report from the last results (after the reasons of known survivors changed). */
async function reportOnly(): Promise<void> {
  const name = resultsName();
  const last = JSON.parse(await readFile(join(root, `bench/results/${name}.json`), 'utf8')) as { outcomes: Outcome[]; planned: number };
  const outcomes = last.outcomes.map(({ survives: _, ...o }) => {
    const why = MUTANTS.find((m) => m.name === o.name)?.survives;
    return o.status === 'survived' && why !== undefined ? { ...o, survives: why } : o;
  });
  await report(outcomes, last.planned);
}

async function main(): Promise<void> {
  if (reportOnlyAsked) return reportOnly();
  const stale = await staleMutants();
  if (stale.length > 0) {
    console.error(
      `npm run mutate: ${stale.length} mutant(s) no longer match the code; make each find text occur exactly once in its file:\n  ${stale.join('\n  ')}`,
    );
    process.exitCode = 1;
    return;
  }
  const mutants = MUTANTS.filter(
    (m) => (only === undefined || only.split(',').some((o) => m.name.includes(o))) && (files === undefined || files.some((f) => m.file.startsWith(f))),
  );
  const subsets = [...new Set(mutants.map((m) => subsetFor(m).join(' ')))].map((s) => s.split(' '));
  const outcomes: Outcome[] = [];
  // The subset must pass on the code as it is, in a scratch copy, or no mutant's failure means anything.
  const base = await scratchCopy();
  try {
    for (const subset of subsets) {
      const r = await run(base, budgetS * 1000, subset);
      if (r.code !== 0) {
        console.error(`the test subset ${subset.join(' ')} fails without any mutant (exit ${r.code}); fix that first:\n${r.out.slice(-3000)}`);
        process.exitCode = 1;
        return;
      }
      console.log(`baseline: ${subset.join(' ')} passes in ${(r.ms / 1000).toFixed(0)} s`);
    }
  } finally {
    await rm(base, { recursive: true, force: true });
  }
  for (const m of mutants) {
    const text = await readFile(join(root, m.file), 'utf8');
    const dir = await scratchCopy();
    try {
      // A function, so that a `$` in the replacement is not read as a pattern.
      await writeFile(
        join(dir, m.file),
        text.replace(m.find, () => m.replace),
      );
      const outcome = await judge(dir, m);
      outcomes.push(outcome);
      const why = outcome.killedBy ?? outcome.typeErrors;
      console.log(`${outcome.status.toUpperCase().padEnd(8)} ${m.name} (${(outcome.ms / 1000).toFixed(0)} s)${why !== undefined ? ` <- ${why}` : ''}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    // Written after every mutant, so an interrupted run still leaves what it judged.
    await report(only === undefined ? outcomes : await mergedWithLast(outcomes), only === undefined ? mutants.length : undefined);
  }
}

/** A mutant that does not compile fails every test through the tests' build: it is invalid, not killed. */
async function judge(dir: string, m: Mutant): Promise<Outcome> {
  const started = performance.now();
  const errors = await typeErrors(dir, budgetS * 1000);
  if (errors !== undefined) return { name: m.name, file: m.file, status: 'invalid', ms: Math.round(performance.now() - started), typeErrors: errors };
  const r = await run(dir, budgetS * 1000, subsetFor(m));
  const status: Outcome['status'] = r.code === 0 ? 'survived' : r.code === null ? 'timeout' : 'killed';
  return {
    name: m.name,
    file: m.file,
    status,
    ms: Math.round(performance.now() - started),
    ...(status === 'killed' && r.failing !== undefined ? { killedBy: r.failing } : {}),
    ...(status === 'survived' && m.survives !== undefined ? { survives: m.survives } : {}),
  };
}

async function report(outcomes: Outcome[], planned = outcomes.length): Promise<void> {
  const judged = outcomes.filter((o) => o.status === 'killed' || o.status === 'survived');
  const killed = judged.filter((o) => o.status === 'killed').length;
  const score = judged.length === 0 ? 0 : killed / judged.length;
  const invalid = outcomes.filter((o) => o.status === 'invalid');
  const equivalent = outcomes.filter((o) => o.status === 'survived' && o.survives?.startsWith('equivalent') === true).length;
  const subsetOf = (o: Outcome): string[] => {
    const m = MUTANTS.find((x) => x.name === o.name);
    return m !== undefined ? subsetFor(m) : o.file.startsWith('src/wal/') ? WAL_SUBSET : SUBSET;
  };
  const subsets = [...new Set(outcomes.map((o) => subsetOf(o).join(', ')))];
  const result = { date: new Date().toISOString(), subsets, budgetS, score, killed, judged: judged.length, invalid: invalid.length, planned, outcomes };
  const name = resultsName();
  await mkdir(join(root, 'bench/results'), { recursive: true });
  await writeFile(join(root, `bench/results/${name}.json`), `${JSON.stringify(result, null, 2)}\n`);
  const md = [
    '# Mutation testing',
    '',
    `Score: ${killed} of ${judged.length} mutants killed (${(score * 100).toFixed(0)}%; ${planned} planned)${equivalent > 0 ? `; ${equivalent} of the survivors are equivalent mutants (no test can kill them)` : ''}. Judged by: ${subsets.join(' / ')}.`,
    '',
    ...(invalid.length > 0
      ? [
          `Invalid (the mutated code does not compile, so no test judges it; not in the score): ${invalid.length}: ${invalid.map((o) => o.name).join('; ')}.`,
          '',
        ]
      : []),
    '| mutant | file | outcome | killed by (or why it may survive, or why it does not compile) |',
    '| --- | --- | --- | --- |',
    ...outcomes.map((o) => `| ${o.name} | ${o.file} | ${o.status} | ${(o.killedBy ?? o.survives ?? o.typeErrors ?? '').replace(/\|/g, '\\|')} |`),
    '',
  ].join('\n');
  await writeFile(join(root, `bench/results/${name}.md`), md);
  console.log(
    `score ${killed}/${judged.length}${invalid.length > 0 ? `; ${invalid.length} invalid: ${invalid.map((o) => o.name).join('; ')}` : ''}; written to bench/results/${name}.json and .md`,
  );
}

await main();
