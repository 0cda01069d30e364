// The world a scenario runs in: RawNodes over MemoryStorage, a mailbox per
// node, a network that can be partitioned, and disks whose writes complete
// only when the script says so (`persist`), several at once if it likes, as
// one group fsync would. Every command returns the lines of its transcript.
import {
  ConfChangeType,
  EntryType,
  MessageType,
  StateType,
  type ConfChange,
  type ConfChangeV2,
  type ConfState,
  type Message,
  type Ready,
} from '../../../src/raft/types.js';
import { CodedError } from '../../../src/errors.js';
import { MemoryStorage, RawNode, decodeConfChangeEntry } from '../../../src/raft/index.js';
import { describeConf, describeEntry, describeMessage, describeReady, progressName, stateName } from './describe.js';
import type { Command } from './script.js';

type Level = 'none' | 'info' | 'debug';

interface Node {
  id: number;
  raw: RawNode;
  storage: MemoryStorage;
  /** Readys handed out whose writes have not completed (only with async-storage-writes). */
  unpersisted: Ready[];
  asyncWrites: boolean;
  electionTick: number;
  /** This node's randomized election timeout, in ticks (fixed here, so a story knows when a node campaigns). */
  electionTimeout: number;
  heartbeatTick: number;
  /** What the narration compares against. */
  seen: { term: number; state: StateType; lead: number };
}

const enc = new TextEncoder();

export class Env {
  private readonly nodes = new Map<number, Node>();
  private readonly mailbox = new Map<number, Message[]>();
  /** Group of each node while partitioned; a message between groups is dropped. */
  private groups: Map<number, number> | null = null;
  private level: Level = 'debug';
  private out: string[] = [];

  run(c: Command): string {
    this.out = [];
    const handler = this.handlers[c.name];
    if (handler === undefined) throw new Error(`unknown command '${c.name}'`);
    handler(c);
    return this.out.length === 0 ? 'ok' : this.out.join('\n');
  }

  private readonly handlers: Record<string, (c: Command) => void> = {
    'add-nodes': (c) => this.addNodes(c),
    campaign: (c) => this.each(c, (n) => this.act(n, () => n.raw.campaign())),
    propose: (c) => {
      const n = this.node(c.positional[0]);
      this.act(n, () => n.raw.propose(enc.encode(c.positional[1] ?? '')));
    },
    'propose-conf-change': (c) => this.proposeConfChange(c),
    'transfer-leadership': (c) => {
      const n = this.node(one(c, 'from'));
      this.act(n, () => n.raw.transferLeader(Number(one(c, 'to'))));
    },
    'process-ready': (c) => this.each(c, (n) => this.processReady(n)),
    persist: (c) => this.each(c, (n) => this.persist(n, c.named.has('n') ? Number(one(c, 'n')) : n.unpersisted.length)),
    'deliver-msgs': (c) => this.each(c, (n) => this.deliver(n, c.named.get('drop')?.[0] === 'true')),
    stabilize: (c) => this.stabilize(c.positional.length > 0 ? c.positional.map((p) => this.node(p)) : [...this.nodes.values()]),
    'tick-election': (c) => this.each(c, (n) => this.tick(n, n.electionTimeout)),
    tick: (c) => this.each(c, (n) => this.tick(n, Number(one(c, 'n')))),
    'tick-heartbeat': (c) => this.each(c, (n) => this.tick(n, n.heartbeatTick)),
    partition: (c) => this.partition(c),
    heal: () => {
      this.groups = null;
    },
    compact: (c) => this.compact(this.node(c.positional[0]), Number(c.positional[1])),
    status: (c) => this.each(c, (n) => this.status(n), true),
    'raft-log': (c) => this.each(c, (n) => this.raftLog(n), true),
    'log-level': (c) => {
      const l = c.positional[0];
      if (l !== 'none' && l !== 'info' && l !== 'debug') throw new Error(`log-level none|info|debug, not ${String(l)}`);
      this.level = l;
    },
  };

  // ---- output ----------------------------------------------------------------------------------

  /** Narration: what a reader needs to follow the story (state changes, commits, drops). */
  private info(line: string): void {
    if (this.level !== 'none') this.out.push(line);
  }

  /** Detail: every Ready and message. */
  private debug(line: string): void {
    if (this.level === 'debug') this.out.push(line);
  }

  // ---- commands ---------------------------------------------------------------------------------

  private addNodes(c: Command): void {
    const count = Number(c.positional[0]);
    const voters = (c.named.get('voters') ?? []).map(Number);
    const learners = (c.named.get('learners') ?? []).map(Number);
    const flag = (k: string): boolean => c.named.get(k)?.[0] === 'true';
    for (let k = 0; k < count; k++) {
      const id = this.nodes.size + 1;
      const storage = voters.length > 0 ? MemoryStorage.withConf(voters, learners) : new MemoryStorage();
      const electionTick = 10;
      const heartbeatTick = 1;
      // The core draws its timeout in [electionTick, 2*electionTick) from random(); a fixed draw gives every
      // node a known timeout (electionTick unless told), so tick-election always fires. The same draw sets a
      // candidate's retry after a split vote, in [2, electionTick/2]: 2 ticks for election-timeout 10 or 11,
      // 3 for 12 to 14, 4 for 15 or 16, 5 for 17 to 19.
      const electionTimeout = c.named.has('election-timeout') ? Number(one(c, 'election-timeout')) : electionTick;
      if (!(electionTimeout >= electionTick && electionTimeout < 2 * electionTick))
        throw new Error(`election-timeout must be in [${electionTick}, ${2 * electionTick})`);
      const draw = (electionTimeout - electionTick + 0.5) / electionTick;
      const raw = new RawNode({ id, storage, electionTick, heartbeatTick, random: () => draw, preVote: flag('prevote'), checkQuorum: flag('checkquorum') });
      const st = raw.status();
      this.nodes.set(id, {
        id,
        raw,
        storage,
        unpersisted: [],
        asyncWrites: flag('async-storage-writes'),
        electionTick,
        electionTimeout,
        heartbeatTick,
        seen: { term: st.term, state: st.state, lead: st.lead },
      });
      this.mailbox.set(id, []);
      this.info(
        `INFO ${id} created: term ${st.term}, ${describeConf(st.conf)}${voters.length === 0 ? ' (no configuration: it learns one from a leader)' : ''}`,
      );
    }
  }

  /**
   * `propose-conf-change 1 add=4`: one change. Several ids, several kinds, `transition=` or
   * `leave-joint` make a ConfChangeV2: `propose-conf-change 1 add=(4,5) remove=(2,3)`.
   */
  private proposeConfChange(c: Command): void {
    const n = this.node(c.positional[0]);
    const kinds: [string, ConfChangeType][] = [
      ['add', ConfChangeType.AddNode],
      ['add-learner', ConfChangeType.AddLearnerNode],
      ['remove', ConfChangeType.RemoveNode],
    ];
    const changes: ConfChange[] = kinds.flatMap(([name, type]) => (c.named.get(name) ?? []).map((id) => ({ type, nodeId: Number(id) })));
    const leave = c.positional[1] === 'leave-joint';
    if (changes.length === 0 && !leave) throw new Error('propose-conf-change needs add=, remove=, add-learner= or leave-joint');
    const transition = c.named.get('transition')?.[0];
    if (transition !== undefined && transition !== 'auto' && transition !== 'explicit') throw new Error('transition=auto|explicit');
    const cc: ConfChange | ConfChangeV2 =
      changes.length === 1 && transition === undefined && !leave ? changes[0]! : { transition: transition ?? 'auto', changes };
    this.act(n, () => n.raw.proposeConfChange(cc));
  }

  private processReady(n: Node): boolean {
    if (!n.raw.hasReady()) return false;
    const rd = n.raw.ready();
    this.debug(`> ${n.id} handling Ready`);
    for (const l of describeReady(rd)) this.debug(`  ${l}`);
    this.send(rd.messages);
    n.raw.advance(rd);
    for (const e of rd.committedEntries) this.apply(n, e);
    n.unpersisted.push(rd);
    if (!n.asyncWrites) this.persist(n, 1, true);
    this.narrate(n);
    return true;
  }

  /** Completes the first `count` pending writes as one group fsync, then reports them with one persisted(). */
  private persist(n: Node, count: number, quiet = false): boolean {
    if (count === 0) return false;
    const group = n.unpersisted.splice(0, count);
    for (const rd of group) {
      if (rd.snapshot !== undefined) n.storage.applySnapshot(rd.snapshot);
      if (rd.entries.length > 0) n.storage.append(rd.entries);
      if (rd.hardState !== undefined) n.storage.setHardState(rd.hardState);
    }
    if (!quiet) this.debug(`> ${n.id} persisting ${group.length === 1 ? '1 Ready' : `${group.length} Readys in one fsync`}; log now ${this.logSummary(n)}`);
    const sent = n.raw.persisted(group[group.length - 1]!);
    const keep = new Set(sent);
    for (const rd of group) {
      for (const m of rd.messagesAfterPersist) {
        if (!keep.has(m)) this.info(`  ${n.id} dropped ${describeMessage(m)}: the log no longer holds ${m.logTerm}/${m.index}`);
      }
    }
    // A write that completes at once (no async-storage-writes) sends what its Ready listed: no need to repeat it.
    const all = group.reduce((k, rd) => k + rd.messagesAfterPersist.length, 0);
    if (sent.length > 0 && !(quiet && sent.length === all)) {
      this.debug(`  ${n.id} sends after persisting:`);
      for (const m of sent) this.debug(`    ${describeMessage(m)}`);
    }
    this.send(sent);
    this.narrate(n);
    return true;
  }

  private deliver(n: Node, drop: boolean): boolean {
    const msgs = this.mailbox.get(n.id)!.splice(0);
    if (msgs.length === 0) return false;
    this.debug(`> ${n.id} ${drop ? 'dropping' : 'receiving'} messages`);
    for (const m of msgs) {
      this.debug(`  ${describeMessage(m)}`);
      if (drop) continue;
      try {
        n.raw.step(m);
      } catch (err) {
        if (!(err instanceof CodedError)) throw err;
        this.info(`  ${n.id} refused ${describeMessage(m)}: ${err.code}`);
      }
      this.narrate(n);
    }
    return true;
  }

  private stabilize(nodes: Node[]): void {
    for (let round = 0; ; round++) {
      if (round > 1000) throw new Error('stabilize: still busy after 1000 rounds');
      let busy = false;
      for (const n of nodes) {
        while (this.processReady(n)) busy = true;
        if (this.persist(n, n.unpersisted.length)) busy = true;
      }
      for (const n of nodes) if (this.deliver(n, false)) busy = true;
      if (!busy) return;
    }
  }

  private tick(n: Node, times: number): void {
    for (let i = 0; i < times; i++) n.raw.tick();
    this.narrate(n);
  }

  private partition(c: Command): void {
    this.groups = new Map();
    c.positional.forEach((g, i) => {
      for (const id of g.split(',')) this.groups!.set(this.node(id).id, i + 1);
    });
    // Nodes left out form one more group.
    for (const id of this.nodes.keys()) if (!this.groups.has(id)) this.groups.set(id, 0);
  }

  /** Snapshots the node at `index` and compacts its log (the scenarios keep no state machine: the data is a label). */
  private compact(n: Node, index: number): void {
    const conf = n.raw.status().conf;
    n.storage.createSnapshot(index, conf, enc.encode(`state at ${index}`));
    n.storage.compact(index);
    this.info(`INFO ${n.id} took a snapshot at ${index} and compacted its log: ${this.logSummary(n)}`);
  }

  private status(n: Node): void {
    const s = n.raw.status();
    this.out.push(
      `${n.id}: ${stateName(s.state)} term:${s.term} vote:${s.vote} lead:${s.lead} commit:${s.commit} applied:${s.applied} ${describeConf(s.conf).replaceAll(' [', ':[')}`,
    );
    if (s.progress !== undefined) {
      for (const [id, p] of Object.entries(s.progress)) {
        this.out.push(`  ${id}: ${progressName(p.state)} match=${p.match} next=${p.next}${p.isLearner ? ' learner' : ''}${p.paused ? ' paused' : ''}`);
      }
    }
  }

  private raftLog(n: Node): void {
    const s = n.storage;
    const snap = s.snapshot().meta;
    if (snap.index > 0) this.out.push(`snapshot ${snap.term}/${snap.index}`);
    if (s.lastIndex() < s.firstIndex()) this.out.push(snap.index > 0 ? 'no entries after it' : 'log is empty');
    else for (const e of s.entries(s.firstIndex(), s.lastIndex() + 1, Infinity)) this.out.push(describeEntry(e));
  }

  // ---- helpers ----------------------------------------------------------------------------------

  private node(id: string | undefined): Node {
    const n = this.nodes.get(Number(id));
    if (n === undefined) throw new Error(`no node ${String(id)}`);
    return n;
  }

  /** Runs `f` for each node named (all when none is), in order. */
  private each(c: Command, f: (n: Node) => unknown, allByDefault = false): void {
    const ids = c.positional.length > 0 ? c.positional : allByDefault ? [...this.nodes.keys()].map(String) : [];
    if (ids.length === 0) throw new Error(`${c.name} needs node ids`);
    for (const id of ids) f(this.node(id));
  }

  /** Calls into the node; a coded refusal is part of the story, anything else a bug in the scenario. */
  private act(n: Node, f: () => unknown): void {
    try {
      f();
    } catch (err) {
      if (!(err instanceof CodedError)) throw err;
      this.info(`  ${n.id} refused: ${err.code}`);
    }
    this.narrate(n);
  }

  private send(msgs: readonly Message[]): void {
    for (const m of msgs) {
      const g = this.groups;
      if (g !== null && g.get(m.from) !== g.get(m.to)) {
        this.debug(`  dropped by the partition: ${describeMessage(m)}`);
        continue;
      }
      const box = this.mailbox.get(m.to);
      if (box === undefined) this.debug(`  no such node: ${describeMessage(m)}`);
      else box.push(m);
    }
  }

  private apply(n: Node, e: { type: EntryType; data: Uint8Array; index: number; term: number }): void {
    if (e.type !== EntryType.ConfChange || e.data.length === 0) return;
    const cc = decodeConfChangeEntry(e.data);
    const cs: ConfState = n.raw.applyConfChange(cc);
    const what = cc.changes.length === 0 ? 'leave-joint' : cc.changes.map((x) => `${ConfChangeType[x.type]} ${x.nodeId}`).join(', ');
    this.info(`INFO ${n.id} applied ${what} at ${e.index}: ${describeConf(cs)}`);
  }

  /** One line for each change of term, role or leader since the last look. */
  private narrate(n: Node): void {
    const s = n.raw.status();
    const was = n.seen;
    if (s.term === was.term && s.state === was.state && s.lead === was.lead) return;
    const parts: string[] = [];
    if (s.state !== was.state) parts.push(`became ${stateName(s.state).toLowerCase()}`);
    if (s.term !== was.term) parts.push(`term ${was.term} -> ${s.term}`);
    if (s.lead !== was.lead) parts.push(s.lead === 0 ? 'knows no leader' : `leader ${s.lead}`);
    this.info(`INFO ${n.id} ${parts.join(', ')}`);
    n.seen = { term: s.term, state: s.state, lead: s.lead };
  }

  private logSummary(n: Node): string {
    const s = n.storage;
    if (s.lastIndex() < s.firstIndex()) return s.firstIndex() > 1 ? `empty after snapshot ${s.firstIndex() - 1}` : 'empty';
    return s
      .entries(s.firstIndex(), s.lastIndex() + 1, Infinity)
      .map((e) => `${e.term}/${e.index}`)
      .join(' ');
  }
}

function one(c: Command, key: string): string {
  const v = c.named.get(key);
  if (v === undefined || v.length !== 1) throw new Error(`${c.name} needs ${key}=`);
  return v[0]!;
}
