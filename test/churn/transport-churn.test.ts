// A node that runs for months sees its peers go down, come back, refuse it and be probed by
// strangers. Each of those cycles must give back what it took: sockets, timers, descriptors,
// handshake slots. These tests repeat a cycle many times and compare what the process holds
// after a few cycles with what it holds after all of them.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TcpTransport, type TcpTransportOptions } from '../../src/transport/tcp-transport.js';
import { encodeFrames } from '../../src/transport/frame.js';
import { encodeHello, encodeProof, newPacker } from '../../src/transport/wire.js';
import { nonce } from '../../src/transport/auth.js';
import { freePorts } from '../../src/cli/ports.js';
import { Recorder, msg, until } from '../transport/helpers.js';
import { Census, grown, quiesce } from './census.js';

const SECRET = 'churn test secret, long enough';
const open: TcpTransport[] = [];
const census = new Census();
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
  census.stop();
});

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
    let before: Record<string, number> = {};
    for (let cycle = 1; cycle <= 40; cycle++) {
      const b = await node({ id: 2, listen: address, peers: { 1: a.t.address } });
      const connects = a.t.stats().peers[2]!.connects;
      await until(() => a.t.stats().peers[2]!.connects > connects, `connection ${cycle}`);
      a.t.send([msg(1, 2, { commit: cycle })]);
      b.t.send([msg(2, 1, { commit: cycle })]);
      await until(() => b.rec.messages.some((m) => m.commit === cycle) && a.rec.messages.some((m) => m.commit === cycle), `messages ${cycle}`);
      await closeNode(b.t);
      if (cycle === 5) {
        await quiesce();
        before = census.take();
      }
    }
    await quiesce();
    expect(grown(before, census.take())).toEqual({});
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
    const round = async (i: number): Promise<void> => {
      const s = net.connect({ host: host!, port: Number(port) });
      s.on('error', () => undefined);
      s.resume();
      await new Promise<void>((resolve) => s.once('connect', () => resolve()).once('close', () => resolve()));
      ways[i % ways.length]!(s);
      await new Promise<void>((resolve) => (s.closed ? resolve() : s.once('close', () => resolve())));
    };
    for (let i = 0; i < 30; i++) await round(i);
    await until(() => b.t.stats().handshakesInProgress === 0, 'no handshake');
    await quiesce(1_100); // a refusal waits up to a second for its peer to read why
    const before = census.take();
    for (let i = 0; i < 240; i += 8) await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((k) => round(i + k)));
    await until(() => b.t.stats().handshakesInProgress === 0, 'no handshake');
    await quiesce(1_100);
    expect(grown(before, census.take())).toEqual({});
  });
});
