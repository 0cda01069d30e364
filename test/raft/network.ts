// A tiny synchronous network for the table tests: nodes persist each Ready
// at once into MemoryStorage, and messages go through one FIFO queue that
// tests can filter (drop a link, isolate a node). The fault-injecting
// simulator lives in test/sim.
import { RawNode, MemoryStorage, decodeConfChangeEntry, type Config } from '../../src/raft/index.js';
import { EntryType, MessageType, type Entry, type Message, type Ready, type ReadState } from '../../src/raft/types.js';

import { seeded } from '../seeded.js';

export { seeded };

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

export interface Peer {
  id: number;
  node: RawNode;
  storage: MemoryStorage;
  /** Data of every applied normal entry, in order (empty entries skipped). */
  applied: string[];
  appliedEntries: Entry[];
  /** Index of the last snapshot restored into the state machine. */
  restoredFrom?: number;
}

export type Filter = (m: Message) => boolean;

export class Network {
  readonly peers = new Map<number, Peer>();
  queue: Message[] = [];
  /** Links cut as "from-to". */
  private cut = new Set<string>();
  private filters: Filter[] = [];
  delivered = 0;
  /** Report every delivered MsgSnap back to its sender as installed (a transport would). */
  autoReportSnapshot = true;
  /** Every message that was delivered, for assertions. */
  log: Message[] = [];

  constructor(
    ids: number[],
    private readonly opts: Partial<Config> = {},
    readonly seed = 1,
  ) {
    for (const id of ids) this.addPeer(id, MemoryStorage.withConf(ids));
  }

  addPeer(id: number, storage: MemoryStorage, extra: Partial<Config> = {}): Peer {
    const node = new RawNode({
      id,
      electionTick: 10,
      heartbeatTick: 1,
      storage,
      random: seeded(this.seed * 1000 + id),
      ...this.opts,
      ...extra,
    });
    const p: Peer = { id, node, storage, applied: [], appliedEntries: [] };
    this.peers.set(id, p);
    return p;
  }

  peer(id: number): Peer {
    const p = this.peers.get(id);
    if (p === undefined) throw new Error(`no peer ${id}`);
    return p;
  }

  node(id: number): RawNode {
    return this.peer(id).node;
  }

  cutLink(a: number, b: number): void {
    this.cut.add(`${a}-${b}`);
    this.cut.add(`${b}-${a}`);
  }

  isolate(id: number): void {
    for (const other of this.peers.keys()) if (other !== id) this.cutLink(id, other);
  }

  heal(): void {
    this.cut.clear();
    this.filters = [];
  }

  /** Drops every message for which `f` returns true. */
  addFilter(f: Filter): void {
    this.filters.push(f);
  }

  /** Persists and applies one Ready of `id` (synchronously), queueing its messages. */
  handleReady(id: number): Ready | undefined {
    const p = this.peer(id);
    if (!p.node.hasReady()) return undefined;
    const rd = p.node.ready();
    this.queue.push(...rd.messages);
    p.node.advance(rd);
    if (rd.snapshot !== undefined) p.storage.applySnapshot(rd.snapshot);
    p.storage.append(rd.entries);
    if (rd.hardState !== undefined) p.storage.setHardState(rd.hardState);
    this.queue.push(...p.node.persisted(rd));
    if (rd.snapshot !== undefined) {
      // The state machine restores from the snapshot: its data is the applied sequence so far.
      p.applied = JSON.parse(dec(rd.snapshot.data)) as string[];
      p.appliedEntries = [];
      p.restoredFrom = rd.snapshot.meta.index;
    }
    this.apply(p, rd);
    return rd;
  }

  apply(p: Peer, rd: Ready): void {
    for (const e of rd.committedEntries) {
      p.appliedEntries.push(e);
      if (e.type === EntryType.ConfChange) {
        const cs = p.node.applyConfChange(decodeConfChangeEntry(e.data));
        p.storage.setConfState(cs);
      } else if (e.data.length > 0) {
        p.applied.push(dec(e.data));
      }
    }
  }

  private dropped(m: Message): boolean {
    if (this.cut.has(`${m.from}-${m.to}`)) return true;
    if (!this.peers.has(m.to)) return true;
    for (const f of this.filters) if (f(m)) return true;
    return false;
  }

  /** Delivers one queued message; false when the queue is empty. */
  deliverOne(): boolean {
    const m = this.queue.shift();
    if (m === undefined) return false;
    if (this.dropped(m)) return true;
    this.delivered++;
    this.log.push(m);
    const to = this.peer(m.to).node;
    try {
      to.step(m);
      if (m.type === MessageType.MsgSnap && this.autoReportSnapshot) this.peer(m.from).node.reportSnapshot(m.to, true);
    } catch (e) {
      const code = (e as { code?: string }).code;
      // Forwarded requests and answers from removed peers are dropped, as a real driver would.
      if (code !== 'RAFT_PROPOSAL_DROPPED' && code !== 'RAFT_READ_INDEX_DROPPED' && code !== 'RAFT_STEP_PEER_NOT_FOUND') throw e;
    }
    return true;
  }

  /** Runs every Ready and message until nothing moves. */
  stabilize(maxRounds = 10_000): void {
    for (let round = 0; round < maxRounds; round++) {
      let moved = false;
      for (const id of [...this.peers.keys()].sort((a, b) => a - b)) if (this.handleReady(id)) moved = true;
      while (this.deliverOne()) moved = true;
      if (!moved) return;
    }
    throw new Error('network did not stabilize');
  }

  tick(id: number, n = 1): void {
    for (let i = 0; i < n; i++) this.node(id).tick();
  }

  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const p of this.peers.values()) p.node.tick();
      this.stabilize();
    }
  }

  campaign(id: number): void {
    this.node(id).campaign();
    this.stabilize();
  }

  /** Proposes strings on `id` and stabilizes. */
  propose(id: number, ...data: string[]): void {
    this.node(id).propose(data.map(enc));
    this.stabilize();
  }

  /** Snapshots `id`'s state machine at its applied index and compacts its log there. */
  snapshotAndCompact(id: number): void {
    const p = this.peer(id);
    const st = p.node.status();
    p.storage.createSnapshot(st.applied, st.conf, enc(JSON.stringify(p.applied)));
    p.storage.compact(st.applied);
  }

  leaders(): number[] {
    return [...this.peers.values()].filter((p) => p.node.status().state === 2).map((p) => p.id);
  }

  /** Deliver messages of given types only when `types` is set (for scripted interleavings). */
  countDelivered(type: MessageType): number {
    return this.log.filter((m) => m.type === type).length;
  }
}

/** A storage for a cluster of `ids` holding entries with the given terms at indexes 1.. */
export function storageWithTerms(ids: number[], terms: number[], term = terms.length > 0 ? terms[terms.length - 1]! : 0, vote = 0): MemoryStorage {
  const s = MemoryStorage.withConf(ids);
  s.append(terms.map((t, i) => ({ index: i + 1, term: t, type: EntryType.Normal, data: enc(`e${i + 1}`) })));
  s.setHardState({ term, vote, commit: 0 });
  return s;
}

/** A message with every field present; override what the test needs. */
export function msg(p: Partial<Message> & { type: MessageType; from: number; to: number }): Message {
  return { term: 0, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, ...p };
}

/** Entries with the given terms starting at `first`. */
export function ents(first: number, terms: number[]): Entry[] {
  return terms.map((t, i) => ({ index: first + i, term: t, type: EntryType.Normal, data: enc(`e${first + i}`) }));
}

/** A standalone node over `storage`, with a deterministic generator. */
export function newNode(id: number, storage: MemoryStorage, extra: Partial<Config> = {}): RawNode {
  return new RawNode({ id, electionTick: 10, heartbeatTick: 1, storage, random: seeded(id), ...extra });
}

/** Takes a Ready, persists it into `storage` at once, and returns it. */
export function drain(node: RawNode, storage: MemoryStorage): Ready {
  const rd = node.ready();
  node.advance(rd);
  if (rd.snapshot !== undefined) storage.applySnapshot(rd.snapshot);
  storage.append(rd.entries);
  if (rd.hardState !== undefined) storage.setHardState(rd.hardState);
  node.persisted(rd);
  return rd;
}

/** All messages (both kinds) of a Ready. */
export function allMessages(rd: Ready): Message[] {
  return [...rd.messages, ...rd.messagesAfterPersist];
}

/** Runs the network, collecting every ReadState that node `id` reports. */
export function collectReads(net: Network, id: number): ReadState[] {
  return collectReadies(net, id).flatMap((rd) => rd.readStates);
}

/** Runs the network, collecting every Ready of node `id`. */
export function collectReadies(net: Network, id: number): Ready[] {
  const out: Ready[] = [];
  for (let round = 0; round < 100; round++) {
    let moved = false;
    for (const pid of [...net.peers.keys()].sort()) {
      const rd = net.handleReady(pid);
      if (rd !== undefined) {
        moved = true;
        if (pid === id) out.push(rd);
      }
    }
    while (net.deliverOne()) moved = true;
    if (!moved) break;
  }
  return out;
}

/** Nodes 1-3 where node 2 has just been elected and no answer to its entry of the term reaches it (until healed). */
export function uncommittedLeader(): Network {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.propose(1, 'a');
  net.isolate(2);
  net.node(2).campaign();
  net.stabilize();
  net.heal();
  net.addFilter((m) => m.type === MessageType.MsgAppResp && m.to === 2);
  net.campaign(2);
  return net;
}
