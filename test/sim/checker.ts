// The safety invariants of Raft, checked incrementally as the simulator (or a
// test feeding a made-up history) reports what each node did. The checker keeps
// its own shadow of every node's log, built only from what the node handed out,
// so it never trusts the core's view of itself. It also holds the driver to one
// duty the core relies on for progress: a fresh snapshot for a new member.
import type { ConfState, Entry, HardState, SnapshotMeta } from '../../src/raft/types.js';

export class InvariantViolation extends Error {
  readonly code = 'SIM_INVARIANT';
  constructor(
    /** Which invariant broke, e.g. 'election-safety'. */
    readonly invariant: string,
    detail: string,
  ) {
    super(`${invariant}: ${detail}`);
    this.name = 'InvariantViolation';
  }
}

/** What uniquely identifies an entry's content: index and term are not enough for a broken core. */
export function entryKey(e: Pick<Entry, 'term' | 'type' | 'data'>): string {
  let s = `${e.term}/${e.type}/`;
  for (let i = 0; i < e.data.length; i++) s += String.fromCharCode(e.data[i]!);
  return s;
}

/** The state machine of the simulation: a running FNV-1a hash over applied entry keys. */
export function mixHash(prev: number, key: string): number {
  let h = prev ^ 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** A node's log as the checker sees it: a compacted prefix up to `offset`, then entries. */
interface ShadowLog {
  offset: number;
  offsetTerm: number;
  terms: number[];
  keys: string[];
}

interface NodeView {
  log: ShadowLog;
  term: number;
  leader: boolean;
  commit: number;
  applied: number;
}

/** Whether `node` has durably stored the entry at `index` with `term` (or a durable snapshot covering it). */
export type DurableProbe = (node: number, index: number, term: number) => boolean;

/**
 * Whether the configuration names `id` in any of its sets, as the core asks of a snapshot before installing it.
 * While joint, a voter being demoted is named only as an outgoing voter and a learner-to-be: a snapshot taken
 * then serves it, and a leader that left the joint state may send it until its next compaction.
 */
function names(conf: ConfState, id: number): boolean {
  return [conf.voters, conf.learners, conf.votersOutgoing ?? [], conf.learnersNext ?? []].some((set) => set.includes(id));
}

export class InvariantChecker {
  private readonly nodes = new Map<number, NodeView>();
  /** Who led each term. */
  private readonly leaderOfTerm = new Map<number, number>();
  /** committed[i]: the key of the entry committed at index i (1-based; [0] unused). */
  private readonly committed: string[] = [''];
  private readonly committedTerm: number[] = [0];
  /** The lowest term in which index i was known committed. */
  private readonly commitTerm: number[] = [0];
  /** hashes[i]: state machine hash after applying committed[1..i]. */
  private readonly hashes: number[] = [0];
  private readonly durableCommit = new Map<number, number>();
  private readonly durableTerm = new Map<number, number>();
  private readonly durableVote = new Map<number, number>();
  /** index/term -> the entry's key and the term before it, as first seen in any log (Log Matching). */
  private readonly byIndexTerm = new Map<string, { key: string; prevTerm: number }>();
  /** A member sent snapshots that do not name it: since when, and by whom first. */
  private readonly staleSnapshotSince = new Map<number, { since: number; from: number }>();

  /** Highest index known committed anywhere. */
  get commitIndex(): number {
    return this.committed.length - 1;
  }

  private view(node: number): NodeView {
    let v = this.nodes.get(node);
    if (v === undefined) {
      v = { log: { offset: 0, offsetTerm: 0, terms: [], keys: [] }, term: 0, leader: false, commit: 0, applied: 0 };
      this.nodes.set(node, v);
    }
    return v;
  }

  /** The term of `index` in the node's shadow log, or undefined when outside it. */
  termAt(node: number, index: number): number | undefined {
    const log = this.view(node).log;
    if (index === log.offset) return log.offsetTerm;
    if (index < log.offset || index > log.offset + log.terms.length) return undefined;
    return log.terms[index - log.offset - 1];
  }

  private keyAt(log: ShadowLog, index: number): string | undefined {
    if (index <= log.offset || index > log.offset + log.keys.length) return undefined;
    return log.keys[index - log.offset - 1];
  }

  lastIndex(node: number): number {
    const log = this.view(node).log;
    return log.offset + log.terms.length;
  }

  /**
   * The node restarted (or started) with this durable state: its log is the
   * compacted prefix up to snapIndex plus `entries`. Its state machine starts
   * at snapIndex until stateRestored says where it really resumed.
   */
  nodeStarted(node: number, durable: { term: number; commit: number; snapIndex: number; snapTerm: number; entries: readonly Entry[] }): void {
    const { term, commit: durableCommit, snapIndex, snapTerm, entries } = durable;
    const v = this.view(node);
    v.log = { offset: snapIndex, offsetTerm: snapTerm, terms: [], keys: [] };
    v.term = term;
    v.leader = false;
    v.commit = durableCommit;
    v.applied = snapIndex;
    if (entries.length > 0) this.logAppended(node, entries);
    const prev = this.durableCommit.get(node) ?? 0;
    if (durableCommit < prev) {
      throw new InvariantViolation('commit-monotonic', `node ${node} restarted with durable commit ${durableCommit} below ${prev}`);
    }
  }

  /** The node handed out entries to append: they replace its log from entries[0].index on. */
  logAppended(node: number, entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const log = this.view(node).log;
    const first = entries[0]!.index;
    if (first <= log.offset) {
      throw new InvariantViolation('log-matching', `node ${node} appended at ${first}, inside its snapshot (up to ${log.offset})`);
    }
    if (first > log.offset + log.terms.length + 1) {
      throw new InvariantViolation('log-matching', `node ${node} appended at ${first} leaving a gap after ${log.offset + log.terms.length}`);
    }
    const keep = first - log.offset - 1;
    if (keep < log.terms.length) {
      // A node that holds a committed entry must never lose it or see it replaced by a leader of the term that
      // committed it or a later one (those hold it: Leader Completeness). A leader of an earlier term may still
      // reach a node it was cut off from and overwrite a copy the committing majority did not need: the entries'
      // last term is a floor for that leader's term.
      const by = entries[entries.length - 1]!.term;
      for (let i = first; i <= Math.min(this.commitIndex, log.offset + log.terms.length); i++) {
        if (this.keyAt(log, i) !== this.committed[i] || by < this.commitTerm[i]!) continue;
        const e = entries[i - first];
        if (e === undefined || entryKey(e) !== this.committed[i]) {
          throw new InvariantViolation('log-matching', `node ${node} truncated committed entry ${i} (${this.committed[i]})`);
        }
      }
      log.terms.length = keep;
      log.keys.length = keep;
    }
    let prevTerm = this.termAt(node, first - 1)!;
    for (let j = 0; j < entries.length; j++) {
      const e = entries[j]!;
      if (e.index !== first + j) {
        throw new InvariantViolation('log-matching', `node ${node} appended non-contiguous entries (${e.index} after ${first + j - 1})`);
      }
      if (e.term < prevTerm) {
        throw new InvariantViolation('log-matching', `node ${node} log term decreases at ${e.index}: ${prevTerm} then ${e.term}`);
      }
      const key = entryKey(e);
      this.matchGlobal(node, e.index, e.term, key, prevTerm);
      log.terms.push(e.term);
      log.keys.push(key);
      prevTerm = e.term;
    }
  }

  /**
   * Log Matching: the first node to hold (index, term) fixes the entry and the
   * term before it; every other log with (index, term) must agree, which by
   * induction makes the logs identical up to there.
   */
  private matchGlobal(node: number, index: number, term: number, key: string, prevTerm: number): void {
    const id = `${index}/${term}`;
    const seen = this.byIndexTerm.get(id);
    if (seen === undefined) {
      this.byIndexTerm.set(id, { key, prevTerm });
      return;
    }
    if (seen.key !== key) {
      throw new InvariantViolation('log-matching', `node ${node} holds a different entry at index ${index} term ${term}: ${key} vs ${seen.key}`);
    }
    if (seen.prevTerm !== prevTerm) {
      throw new InvariantViolation('log-matching', `node ${node} has entry ${index}/${term} after term ${prevTerm}, another log after term ${seen.prevTerm}`);
    }
  }

  /** The node's log was replaced by a snapshot up to (index, term). */
  snapshotInstalled(node: number, index: number, term: number): void {
    const v = this.view(node);
    if (index < v.commit) {
      throw new InvariantViolation('commit-monotonic', `node ${node} installed snapshot ${index} below its commit ${v.commit}`);
    }
    const known = this.committedTerm[index];
    if (known !== undefined && index > 0 && known !== term) {
      throw new InvariantViolation('state-machine-safety', `node ${node} installed snapshot ${index}/${term}, committed term there is ${known}`);
    }
    // A log that already holds the snapshot's last entry keeps what follows it (Figure 13, step 6): that
    // suffix may be acknowledged, and counted toward a commit.
    if (index > v.log.offset && this.termAt(node, index) === term && this.lastIndex(node) > index) {
      throw new InvariantViolation(
        'snapshot-keeps-suffix',
        `node ${node} installed snapshot ${index}/${term}, which its log holds, and discarded entries ${index + 1}..${this.lastIndex(node)} after it`,
      );
    }
    v.log = { offset: index, offsetTerm: term, terms: [], keys: [] };
  }

  /** The node is (as of its latest Ready) in `term`, leading it or not. */
  roleObserved(node: number, term: number, leader: boolean): void {
    const v = this.view(node);
    if (term < v.term) {
      // Terms only grow while a node lives; a restart reloads the durable term (see nodeStarted).
      throw new InvariantViolation('term-monotonic', `node ${node} went from term ${v.term} back to ${term}`);
    }
    const becameLeader = leader && !(v.leader && v.term === term);
    v.term = term;
    v.leader = leader;
    if (!leader) return;
    const other = this.leaderOfTerm.get(term);
    if (other !== undefined && other !== node) {
      throw new InvariantViolation('election-safety', `two leaders in term ${term}: node ${other} and node ${node}`);
    }
    this.leaderOfTerm.set(term, node);
    if (becameLeader) {
      for (let i = 1; i <= this.commitIndex; i++) this.checkLeaderHas(node, v, i);
    }
  }

  /** Leader Completeness: an entry committed in a term is in the log of every leader of a later term. */
  private checkLeaderHas(node: number, v: NodeView, index: number): void {
    if (this.commitTerm[index]! >= v.term) return;
    if (index <= v.log.offset) return; // compacted: it was committed in the node's own view
    const key = this.keyAt(v.log, index);
    if (key !== this.committed[index]) {
      throw new InvariantViolation(
        'leader-completeness',
        `leader ${node} of term ${v.term} lacks entry ${index} (${this.committed[index]}) committed in term ${this.commitTerm[index]}, has ${key ?? 'nothing'}`,
      );
    }
  }

  /**
   * The node announced commit index `commit` while in `term`. When it leads, a
   * majority of `voters` must durably hold every newly committed entry (and, while the
   * configuration is joint, a majority of `votersOutgoing` too).
   */
  commitObserved(node: number, commit: number, voters: readonly number[], durable: DurableProbe, votersOutgoing: readonly number[] = []): void {
    const v = this.view(node);
    if (commit < v.commit) {
      throw new InvariantViolation('commit-monotonic', `node ${node} commit went from ${v.commit} back to ${commit}`);
    }
    if (commit > this.lastIndex(node)) {
      throw new InvariantViolation('commit-in-log', `node ${node} commits ${commit} beyond its last index ${this.lastIndex(node)}`);
    }
    // A leader counts replicas only of an entry of its own term; older ones commit by being before it (§5.4.2).
    if (v.leader && commit > v.commit && commit > v.log.offset && this.termAt(node, commit) !== v.term) {
      throw new InvariantViolation(
        'commit-current-term',
        `leader ${node} of term ${v.term} advanced its commit to ${commit}, an entry of term ${this.termAt(node, commit)}, by counting replicas`,
      );
    }
    for (let i = v.commit + 1; i <= commit; i++) {
      if (i <= v.log.offset) continue; // covered by a snapshot, checked on install
      const key = this.keyAt(v.log, i)!;
      const term = this.termAt(node, i)!;
      if (i <= this.commitIndex) {
        if (this.committed[i] !== key) {
          throw new InvariantViolation('state-machine-safety', `node ${node} commits ${key} at ${i}, already committed there: ${this.committed[i]}`);
        }
        continue;
      }
      if (i !== this.commitIndex + 1) {
        throw new InvariantViolation('commit-in-log', `node ${node} commits ${i} while the known committed prefix ends at ${this.commitIndex}`);
      }
      // Only a leader decides commitment; anyone else learns it from a leader, whose Ready came first.
      if (!v.leader) {
        throw new InvariantViolation('commit-durable-on-majority', `node ${node}, not leading, commits ${i} which no leader had committed`);
      }
      for (const half of votersOutgoing.length > 0 ? [voters, votersOutgoing] : [voters]) {
        let have = 0;
        for (const id of half) if (durable(id, i, term)) have++;
        if (have * 2 <= half.length) {
          throw new InvariantViolation(
            'commit-durable-on-majority',
            `leader ${node} committed entry ${i} (term ${term}) held durably by only ${have} of voters [${half.join(',')}]`,
          );
        }
      }
      this.committed.push(key);
      this.committedTerm.push(term);
      this.commitTerm.push(v.term);
      for (const [id, other] of this.nodes) {
        if (other.leader && id !== node) this.checkLeaderHas(id, other, i);
      }
    }
    v.commit = commit;
  }

  /** The node wrote this HardState to stable storage. */
  durableHardStateObserved(node: number, hs: HardState): void {
    const prev = this.durableCommit.get(node) ?? 0;
    if (hs.commit < prev) {
      throw new InvariantViolation('commit-monotonic', `node ${node} durable commit went from ${prev} back to ${hs.commit}`);
    }
    this.durableCommit.set(node, hs.commit);
    const prevTerm = this.durableTerm.get(node) ?? 0;
    if (hs.term < prevTerm) {
      throw new InvariantViolation('term-monotonic', `node ${node} durable term went from ${prevTerm} back to ${hs.term}`);
    }
    const votes = this.durableVote.get(node);
    if (votes !== undefined && hs.term === prevTerm && votes !== 0 && hs.vote !== votes) {
      throw new InvariantViolation('one-vote-per-term', `node ${node} voted for ${votes} and then ${hs.vote} in term ${hs.term}`);
    }
    this.durableTerm.set(node, hs.term);
    this.durableVote.set(node, hs.vote);
  }

  /** The node applied `entry` to its state machine, which now hashes to `hash`. */
  applied(node: number, entry: Entry, hash: number): void {
    const v = this.view(node);
    const i = entry.index;
    if (i !== v.applied + 1) {
      throw new InvariantViolation('applied-prefix', `node ${node} applied index ${i} after ${v.applied}`);
    }
    if (i > v.commit) {
      throw new InvariantViolation('applied-prefix', `node ${node} applied ${i} beyond its commit ${v.commit}`);
    }
    const key = entryKey(entry);
    const want = this.committed[i];
    if (want === undefined) {
      throw new InvariantViolation('applied-prefix', `node ${node} applied ${i} (${key}) which no node reported committed`);
    }
    if (want !== key) {
      throw new InvariantViolation('applied-prefix', `node ${node} applied ${key} at ${i}, the common sequence has ${want}`);
    }
    const known = this.hashes[i];
    if (known === undefined) {
      const prev = this.hashes[i - 1];
      if (prev === undefined) throw new InvariantViolation('applied-prefix', `no state known before index ${i}`);
      this.hashes[i] = mixHash(prev, key);
    }
    if (this.hashes[i] !== hash) {
      throw new InvariantViolation('applied-prefix', `node ${node} state after ${i} is ${hash}, the common sequence gives ${this.hashes[i]}`);
    }
    v.applied = i;
  }

  /**
   * The node applied a membership change that leaves it `conf`. A member it removes is no longer owed a
   * snapshot that names it: if it is added back, the sender's allowance starts again (see snapshotSent).
   */
  confApplied(node: number, conf: ConfState): void {
    for (const [to, stale] of this.staleSnapshotSince) if (stale.from === node && !names(conf, to)) this.staleSnapshotSince.delete(to);
  }

  /** The node restored its state machine from a snapshot at `index` whose state hashes to `hash`. */
  stateRestored(node: number, index: number, hash: number): void {
    const v = this.view(node);
    const want = this.hashes[index];
    if (want === undefined) {
      throw new InvariantViolation('applied-prefix', `node ${node} restored a snapshot at ${index}, a state no node ever reached`);
    }
    if (want !== hash) {
      throw new InvariantViolation('applied-prefix', `node ${node} restored state ${hash} at ${index}, the common sequence gives ${want}`);
    }
    if (index < v.applied) {
      throw new InvariantViolation('applied-prefix', `node ${node} restored snapshot ${index} below its applied ${v.applied}`);
    }
    v.applied = index;
  }

  /** Entries of the normal type applied so far on `node` (for liveness checks). */
  appliedIndex(node: number): number {
    return this.view(node).applied;
  }

  /**
   * A node added after the sender's latest snapshot refuses that snapshot (it does not name it): the sender
   * must take a fresh one soon after it applies the addition, or the newcomer can never catch up. Judged when
   * the snapshot is sent, at time `now`, against the sender's configuration then: a copy the network holds
   * back (for a paused receiver, say) may arrive long after the sender moved on. Such snapshots may be sent
   * for `allowance` (a few disk writes and a compaction) before it counts as stuck.
   */
  snapshotSent(from: number, senderConf: ConfState, to: number, snap: SnapshotMeta, now: number, allowance: number): void {
    if (names(snap.conf, to)) {
      this.staleSnapshotSince.delete(to);
      return;
    }
    if (!names(senderConf, to)) return;
    const since = this.staleSnapshotSince.get(to)?.since;
    if (since === undefined) this.staleSnapshotSince.set(to, { since: now, from });
    else if (now - since > allowance) {
      throw new InvariantViolation(
        'snapshot-for-new-member',
        `node ${to}, a member for node ${from} since before t=${since}, is still sent snapshot ${snap.index}, which does not name it`,
      );
    }
  }
}
