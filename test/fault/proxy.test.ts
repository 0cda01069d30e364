import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { seeded, testSeed } from '../seeded.js';
import { waitFor } from '../log/helpers.js';
import { encodeFrames } from '../../src/transport/frame.js';
import { encodeHello, newPacker } from '../../src/transport/wire.js';
import { FaultProxy } from './proxy.js';

/** A listener that records what each connection sent and answers every chunk with 'ack'. */
async function sink(): Promise<{ address: string; received: () => string; sockets: net.Socket[]; close(): Promise<void> }> {
  let got = '';
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    s.on('data', (d) => {
      got += d.toString();
      s.write('ack');
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    received: () => got,
    sockets,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

function dial(address: string): Promise<{ socket: net.Socket; back: () => string; closed: () => boolean }> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve) => {
    let back = '';
    let closed = false;
    const socket = net.connect(port, host, () => resolve({ socket, back: () => back, closed: () => closed }));
    socket.on('data', (d) => (back += d.toString()));
    // A reset may come before or after the connect completes: either way the caller sees a closed socket.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      resolve({ socket, back: () => back, closed: () => closed });
    });
  });
}

describe('FaultProxy', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup() {
    const a = await sink();
    const b = await sink();
    cleanups.push(a.close, b.close);
    const proxy = await FaultProxy.start({ nodes: { 1: a.address, 2: b.address }, random: seeded(testSeed('proxy')) });
    cleanups.push(() => proxy.close());
    return { a, b, proxy };
  }

  it('maps each node to its own address and its peers to the links, and forwards both ways', async () => {
    const { a, b, proxy } = await setup();
    const p1 = proxy.peersFor(1);
    expect(p1[1]).toBe(a.address);
    expect(p1[2]).not.toBe(b.address);
    const c = await dial(p1[2]!);
    c.socket.write('hello');
    await waitFor('the bytes to arrive', () => b.received() === 'hello' && c.back() === 'ack');
    expect(proxy.stats(1, 2)).toMatchObject({ connections: 1, bytesForward: 5, bytesBack: 3 });
    expect(proxy.stats(2, 1).connections).toBe(0);
    c.socket.destroy();
  });

  it('a held cut keeps the connection open and delivers nothing until heal, then everything in order', async () => {
    const { b, proxy } = await setup();
    const c = await dial(proxy.peersFor(1)[2]!);
    c.socket.write('one;');
    await waitFor('the first chunk', () => b.received() === 'one;');
    proxy.cut(1, 2);
    c.socket.write('two;');
    c.socket.write('three;');
    // Observable progress elsewhere proves the proxy ran: a fresh connection on the same cut link is accepted but carries nothing.
    const d = await dial(proxy.peersFor(1)[2]!);
    d.socket.write('fresh;');
    await waitFor('the second connection to be accepted', () => proxy.stats(1, 2).connections === 2);
    expect(b.received()).toBe('one;');
    expect(c.closed()).toBe(false);
    proxy.heal(1, 2);
    await waitFor('the held bytes', () => b.received().includes('three;') && b.received().includes('fresh;'));
    expect(b.received().replace('fresh;', '')).toBe('one;two;three;');
    c.socket.destroy();
    d.socket.destroy();
  });

  it("a reset cut closes the link's connections and refuses new ones until heal", async () => {
    const { b, proxy } = await setup();
    const c = await dial(proxy.peersFor(1)[2]!);
    c.socket.write('x');
    await waitFor('the first byte', () => b.received() === 'x');
    proxy.cut(1, 2, 'reset');
    await waitFor('the connection to be reset', () => c.closed());
    const d = await dial(proxy.peersFor(1)[2]!);
    await waitFor('the new connection to be reset', () => d.closed());
    proxy.heal();
    const e = await dial(proxy.peersFor(1)[2]!);
    e.socket.write('y');
    await waitFor('bytes after heal', () => b.received() === 'xy');
    expect(proxy.stats(1, 2).resets).toBeGreaterThanOrEqual(2);
    e.socket.destroy();
  });

  it('a raftlog connection belongs to the link its hello names, whatever port it came in on', async () => {
    const [a, b, c] = [await sink(), await sink(), await sink()];
    cleanups.push(a.close, b.close, c.close);
    const proxy = await FaultProxy.start({ nodes: { 1: a.address, 2: b.address, 3: c.address }, random: seeded(testSeed('proxy')) });
    cleanups.push(() => proxy.close());
    // Node 1 dials node 2 at node 3's port for it, as it would after installing node 3's snapshot.
    const hello = Buffer.from(encodeFrames([encodeHello(newPacker(), 'cluster', 1, 2)]));
    const d = await dial(proxy.peersFor(3)[2]!);
    d.socket.write(hello);
    await waitFor('the hello to arrive', () => b.received().length === hello.length);
    expect(proxy.stats(1, 2)).toMatchObject({ connections: 1, bytesForward: hello.length });
    expect(proxy.stats(3, 2).connections).toBe(0);
    // Cutting node 3 from node 2 leaves it alone; cutting node 1 from node 2 holds it.
    proxy.cut(3, 2);
    d.socket.write('a;');
    await waitFor('bytes on an uncut link', () => b.received().endsWith('a;'));
    proxy.cut(1, 2);
    d.socket.write('b;');
    const e = await dial(proxy.peersFor(1)[2]!);
    e.socket.write('fresh;');
    await waitFor('the second connection to be accepted', () => proxy.stats(1, 2).connections === 2);
    expect(b.received().endsWith('a;')).toBe(true);
    proxy.heal();
    await waitFor('the held bytes', () => b.received().includes('b;') && b.received().includes('fresh;'));
    d.socket.destroy();
    e.socket.destroy();
  });

  it('a delay keeps the order of the chunks, whatever their jitter', async () => {
    const { b, proxy } = await setup();
    proxy.delay(1, 2, 20, 30);
    const c = await dial(proxy.peersFor(1)[2]!);
    const sent: string[] = [];
    for (let i = 0; i < 30; i++) {
      sent.push(`${i};`);
      c.socket.write(`${i};`);
      await new Promise((r) => setImmediate(r));
    }
    await waitFor('every chunk', () => b.received().length === sent.join('').length);
    expect(b.received()).toBe(sent.join(''));
    c.socket.destroy();
  });
});
