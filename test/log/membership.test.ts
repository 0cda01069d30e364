// Membership of a running log: several changes at once through a joint
// configuration, promotion of learners only once they caught up, and the
// catch-up window that spares a slightly lagging follower a whole snapshot.
import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { join } from 'node:path';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { encodeSnapshotData } from '../../src/log/snapshot-data.js';
import { FileSnapshotStore } from '../../src/storage/snapshot-store.js';
import { Wal } from '../../src/wal/index.js';
import { RecordingMachine, appendInTurns, appendSurely, enc, freePorts, tempDir, waitFor } from './helpers.js';

const SECRET = 'a secret for the membership tests';

interface Member {
  id: number;
  dir: string;
  log: ReplicatedLog<number> | null;
  sm: RecordingMachine;
}

interface Extra {
  snapshotEvery?: number;
  snapshotCatchUpEntries?: number;
  promoteMaxLag?: number;
}

describe('ReplicatedLog membership', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** A node alone, at `self`, with learner 2 at 127.0.0.1:1 (never run: a learner needs no answer). */
  async function aloneWithLearner(): Promise<{ log: ReplicatedLog; self: string }> {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const [port] = await freePorts(1);
    const self = `127.0.0.1:${port}`;
    const log = await ReplicatedLog.open({ dataDir: t.dir, listen: self, insecure: true, sync: 'none' });
    cleanups.push(() => log.close());
    await log.addLearner(2, '127.0.0.1:1');
    return { log, self };
  }

  async function cluster(n: number, spare: number, extra: Extra = {}) {
    const ports = await freePorts(n + spare);
    const addr = (id: number): string => `127.0.0.1:${ports[id - 1]}`;
    const peers: Record<number, string> = {};
    for (let id = 1; id <= n; id++) peers[id] = addr(id);
    const members = new Map<number, Member>();
    const member = (id: number): Member => {
      let m = members.get(id);
      if (m === undefined) {
        const t = tempDir();
        cleanups.push(t.cleanup);
        m = { id, dir: t.dir, log: null, sm: new RecordingMachine() };
        members.set(id, m);
      }
      return m;
    };
    const open = async (m: Member, p: Record<number, string> = peers): Promise<void> => {
      m.sm = new RecordingMachine();
      m.log = await ReplicatedLog.open({
        dataDir: m.dir,
        id: m.id,
        peers: p,
        stateMachine: m.sm,
        clusterSecret: SECRET,
        tickMs: 10,
        // 400-800 ms: a stall of three times the election timeout drops every peer connection,
        // and the tests here keep using the leader they found.
        electionTicks: 40,
        heartbeatTicks: 2,
        ...extra,
      });
    };
    for (let id = 1; id <= n; id++) member(id);
    await Promise.all([...members.values()].map((m) => open(m)));
    cleanups.push(async () => {
      for (const m of members.values()) await m.log?.close();
    });
    const leader = async (among = [...members.values()]): Promise<Member> => {
      let found: Member | undefined;
      await waitFor('a leader', () => {
        found = among.find((m) => m.log?.status().role === 'leader');
        return found !== undefined;
      });
      return found!;
    };
    return { members, peers, addr, member, open, leader };
  }

  it('adds two and removes two at once while appends continue; every acknowledged append stays', async () => {
    const c = await cluster(3, 2);
    const originals = [...c.members.values()];
    let leader = await c.leader();
    // The newcomers start knowing the current members and themselves; the log tells them the rest.
    const all = { ...c.peers, 4: c.addr(4), 5: c.addr(5) };
    await Promise.all([4, 5].map((id) => c.open(c.member(id), all)));
    const writing = Promise.allSettled(Array.from({ length: 200 }, (_, i) => leader.log!.append(enc(`j${i}`))));
    // On a loaded machine leadership can move before the change is made: a node that does not
    // lead refuses it with NOT_LEADER, having proposed nothing, and it is made through the new one.
    for (let attempt = 1; ; attempt++) {
      const others = originals.filter((m) => m !== leader);
      try {
        await leader.log!.changeMembership([
          { add: 4, address: c.addr(4) },
          { add: 5, address: c.addr(5) },
          { remove: others[0]!.id },
          { remove: others[1]!.id },
        ]);
        break;
      } catch (err) {
        if (attempt >= 5 || (err as { code?: string }).code !== 'NOT_LEADER') throw err;
        leader = await c.leader(originals);
      }
    }
    const conf = leader.log!.status().conf;
    expect(conf).toEqual({ voters: [leader.id, 4, 5].sort((a, b) => a - b), learners: [] });
    expect(leader.log!.status().members).toEqual({ [leader.id]: c.peers[leader.id], 4: c.addr(4), 5: c.addr(5) });
    // Appends the first leader took before it lost leadership may end without an outcome; none
    // may end otherwise, and every one acknowledged must stay.
    const settled = await writing;
    const acks = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    for (const r of settled)
      if (r.status === 'rejected')
        expect(['APPEND_OUTCOME_UNKNOWN', 'APPEND_NOT_COMMITTED', 'NOT_LEADER', 'NO_LEADER']).toContain((r.reason as { code?: string }).code);
    const after = await appendSurely(
      [leader, c.member(4), c.member(5)].map((m) => m.log!),
      enc('after'),
    );
    for (const id of [4, 5]) {
      const m = c.member(id);
      await waitFor(`node ${id} to apply everything`, () => m.log!.status().applied >= after.index);
      const seen = new Set(m.sm.applied.map((a) => a.index));
      for (const a of acks) expect(seen.has(a.index)).toBe(true);
    }
  });

  it('replaces the leader in one change: it steps down once the change is complete', async () => {
    const c = await cluster(3, 1);
    const leader = await c.leader();
    await c.open(c.member(4), { ...c.peers, 4: c.addr(4) });
    await leader.log!.changeMembership([{ remove: leader.id }, { add: 4, address: c.addr(4) }]);
    expect(leader.log!.status().conf.voters).not.toContain(leader.id);
    const rest = [...c.members.values()].filter((m) => m !== leader);
    await c.leader(rest);
    // Through whichever of them leads: on a loaded machine leadership can move again.
    const ack = await appendSurely(
      rest.map((m) => m.log!),
      enc('new leader'),
    );
    expect(ack.index).toBeGreaterThan(0);
    expect(leader.log!.status().role).not.toBe('leader');
  });

  it('a change that removes the leader and another original resolves once the leader has stepped down; with the new voters in reach they know it committed, and both may stop at once', async () => {
    const c = await cluster(3, 2);
    const leader = await c.leader();
    const other = [...c.members.values()].find((m) => m !== leader)!;
    for (const id of [4, 5]) await c.open(c.member(id), { ...c.peers, 4: c.addr(4), 5: c.addr(5) });
    await leader.log!.changeMembership([{ add: 4, address: c.addr(4) }, { add: 5, address: c.addr(5) }, { remove: leader.id }, { remove: other.id }]);
    // Handed off: it no longer leads, and a majority of the new voters hold a commit index past the change.
    expect(leader.log!.status().role).not.toBe('leader');
    const changeIndex = leader.log!.status().applied;
    const rest = [...c.members.values()].filter((m) => m !== leader && m !== other);
    expect(rest.filter((m) => m.log!.status().commit >= changeIndex).length).toBeGreaterThanOrEqual(2);
    // Stopped as soon as the change said it was done: the old half has no quorum left, so only a
    // new configuration the rest know committed lets them elect a leader and commit.
    await leader.log!.close();
    await other.log!.close();
    leader.log = null;
    other.log = null;
    await c.leader(rest);
    const ack = await appendSurely(
      rest.map((m) => m.log!),
      enc('after both left'),
    );
    expect(ack.index).toBeGreaterThan(changeIndex);
  });

  it('promote: refused with NOT_CAUGHT_UP while the learner lags, accepted once it caught up', async () => {
    const c = await cluster(3, 1, { promoteMaxLag: 10 });
    const leader = await c.leader();
    await leader.log!.addLearner(4, c.addr(4));
    // Node 4 is not running: its log stays empty while the leader's grows.
    await appendInTurns(leader.log!, 'l', 30);
    await expect(leader.log!.promote(4)).rejects.toMatchObject({ code: 'NOT_CAUGHT_UP', nodeId: 4 });
    await expect(leader.log!.changeMembership([{ add: 4, address: c.addr(4) }])).rejects.toMatchObject({ code: 'NOT_CAUGHT_UP' });
    expect(leader.log!.status().conf.learners).toEqual([4]);
    await expect(leader.log!.promote(1 + 100)).rejects.toMatchObject({ code: 'NOT_MEMBER' });
    await c.open(c.member(4), { ...c.peers, 4: c.addr(4) });
    await waitFor('the learner to catch up', () => (leader.log!.status().progress?.[4]?.match ?? 0) >= leader.log!.status().lastIndex - 10);
    await leader.log!.promote(4);
    expect(leader.log!.status().conf).toEqual({ voters: [1, 2, 3, 4], learners: [] });
  });

  it('addMember of a learner is a promotion: refused with NOT_CAUGHT_UP while it lags, as promote is', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    // A peer port, or no member could be added; node 2 never runs, so its log stays empty.
    const log = await ReplicatedLog.open({ dataDir: t.dir, listen: '127.0.0.1:0', insecure: true, promoteMaxLag: 10, sync: 'none' });
    cleanups.push(() => log.close());
    await log.addLearner(2, '127.0.0.1:1');
    await appendInTurns(log, 'l', 30);
    const before = log.status().lastIndex;
    await expect(log.addMember(2, '127.0.0.1:1')).rejects.toMatchObject({ code: 'NOT_CAUGHT_UP', nodeId: 2 });
    expect(log.status().conf).toEqual({ voters: [1], learners: [2] });
    expect(log.status().lastIndex).toBe(before);
  });

  it('a change that would change nothing is refused and nothing proposed: NOT_MEMBER for a node outside the configuration, ALREADY_MEMBER for one that is what the call makes it', async () => {
    const { log, self } = await aloneWithLearner();
    const before = log.status().lastIndex;
    const notMember = (id: number): object => ({ code: 'NOT_MEMBER', nodeId: id, message: expect.stringMatching(`node ${id} is not a member`) as unknown });
    const already = (id: number, role: string): object => ({ code: 'ALREADY_MEMBER', nodeId: id, role });
    // A mistyped id removed nobody and resolved: the operator then stopped the node meant, still a voter.
    await expect(log.removeMember(7)).rejects.toMatchObject(notMember(7));
    await expect(log.changeMembership([{ remove: 7 }])).rejects.toMatchObject(notMember(7));
    await expect(log.promote(7)).rejects.toMatchObject(notMember(7));
    await expect(log.changeMembership([{ demote: 7 }])).rejects.toMatchObject(notMember(7));
    await expect(log.transferLeadership(7)).rejects.toMatchObject(notMember(7));
    await expect(log.addMember(1, self)).rejects.toMatchObject(already(1, 'voter'));
    await expect(log.promote(1)).rejects.toMatchObject(already(1, 'voter'));
    // Not a demotion in disguise: that is demote's.
    await expect(log.addLearner(1, self)).rejects.toMatchObject({ ...already(1, 'voter'), message: expect.stringMatching(/demote/) });
    await expect(log.addLearner(2, '127.0.0.1:1')).rejects.toMatchObject(already(2, 'learner'));
    await expect(log.changeMembership([{ demote: 2 }])).rejects.toMatchObject(already(2, 'learner'));
    // One change that changes nothing refuses the whole set.
    await expect(log.changeMembership([{ addLearner: 3, address: '127.0.0.1:2' }, { remove: 7 }])).rejects.toMatchObject(notMember(7));
    expect(log.status().lastIndex).toBe(before);
    expect(log.status().conf).toEqual({ voters: [1], learners: [2] });
    // The same removal twice at once: the second waits for the first, then finds the node gone.
    const [first, second] = await Promise.allSettled([log.removeMember(2), log.removeMember(2)]);
    expect(first.status).toBe('fulfilled');
    expect(second).toMatchObject({ status: 'rejected', reason: notMember(2) });
    expect(log.status().conf).toEqual({ voters: [1], learners: [] });
  });

  it('refuses to remove or demote a voter when the voters left would need one that is down for a majority; the down one may be removed', async () => {
    const c = await cluster(3, 0);
    const lead = await c.leader();
    const [down, live] = [...c.members.values()].filter((m) => m !== lead);
    await down!.log!.close();
    down!.log = null;
    await waitFor('the leader to count the closed node inactive', () => lead.log!.status().progress?.[down!.id]?.recentActive === false);
    const before = lead.log!.status().lastIndex;
    // Made, it committed with the two live voters, then left the leader and the closed node: no majority until that one came back.
    const refused = { code: 'MAJORITY_UNAVAILABLE', down: [down!.id], message: expect.stringMatching(`node ${down!.id} for a majority`) as unknown };
    await expect(lead.log!.removeMember(live!.id)).rejects.toMatchObject(refused);
    await expect(lead.log!.changeMembership([{ demote: live!.id }])).rejects.toMatchObject(refused);
    expect(lead.log!.status().lastIndex).toBe(before);
    // On a loaded machine the live voter too can go unheard for an election timeout: the removal
    // is then refused as well, until the leader hears it again.
    for (let tries = 0; ; tries++) {
      const removed = await lead.log!.removeMember(down!.id).then(
        () => true,
        (err: { code?: string }) => {
          if (err.code !== 'MAJORITY_UNAVAILABLE' || tries === 100) throw err;
          return false;
        },
      );
      if (removed) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await appendSurely([lead.log!, live!.log!], enc('after'));
    expect(lead.log!.status().conf).toEqual({ voters: [lead.id, live!.id].sort((a, b) => a - b), learners: [] });
  });

  it('refuses a new node at the address of a member that stays, or of another node the change adds; a change that removes the member may give its address away', async () => {
    const { log, self } = await aloneWithLearner();
    const before = log.status().lastIndex;
    const taken = (address: string, holder: number): object => ({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining(`${address} is node ${holder}'s address`) as unknown,
    });
    await expect(log.addLearner(3, self)).rejects.toMatchObject(taken(self, 1));
    await expect(log.addLearner(3, '127.0.0.1:1')).rejects.toMatchObject(taken('127.0.0.1:1', 2));
    await expect(log.changeMembership([{ addLearner: 3, address: '127.0.0.1:1' }, { remove: 7 }])).rejects.toMatchObject(taken('127.0.0.1:1', 2));
    await expect(
      log.changeMembership([
        { addLearner: 3, address: '127.0.0.1:2' },
        { addLearner: 4, address: '127.0.0.1:2' },
      ]),
    ).rejects.toMatchObject(taken('127.0.0.1:2', 3));
    expect(log.status().lastIndex).toBe(before);
    // As `member replace` does: the same change removes the member whose address the new node takes.
    await log.changeMembership([{ addLearner: 3, address: '127.0.0.1:1' }, { remove: 2 }]);
    expect(log.status().conf).toEqual({ voters: [1], learners: [3] });
    expect(log.status().members[3]).toBe('127.0.0.1:1');
  });

  it('refuses malformed changes before proposing anything', async () => {
    const c = await cluster(1, 0);
    const log = c.member(1).log!;
    await c.leader();
    const before = log.status().lastIndex;
    const bad: unknown[] = [
      [],
      [{ add: 2 }],
      [{ add: 0, address: '127.0.0.1:1' }],
      [{ add: 2, address: '127.0.0.1:1', remove: 3 }],
      [{ add: 2, address: '127.0.0.1:1' }, { remove: 2 }],
      [{ frobnicate: 2 }],
    ];
    for (const changes of bad) {
      await expect(log.changeMembership(changes as never)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    // An address no peer can be dialled at, as the peers option and the admin endpoint refuse it:
    // the member would hold a vote that never comes.
    // Port 0 too: a listener may take it (the OS picks a port), but nobody can dial it.
    for (const address of ['10.0.0.4', 'nope', '', 'host:port', 7100, '10.0.0.4:0', '[::1]:00']) {
      const named = { message: expect.stringMatching(/address must be 'host:port'/) as unknown };
      await expect(log.addMember(2, address as never)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', ...named });
      await expect(log.addLearner(2, address as never)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', ...named });
      await expect(log.changeMembership([{ add: 2, address: address as never }])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(log.changeMembership([{ addLearner: 2, address: address as never }])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    // Removing the only voter: the core refuses it.
    await expect(log.changeMembership([{ remove: 1 }])).rejects.toMatchObject({ code: 'RAFT_INVALID_CONF_CHANGE' });
    expect(log.status().lastIndex).toBe(before);
  });

  it('names itself by the port it listens on when opened to listen on port 0, not by port 0', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const log = await ReplicatedLog.open({ dataDir: t.dir, listen: '127.0.0.1:0', insecure: true, sync: 'none' });
    cleanups.push(() => log.close());
    const self = log.status().members[1]!;
    expect(self).toMatch(/^127\.0\.0\.1:[1-9]\d*$/);
    // The address is the peer port: something listens there.
    const s = net.connect(Number(self.split(':')[1]), '127.0.0.1');
    await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
    s.destroy();
    // What a new member learns of this node (a snapshot's address book) names that port too.
    await log.addLearner(2, '127.0.0.1:1');
    expect(log.status().members).toEqual({ 1: self, 2: '127.0.0.1:1' });
  });

  it('refuses an address whose host is longer than a DNS name can be, which its snapshots could no longer hold', async () => {
    // A 2 MiB address was added, and the next snapshot's member list was over what a snapshot
    // may carry: the directory failed to open with SNAPSHOT_CORRUPT, and no peer took the snapshot.
    const t = tempDir();
    cleanups.push(t.cleanup);
    const log = await ReplicatedLog.open({ dataDir: t.dir, listen: '127.0.0.1:0', insecure: true, sync: 'none' });
    cleanups.push(() => log.close());
    const before = log.status().lastIndex;
    for (const host of ['h'.repeat(254), 'h'.repeat(2 * 1024 * 1024)]) {
      const named = { code: 'INVALID_ARGUMENT', message: expect.stringMatching(/at most 253 characters/) };
      await expect(log.addLearner(2, `${host}:7000`)).rejects.toMatchObject(named);
      await expect(log.changeMembership([{ add: 2, address: `${host}:7000` }])).rejects.toMatchObject(named);
      await expect(ReplicatedLog.open({ dataDir: join(t.dir, 'never'), peers: { 1: '127.0.0.1:1', 2: `${host}:7000` }, insecure: true })).rejects.toMatchObject(
        {
          code: 'INVALID_ARGUMENT',
          message: expect.stringMatching(/bad peer 2=/),
        },
      );
    }
    expect(log.status().lastIndex).toBe(before);
    await log.addLearner(2, `${'h'.repeat(253)}:7000`);
    expect(log.status().conf.learners).toEqual([2]);
  });

  it('validates promoteMaxLag and snapshotCatchUpEntries before anything is created', async () => {
    for (const bad of [{ promoteMaxLag: -1 }, { promoteMaxLag: 1.5 }, { snapshotCatchUpEntries: -5 }, { snapshotCatchUpEntries: '100' }]) {
      await expect(ReplicatedLog.open({ dataDir: '/nonexistent/never-created', ...(bad as object) })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.stringMatching(Object.keys(bad)[0]!) as unknown,
      });
    }
  });

  it('a follower a few hundred records behind catches up from the log, not from a snapshot', async () => {
    const c = await cluster(3, 0, { snapshotEvery: 100 });
    const leader = await c.leader();
    const lagging = [...c.members.values()].find((m) => m !== leader)!;
    const first = await leader.log!.append(enc('first'));
    await waitFor('the follower to apply the first record', () => lagging.sm.applied.length === 1);
    await lagging.log!.close();
    lagging.log = null;
    for (let round = 0; round < 6; round++) await Promise.all(Array.from({ length: 60 }, (_, i) => leader.log!.append(enc(`w${round}-${i}`))));
    // The leader takes snapshots past the follower's position (one at least every second
    // round of 60, once the one being written is done), and keeps the entries below them.
    await waitFor('the leader to snapshot past the follower', () => leader.log!.status().snapshotIndex >= first.index + 4);
    const s = leader.log!.status();
    expect(s.firstIndex).toBeLessThanOrEqual(first.index);
    await c.open(lagging);
    expect(lagging.sm.restoredFrom).toBeNull(); // it had no snapshot of its own either
    await waitFor('the lagging node to catch up', () => (lagging.log?.status().applied ?? 0) >= s.commit, 20_000);
    expect(lagging.sm.restoredFrom).toBeNull(); // no snapshot was received
    expect(lagging.sm.applied.map((a) => a.data)).toEqual(leader.sm.applied.slice(0, lagging.sm.applied.length).map((a) => a.data));
  });

  it('a node restarted in a joint configuration whose new half is itself alone opens without leading', async () => {
    // The outgoing half still needs a majority of 1, 2 and 3, so node 1 cannot commit (or lead)
    // by itself; open() must not wait for it to lead, as it does for a node that can.
    const [p1, p2, p3] = await freePorts(3);
    const peers = { 1: `127.0.0.1:${p1}`, 2: `127.0.0.1:${p2}`, 3: `127.0.0.1:${p3}` };
    const t = tempDir();
    cleanups.push(t.cleanup);
    const snapshots = await FileSnapshotStore.open(join(t.dir, 'snapshots'));
    const app = (async function* () {})();
    await snapshots.save({
      meta: { index: 5, term: 2, conf: { voters: [1], votersOutgoing: [1, 2, 3], learners: [], autoLeave: true } },
      data: encodeSnapshotData(
        Object.entries(peers).map(([id, a]) => [Number(id), a]),
        app,
      ),
    });
    const wal = await Wal.open(join(t.dir, 'wal'));
    await wal.saveSnapshot({ index: 5, term: 2 }, { discardLog: true });
    await wal.append([], { term: 2, vote: 1, commit: 5 });
    await wal.close();
    const opening = ReplicatedLog.open({ dataDir: t.dir, id: 1, peers, clusterSecret: SECRET, tickMs: 10, electionTicks: 10 });
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<'still opening'>((resolve) => (timer = setTimeout(() => resolve('still opening'), 5_000)));
    const log = await Promise.race([opening, waited]);
    clearTimeout(timer);
    if (log === 'still opening') expect.fail('open() was still waiting for node 1 to lead after 5 s');
    cleanups.push(() => log.close());
    expect(log.status().role).not.toBe('leader');
  });

  it('a change is applied, and reported, only once its commit is durable on this node', async () => {
    // Operators stop removed nodes when a leader reports the new configuration: a crash of every
    // node must not take that leader back to a configuration that still needs them.
    const t = tempDir();
    cleanups.push(t.cleanup);
    const wal = await Wal.open(join(t.dir, 'wal'));
    // A peer port, or the log could add no member: node 2 is never there, and a learner needs no answer.
    const log = await ReplicatedLog.open({ dataDir: t.dir, listen: '127.0.0.1:0', insecure: true }, { wal });
    cleanups.push(() => log.close());
    await log.append(enc('a'));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    cleanups.push(() => release()); // before the close: a failed check must not leave the write held
    let held = 0;
    const write = wal.append.bind(wal);
    wal.append = (entries, hardState) => {
      // A hard state alone, after the change's own entry: the write of its commit.
      if (entries.length === 0 && hardState !== undefined) {
        held++;
        return gate.then(() => write(entries, hardState));
      }
      return write(entries, hardState);
    };
    const added = log.addLearner(2, '127.0.0.1:1');
    await waitFor('the commit to be written', () => held > 0);
    await new Promise((r) => setTimeout(r, 50));
    expect(log.status().conf.learners).toEqual([]);
    release();
    await added;
    expect(log.status().conf.learners).toEqual([2]);
  });

  it('an embedded log that took a snapshot, opened again with a peer port, is reached at that port by the member it adds', async () => {
    const [p1, p2] = await freePorts(2);
    const a1 = `127.0.0.1:${p1}`;
    const a2 = `127.0.0.1:${p2}`;
    const d1 = tempDir();
    const d2 = tempDir();
    cleanups.push(d1.cleanup, d2.cleanup);
    const timing = { tickMs: 10, electionTicks: 40, sync: 'none' } as const;
    // Embedded (no peer port), it has no address: its snapshot names it at 'embedded'.
    const alone = await ReplicatedLog.open({ dataDir: d1.dir, snapshotEvery: 2, ...timing });
    for (let i = 0; i < 5; i++) await alone.append(enc(`r${i}`));
    await alone.close();

    const n1 = await ReplicatedLog.open({ dataDir: d1.dir, listen: a1, clusterSecret: SECRET, ...timing });
    cleanups.push(() => n1.close());
    expect(n1.status().members).toEqual({ 1: a1 });
    await n1.addLearner(2, a2);
    const n2 = await ReplicatedLog.open({ dataDir: d2.dir, id: 2, join: true, peers: { 1: a1, 2: a2 }, clusterSecret: SECRET, ...timing });
    cleanups.push(() => n2.close());
    // Node 2 catches up from that snapshot, and still knows where node 1 listens.
    await waitFor('node 2 to catch up', () => n2.status().applied >= n1.status().commit);
    expect(n2.status().members).toEqual({ 1: a1, 2: a2 });
    await n1.promote(2);
    // Two voters: a commit needs node 2's answer, which reaches node 1 only at its address.
    await n1.append(enc('with two voters'));
  });

  it('a member added after a snapshot has one taken at its addition, without waiting for snapshotEvery records', async () => {
    // The older snapshot does not name the new member, which refuses it: if the leader must
    // catch the member up by snapshot, it needs one taken at or after the change.
    const t = tempDir();
    cleanups.push(t.cleanup);
    const [port] = await freePorts(1);
    const log = await ReplicatedLog.open({ dataDir: t.dir, listen: `127.0.0.1:${port}`, insecure: true, sync: 'none', snapshotEvery: 3 });
    cleanups.push(() => log.close());
    for (let i = 0; i < 3; i++) await log.append(enc(`r${i}`));
    await waitFor('the first snapshot', () => log.status().snapshotIndex > 0, 20_000);
    const before = log.status().snapshotIndex;
    await log.addLearner(2, '127.0.0.1:1');
    const change = log.status().applied;
    expect(change).toBeGreaterThan(before);
    await waitFor('a snapshot at or after the change', () => log.status().snapshotIndex >= change, 20_000);
  });
});
