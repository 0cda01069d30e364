// A node that runs for months sees its peers go down, come back, refuse it and be probed by
// strangers. Each of those cycles must give back what it took: sockets, timers, descriptors,
// handshake slots. These tests repeat a cycle many times and compare what the process holds
// after a few cycles with what it holds after all of them.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MessageType } from '../../src/raft/types.js';
import { FileSnapshotStore } from '../../src/storage/snapshot-store.js';
import { TcpTransport, type TcpTransportOptions } from '../../src/transport/tcp-transport.js';
import { encodeFrames } from '../../src/transport/frame.js';
import { encodeHello, encodeProof, newPacker } from '../../src/transport/wire.js';
import { nonce } from '../../src/transport/auth.js';
import { freePorts } from '../../src/cli/ports.js';
import { Recorder, msg, until } from '../transport/helpers.js';
import { Census, grown, quiesce } from './census.js';
import { collect } from './cluster.js';

const SECRET = 'churn test secret, long enough';
const MiB = 1024 * 1024;
const temps: string[] = [];
const open: TcpTransport[] = [];
const census = new Census();
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
  const warnings = [...census.warnings];
  census.stop();
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
  expect(warnings).toEqual([]);
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'raftlog-churn-'));
  temps.push(d);
  return d;
}

const spools = (dir: string): string[] => readdirSync(dir).filter((n) => n.startsWith('spool-'));

async function node(o: Partial<TcpTransportOptions> & { id: number }, rec = new Recorder()): Promise<{ t: TcpTransport; rec: Recorder }> {
  const t = new TcpTransport({ clusterId: 'c1', listen: '127.0.0.1:0', clusterSecret: SECRET, backoff: { initialMs: 1, maxMs: 4 }, ...o });
  open.push(t);
  await t.start(rec);
  return { t, rec };
}

async function closeNode(t: TcpTransport): Promise<void> {
  open.splice(open.indexOf(t), 1);
  await t.close();
}

/** Takes a census after `first` dials (of any transport here) and checks that nothing grew by the `last`. */
async function steadyOverDials(first: number, last: number): Promise<void> {
  const dials = (): number => census.inits('TCPCONNECTWRAP');
  await until(() => dials() >= first, `${first} dials`);
  await quiesce();
  const before = census.take();
  await until(() => dials() >= last, `${last} dials`, 15_000);
  await quiesce();
  expect(grown(before, census.take())).toEqual({});
}

describe('transport churn', () => {
  it('redialing a peer that is down, hundreds of times, holds no more sockets, timers or descriptors than at the first attempts', async () => {
    const [port] = await freePorts(1);
    census.start();
    const a = await node({ id: 1, peers: { 2: `127.0.0.1:${port}` } });
    await steadyOverDials(20, 300);
    a.t.send([msg(1, 2)]);
    expect(a.t.stats().peers[2]!.queuedBytes).toBe(0);
  });

  it('a peer restarted over and over is redialed each time, and what each connection took is given back on both sides', async () => {
    const [port] = await freePorts(1);
    const address = `127.0.0.1:${port}`;
    census.start();
    const a = await node({ id: 1, peers: { 2: address } });
    const cycle = async (i: number): Promise<void> => {
      const b = await node({ id: 2, listen: address, peers: { 1: a.t.address } });
      const connects = a.t.stats().peers[2]!.connects;
      await until(() => a.t.stats().peers[2]!.connects > connects, `connection ${i}`);
      a.t.send([msg(1, 2, { commit: i })]);
      b.t.send([msg(2, 1, { commit: i })]);
      await until(() => b.rec.messages.some((m) => m.commit === i) && a.rec.messages.some((m) => m.commit === i), `messages ${i}`);
      await closeNode(b.t);
    };
    expect(await census.growth({ cycles: 40, warmUp: 5, cycle })).toEqual({});
  });

  it('a peer that refuses the handshake (another secret), redialed hundreds of times, leaves nothing held on either side', async () => {
    census.start();
    const b = await node({ id: 2, clusterSecret: 'another secret, also long enough' });
    const a = await node({ id: 1, peers: { 2: b.t.address } });
    // The dialer finds the acceptor's proof wrong and leaves: each dial is one refusal.
    await steadyOverDials(20, 250);
    expect(a.t.stats().peers[2]!.connects).toBe(0);
    // The dialer may be in its next handshake: once it stops, every slot comes back.
    await closeNode(a.t);
    await until(() => b.t.stats().handshakesInProgress === 0, 'every handshake slot back');
  });

  it('strangers that fail the handshake in every way, hundreds of times, leave no connection, slot, timer or descriptor behind', async () => {
    census.start();
    const b = await node({ id: 2, maxHandshakesPerAddress: 16 });
    const [host, port] = b.t.address.split(':');
    const p = newPacker();
    const ways: Array<(s: net.Socket) => void> = [
      (s) => s.end(), // says nothing
      (s) => s.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), // another protocol
      (s) => s.write(encodeFrames([encodeHello(p, 'c1', 5, 2, undefined, nonce()), encodeProof(p, new Uint8Array(32))])), // a wrong proof
      (s) => s.write(encodeFrames([encodeHello(p, 'other', 5, 2, undefined, nonce())])), // another cluster
      (s) => {
        s.write(encodeFrames([encodeHello(p, 'c1', 5, 2, undefined, nonce())])); // leaves after the challenge
        s.once('data', () => s.destroy());
      },
      (s) => s.destroy(), // resets at once
    ];
    const visit = async (i: number): Promise<void> => {
      const s = net.connect({ host: host!, port: Number(port) });
      s.on('error', () => undefined);
      s.resume();
      await new Promise<void>((resolve) => s.once('connect', () => resolve()).once('close', () => resolve()));
      ways[i % ways.length]!(s);
      await new Promise<void>((resolve) => (s.closed ? resolve() : s.once('close', () => resolve())));
    };
    const growth = await census.growth({
      cycles: 34,
      warmUp: 4,
      cycle: (i) => Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((k) => visit(8 * i + k))),
      settle: async () => {
        await until(() => b.t.stats().handshakesInProgress === 0, 'no handshake');
        await quiesce(1_100); // a refusal waits up to a second for its peer to read why
      },
    });
    expect(growth).toEqual({});
  });

  it('snapshot streams cut off half-way, 16 times, from either side: no spool is left, the sender closes its file, and each is reported failed', async () => {
    const sendDir = tempDir();
    const recvDir = tempDir();
    const sender = await FileSnapshotStore.open(sendDir);
    const meta = { index: 500, term: 3, conf: { voters: [1, 2], learners: [] } };
    const held = await sender.save({ meta, data: new Uint8Array(8 * MiB) });
    const [port] = await freePorts(1);
    const address = `127.0.0.1:${port}`;
    census.start();
    const small = { maxFrameBytes: MiB, snapshotChunkBytes: 256 * 1024, maxSnapshotBytes: 16 * MiB };
    const a = await node({ id: 1, peers: { 2: address }, snapshots: sender, ...small });
    const cycle = async (i: number): Promise<void> => {
      const store = await FileSnapshotStore.open(recvDir);
      // A slow disk: the stream is still under way when it is cut off.
      let writes = 0;
      const spool = store.spool.bind(store);
      store.spool = async (m, size) => {
        const sp = await spool(m, size);
        return { ...sp, write: async (c) => (writes++, await new Promise((r) => setTimeout(r, 10)), sp.write(c)) };
      };
      const b = await node({ id: 2, listen: address, peers: { 1: a.t.address }, snapshots: store, ...small });
      const connects = a.t.stats().peers[2]!.connects;
      await until(() => a.t.stats().peers[2]!.connects > connects, `connection ${i}`);
      const reports = a.rec.snapshotStatus.length;
      a.t.send([msg(1, 2, { type: MessageType.MsgSnap, term: 3, snapshot: held })]);
      await until(() => writes >= 2, `stream ${i} under way`);
      if (i % 2 === 0) {
        await closeNode(b.t); // the receiver goes away
      } else {
        a.t.removePeer(2); // the sender gives the peer up
        await until(() => spools(recvDir).length === 0, 'the spool deleted');
        await closeNode(b.t);
        a.t.addPeer(2, address);
      }
      expect(spools(recvDir)).toEqual([]);
      if (i % 2 === 0) await until(() => a.rec.snapshotStatus.length > reports, `report ${i}`);
      expect(a.rec.snapshotStatus.slice(reports).every(([, ok]) => !ok)).toBe(true);
    };
    expect(await census.growth({ cycles: 16, warmUp: 4, cycle })).toEqual({});
    // A file the sender left open would be closed by the collector, with a warning.
    await collect();
    expect(census.warnings).toEqual([]);
  });
});
