// The TCP transport authenticates peers: a stranger without the secret, a
// connection that lies about its sender, a silent or half-sent connection, and
// a flood of handshakes are all cut off, and none of them reaches the driver.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TcpTransport } from '../../src/transport/tcp-transport.js';
import type { TcpTransportOptions } from '../../src/transport/tcp-transport.js';
import { FrameDecoder, encodeFrames } from '../../src/transport/frame.js';
import { WIRE_VERSION, decodeFrame, encodeHello, encodeMessage, encodeProof, newPacker } from '../../src/transport/wire.js';
import { nonce, proof } from '../../src/transport/auth.js';
import { hostKey, parseAddress } from '../../src/transport/address.js';
import { LogCapture, Recorder, msg, until } from '../transport/helpers.js';
import { ManualClock } from '../manual-clock.js';
import { rawPeer, refusal, type RawPeer } from '../transport/raw-peer.js';
import { STRANGER_CONNECTIONS } from '../../src/transport/tcp-transport.js';
import { MessageType } from '../../src/raft/types.js';

const SECRET = 'correct horse battery staple';
const open: TcpTransport[] = [];
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(open.splice(0).map((t) => t.close()));
});

async function node(o: Partial<TcpTransportOptions> & { id: number }) {
  const rec = new Recorder();
  const log = new LogCapture();
  const t = new TcpTransport({ clusterId: 'c1', listen: '127.0.0.1:0', clusterSecret: SECRET, backoff: { initialMs: 10, maxMs: 100 }, logger: log, ...o });
  open.push(t);
  await t.start(rec);
  return { t, rec, log };
}

/** `from`: the local address to connect from (any of 127.0.0.0/8 is this host's, so tests have several). */
function connect(address: string, from?: string): Promise<net.Socket> {
  const { host, port } = parseAddress(address);
  const s = net.connect({ host, port, ...(from !== undefined ? { localAddress: from } : {}) });
  sockets.push(s);
  s.resume(); // consume what the acceptor writes, so its closing is seen
  return new Promise((resolve, reject) => s.once('connect', () => resolve(s)).once('error', reject));
}
function closed(s: net.Socket): Promise<void> {
  return new Promise((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));
}
/** Frames the acceptor writes back on a raw connection, as they arrive. */
function reader(s: net.Socket): { frames: ReturnType<typeof decodeFrame>[] } {
  const d = new FrameDecoder(1 << 20);
  const out = { frames: [] as ReturnType<typeof decodeFrame>[] };
  s.on('data', (c: Buffer) => {
    d.push(c);
    for (let f = d.next(); f !== undefined; f = d.next()) out.frames.push(decodeFrame(f));
  });
  return out;
}

/** A raw client that runs the handshake as node `from` with `secret`, and returns the open socket. */
async function handshake(address: string, from: number, to: number, secret: string): Promise<net.Socket> {
  const s = await connect(address);
  const r = reader(s);
  const mine = nonce();
  const p = newPacker();
  s.write(encodeFrames([encodeHello(p, 'c1', from, to, undefined, mine)]));
  await until(() => r.frames.length > 0, 'the challenge');
  const ch = r.frames[0]!;
  if (ch.kind !== 'challenge') throw new Error(`expected a challenge, got ${ch.kind}`);
  const facts = { version: WIRE_VERSION, clusterId: 'c1', dialer: from, acceptor: to, dialerNonce: mine, acceptorNonce: ch.nonce };
  s.write(encodeFrames([encodeProof(p, proof(Buffer.from(secret), 'dialer', facts))]));
  return s;
}

describe('peer authentication', () => {
  it('refuses to build a transport with neither secret nor TLS unless insecure is explicit', () => {
    const base = { id: 1, clusterId: 'c1', listen: '127.0.0.1:0' };
    expect(() => new TcpTransport(base)).toThrow(expect.objectContaining({ code: 'TRANSPORT_INSECURE' }));
    expect(() => new TcpTransport({ ...base, clusterSecret: 'short' })).toThrow(expect.objectContaining({ code: 'TRANSPORT_BAD_OPTION' }));
    expect(() => new TcpTransport({ ...base, clusterSecret: [] })).toThrow(expect.objectContaining({ code: 'TRANSPORT_BAD_OPTION' }));
    expect(new TcpTransport({ ...base, insecure: true })).toBeInstanceOf(TcpTransport);
  });

  it('refuses options that are no object, and timeouts a Node timer cannot hold, with TRANSPORT_BAD_OPTION', () => {
    // A raw TypeError, reading id of null.
    expect(() => new TcpTransport(null as never)).toThrow(expect.objectContaining({ code: 'TRANSPORT_BAD_OPTION' }));
    // Accepted, and such a timer fires after 1 ms: every handshake, dial or quiet connection would end at once.
    const base = { id: 1, clusterId: 'c1', listen: '127.0.0.1:0', insecure: true };
    for (const bad of [
      { electionTimeoutMs: 2 ** 30 },
      { handshakeTimeoutMs: Number.NaN },
      { handshakeTimeoutMs: -1 },
      { connectTimeoutMs: 2 ** 31 },
      { heartbeatIntervalMs: 0 },
    ]) {
      expect(() => new TcpTransport({ ...base, ...bad }), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: 'TRANSPORT_BAD_OPTION' }));
    }
  });

  it('peers holding the secret talk; a node with another secret is refused both ways and delivers nothing', async () => {
    const b = await node({ id: 2 });
    const a = await node({ id: 1, peers: { 2: b.t.address } });
    a.t.send([msg(1, 2, { commit: 1 })]);
    await until(() => b.rec.messages.length === 1, 'a message between nodes holding the secret');

    const stranger = await node({ id: 3, clusterSecret: 'not the cluster secret!!', peers: { 2: b.t.address } });
    stranger.t.send([msg(3, 2, { commit: 66, term: 1000 })]);
    await until(() => stranger.log.has('did not prove it holds the cluster secret'), 'the stranger seeing the acceptor fail its proof');
    // The acceptor never sees a valid proof: it times out or sees the stranger close, having delivered nothing.
    expect(b.rec.messages.map((m) => m.commit)).toEqual([1]);
    expect(b.t.stats().messagesReceived).toBe(1);
  });

  it('a hello of the wire version before this one, or after it, is refused at once with TRANSPORT_MALFORMED_FRAME naming both', async () => {
    // A node accepts only its own wire version: nodes of releases that speak different ones do not connect.
    const b = await node({ id: 2 });
    for (const version of [WIRE_VERSION - 1, WIRE_VERSION + 1]) {
      const s = await connect(b.t.address);
      const r = reader(s);
      s.write(encodeFrames([newPacker().pack([0, version, 'c1', 1, 2, null, nonce()])]));
      await closed(s);
      // No challenge: the handshake went no further, and the dialer is told why.
      expect(r.frames).toEqual([
        { kind: 'refuse', code: 'TRANSPORT_MALFORMED_FRAME', reason: expect.stringContaining(`wire version ${version}, this node speaks ${WIRE_VERSION}`) },
      ]);
      expect(b.log.has(`wire version ${version}, this node speaks ${WIRE_VERSION}`)).toBe(true);
    }
    expect(b.log.lines.filter((l) => /wire version/.test(l.message)).map((l) => l.fields['code'])).toEqual([
      'TRANSPORT_MALFORMED_FRAME',
      'TRANSPORT_MALFORMED_FRAME',
    ]);
    expect(b.rec.messages).toEqual([]);
  });

  it('a raw client with a wrong proof is refused with TRANSPORT_AUTH_FAILED and its messages never arrive', async () => {
    const b = await node({ id: 2 });
    const s = await handshake(b.t.address, 1, 2, 'a guess at the secret value');
    s.write(encodeFrames([encodeMessage(newPacker(), msg(1, 2, { commit: 5, term: 1000 }))]));
    await closed(s);
    expect(b.log.has('TRANSPORT_AUTH_FAILED')).toBe(true);
    expect(b.rec.messages).toEqual([]);
  });

  it('a raw client that skips the proof is refused', async () => {
    const b = await node({ id: 2 });
    const s = await connect(b.t.address);
    s.write(encodeFrames([encodeHello(newPacker(), 'c1', 1, 2, undefined, nonce()), encodeMessage(newPacker(), msg(1, 2, { commit: 5 }))]));
    await closed(s);
    expect(b.log.has('expected the handshake proof')).toBe(true);
    expect(b.rec.messages).toEqual([]);
  });

  it('rotates secrets without downtime: [new, old] and [old, new] verify each other', async () => {
    const OLD = 'the old cluster secret';
    const NEW = 'the new cluster secret';
    const b = await node({ id: 2, clusterSecret: [OLD, NEW] });
    const a = await node({ id: 1, clusterSecret: [NEW, OLD], peers: { 2: b.t.address } });
    b.t.addPeer(1, a.t.address);
    a.t.send([msg(1, 2, { commit: 1 })]);
    b.t.send([msg(2, 1, { commit: 2 })]);
    await until(() => b.rec.messages.length === 1 && a.rec.messages.length === 1, 'messages both ways during a rotation');
  });

  it('a rotation closes the connections, both ways, proved with a secret it drops, and only those; the peers redial', async () => {
    const OLD = 'the old cluster secret';
    const NEW = 'the new cluster secret';
    // Idle limits far beyond the test: no connection here closes but for the rotation.
    const slow = { electionTimeoutMs: 60_000, heartbeatIntervalMs: 1_000 };
    const b = await node({ id: 2, clusterSecret: OLD, ...slow });
    const a = await node({ id: 1, clusterSecret: OLD, peers: { 2: b.t.address }, ...slow });
    b.t.addPeer(1, a.t.address);
    // What the old secret let in besides: a holder of it in another node's name.
    const intruder = await handshake(b.t.address, 3, 2, OLD);
    await until(() => b.t.connectedPeers().has(3), 'the intruder to be admitted');
    let n = 0;
    const exchange = async (what: string): Promise<void> => {
      n++;
      a.t.send([msg(1, 2, { commit: n })]);
      b.t.send([msg(2, 1, { commit: n })]);
      await until(() => a.rec.messages.some((m) => m.commit === n) && b.rec.messages.some((m) => m.commit === n), what);
    };
    await exchange('messages both ways before the rotation');
    const retired = /no longer in the list/;

    for (const step of [
      [OLD, NEW],
      [NEW, OLD],
    ]) {
      for (const t of [a, b]) t.t.reloadSecrets(step);
      await exchange(`messages both ways at [${step.join(', ')}]`);
      expect(a.t.stats().peers[2]!.connects).toBe(1);
      expect(b.t.stats().peers[1]!.connects).toBe(1);
      expect(intruder.destroyed).toBe(false);
      expect(b.t.connectedPeers().has(3)).toBe(true);
      expect(a.log.has(retired) || b.log.has(retired)).toBe(false);
    }

    for (const t of [a, b]) t.t.reloadSecrets([NEW]);
    await until(() => intruder.destroyed, 'the intruder’s connection to be closed');
    await until(() => a.t.stats().peers[2]!.connects === 2 && b.t.stats().peers[1]!.connects === 2, 'both nodes to redial');
    await exchange('messages both ways after the rotation');
    expect(b.t.connectedPeers().has(3)).toBe(false);
    // Each node closed its own two: the one it dialed, and the one it accepted.
    for (const t of [a, b]) {
      const closures = t.log.lines.filter((l) => retired.test(l.message));
      expect(closures.length).toBeGreaterThanOrEqual(2);
      for (const l of closures) expect(l).toMatchObject({ level: 'warn', fields: { code: 'TRANSPORT_AUTH_FAILED' } });
    }
  });

  it('a handshake under way when a secret is dropped is judged by the new list', async () => {
    const OLD = 'the old cluster secret';
    const NEW = 'the new cluster secret';
    const b = await node({ id: 2, clusterSecret: [NEW, OLD] });
    const s = await connect(b.t.address);
    const r = reader(s);
    const mine = nonce();
    const p = newPacker();
    s.write(encodeFrames([encodeHello(p, 'c1', 1, 2, undefined, mine)]));
    await until(() => r.frames.length > 0, 'the challenge');
    const ch = r.frames[0]!;
    if (ch.kind !== 'challenge') throw new Error(`expected a challenge, got ${ch.kind}`);
    b.t.reloadSecrets([NEW]);
    const facts = { version: WIRE_VERSION, clusterId: 'c1', dialer: 1, acceptor: 2, dialerNonce: mine, acceptorNonce: ch.nonce };
    s.write(encodeFrames([encodeProof(p, proof(Buffer.from(OLD), 'dialer', facts))]));
    await until(() => s.destroyed, 'the connection proving the dropped secret to be closed');
    expect(b.log.has('did not prove it holds the cluster secret')).toBe(true);
    expect(b.t.connectedPeers().has(1)).toBe(false);
  });

  it('a reload without secrets is refused, and the secrets in force still keep strangers out', async () => {
    const b = await node({ id: 2 });
    const a = await node({ id: 1, peers: { 2: b.t.address } });
    a.t.send([msg(1, 2, { commit: 1 })]);
    await until(() => b.rec.messages.length === 1, 'a message from a node holding the secret');
    // Taken as "no secret", it closed every connection and then admitted anyone, proof or none.
    for (const none of [undefined, []]) {
      expect(() => b.t.reloadSecrets(none as never)).toThrow(expect.objectContaining({ code: 'TRANSPORT_BAD_OPTION' }));
    }
    const stranger = await rawPeer(b.t.address, 'c1', 3, 2, 'a guess at the cluster secret');
    await stranger.closed;
    expect(refusal(stranger)).toBe('TRANSPORT_AUTH_FAILED');
    expect(b.t.connectedPeers().has(1)).toBe(true);
    a.t.send([msg(1, 2, { commit: 2 })]);
    await until(() => b.rec.messages.length === 2, 'a message on the connection opened before');
    expect(a.t.stats().peers[2]!.connects).toBe(1);
  });

  it('a connection authenticated as node 1 that sends a message from node 3 is closed, and the message dropped', async () => {
    const b = await node({ id: 2 });
    const s = await handshake(b.t.address, 1, 2, SECRET);
    const p = newPacker();
    s.write(encodeFrames([encodeMessage(p, msg(1, 2, { commit: 1 })), encodeMessage(p, msg(3, 2, { commit: 2 }))]));
    await closed(s);
    expect(b.log.has('TRANSPORT_WRONG_NODE')).toBe(true);
    expect(b.rec.messages.map((m) => m.commit)).toEqual([1]);
  });

  it('a transfer request naming a member comes only over a member’s connection: an id this node was not given is closed, and it is dropped', async () => {
    // The core checks a transfer request's transferee, its `from`, not who sent it: from an id
    // outside the configuration it would move the leadership as often as it is sent.
    const b = await node({ id: 2, peers: { 1: '127.0.0.1:1' } });
    const transfer = encodeMessage(newPacker(), msg(1, 2, { type: MessageType.MsgTransferLeader, term: 0 }));
    const stranger = await rawPeer(b.t.address, 'c1', 9, 2, SECRET);
    await stranger.send([transfer]);
    await stranger.closed;
    expect(refusal(stranger)).toBe('TRANSPORT_WRONG_NODE');
    expect(b.rec.messages).toEqual([]);
    // A member forwards one for another member, as a follower does to its leader.
    const member = await rawPeer(b.t.address, 'c1', 1, 2, SECRET);
    await member.send([encodeMessage(newPacker(), msg(1, 2, { type: MessageType.MsgTransferLeader, from: 3, term: 0 }))]);
    await until(() => b.rec.messages.length === 1, "the member's transfer request");
    expect(b.rec.messages.map((m) => [m.type, m.from])).toEqual([[MessageType.MsgTransferLeader, 3]]);
    expect(member.socket.destroyed).toBe(false);
    member.socket.destroy();
  });
});

describe('addresses', () => {
  it('never dials the address a stranger announces in its hello (it is answered on its own connection)', async () => {
    const target = net.createServer((s) => s.destroy());
    let dialled = 0;
    target.on('connection', () => dialled++);
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    const announced = `127.0.0.1:${(target.address() as net.AddressInfo).port}`;
    try {
      const b = await node({ id: 2 });
      const s = await connect(b.t.address);
      const r = reader(s);
      const mine = nonce();
      s.write(encodeFrames([encodeHello(newPacker(), 'c1', 7, 2, announced, mine)]));
      await until(() => r.frames.length > 0, 'the challenge');
      const ch = r.frames[0]!;
      if (ch.kind !== 'challenge') throw new Error('expected a challenge');
      const facts = { version: WIRE_VERSION, clusterId: 'c1', dialer: 7, acceptor: 2, dialerNonce: mine, acceptorNonce: ch.nonce };
      // Node 7 even holds the secret: it is still not a member the driver added.
      s.write(encodeFrames([encodeProof(newPacker(), proof(Buffer.from(SECRET), 'dialer', facts)), encodeMessage(newPacker(), msg(7, 2, { commit: 3 }))]));
      await until(() => b.rec.messages.length === 1, 'the message after the handshake (the announcement was processed)');
      // What goes to node 7 is answered on its own connection, never by dialing.
      b.t.send([msg(2, 7, { commit: 4 })]);
      await until(() => r.frames.some((f) => f.kind === 'message' && f.message.to === 7 && f.message.commit === 4), 'the answer on its connection');
      expect(b.rec.unreachable).toEqual([]);
      expect(b.t.stats().peers[7]).toBeUndefined();
      expect(dialled).toBe(0);
    } finally {
      await new Promise((r) => target.close(r));
    }
  });
});

describe('liveness and limits', () => {
  it('closes an authenticated connection that goes silent', async () => {
    const b = await node({ id: 2, electionTimeoutMs: 30 });
    const s = await handshake(b.t.address, 1, 2, SECRET);
    await closed(s);
    expect(b.log.has('TRANSPORT_IDLE_TIMEOUT')).toBe(true);
  });

  it('closes a connection that leaves a frame half-sent', async () => {
    const b = await node({ id: 2, electionTimeoutMs: 30 });
    const s = await handshake(b.t.address, 1, 2, SECRET);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(1_000_000);
    s.write(Buffer.concat([head, Buffer.alloc(100)]));
    await closed(s);
    expect(b.log.has('TRANSPORT_IDLE_TIMEOUT')).toBe(true);
  });

  it('closes a connection that never completes the handshake', async () => {
    const b = await node({ id: 2, handshakeTimeoutMs: 50 });
    const s = await connect(b.t.address);
    s.write(encodeFrames([encodeHello(newPacker(), 'c1', 1, 2, undefined, nonce())]));
    await closed(s);
    expect(b.log.has('TRANSPORT_HANDSHAKE_TIMEOUT')).toBe(true);
  });

  it('pings keep a quiet but healthy connection open past the idle limit', async () => {
    // An idle limit of 450 ms: a shorter one is within what a loaded machine can stall the
    // event loop for, and a stall drops the connection however healthy it is.
    const b = await node({ id: 2, electionTimeoutMs: 150 });
    const a = await node({ id: 1, electionTimeoutMs: 150, peers: { 2: b.t.address } });
    a.t.send([msg(1, 2, { commit: 1 })]);
    await until(() => b.rec.messages.length === 1, 'the first message');
    // Pings every 30 ms: 60 frames span four idle limits.
    await until(() => b.t.stats().framesReceived >= 60, 'pings');
    expect(a.t.stats().peers[2]!.connects).toBe(1);
    expect(b.log.has('TRANSPORT_IDLE_TIMEOUT')).toBe(false);
  });

  it('caps connections still in their handshake: at the cap the oldest goes for the new one', async () => {
    const b = await node({ id: 2, maxUnauthenticatedConnections: 2 });
    const held = [await connect(b.t.address), await connect(b.t.address)];
    const third = await connect(b.t.address);
    await closed(held[0]!);
    await until(() => b.t.stats().connectionsRefused === 1, 'the oldest connection closed');
    expect(b.log.has('TRANSPORT_TOO_MANY_CONNECTIONS: unauthenticated connections at the limit of 2: the oldest closed for a newer one')).toBe(true);
    expect(b.t.stats().refused).toEqual({ TRANSPORT_TOO_MANY_CONNECTIONS: 1 });
    expect(b.t.stats().handshakesInProgress).toBe(2);
    expect([held[1]!.destroyed, third.destroyed]).toEqual([false, false]);
  });

  it('caps handshakes per address: one address holding its share cannot keep a peer at another out', async () => {
    const b = await node({ id: 2, maxUnauthenticatedConnections: 8, handshakeTimeoutMs: 30_000 });
    // Enough from one address to take every slot, as one client reconnecting fast does without the cap.
    const strangers = await Promise.all(Array.from({ length: 8 }, () => connect(b.t.address, '127.0.0.2')));
    await until(() => b.t.stats().connectionsRefused === 4, 'the server to refuse four of them');
    await until(() => strangers.filter((s) => !s.destroyed).length === 4, 'the refused four to see their close');
    expect(b.t.stats().handshakesInProgress).toBe(4);
    const a = await node({ id: 1, peers: { 2: b.t.address } });
    a.t.send([msg(1, 2, { commit: 7 })]);
    await until(() => b.rec.messages.length === 1, "the real peer's message");
    expect(b.rec.messages[0]!.commit).toBe(7);
    expect(b.t.stats().connectionsRefused).toBe(4);
    expect(b.log.has('TRANSPORT_TOO_MANY_CONNECTIONS: unauthenticated connections from 127.0.0.2 at the limit of 4')).toBe(true);
    expect(b.t.stats().refused).toEqual({ TRANSPORT_TOO_MANY_CONNECTIONS: 4 });
    // The address's own slots come back as its connections close.
    strangers.find((s) => !s.destroyed)!.destroy();
    await until(() => b.t.stats().handshakesInProgress === 3, 'the server to see the close');
    const next = await connect(b.t.address, '127.0.0.2');
    const over = await connect(b.t.address, '127.0.0.2');
    await closed(over);
    expect(next.destroyed).toBe(false);
  });

  it('counts the handshakes of an IPv6 client by its /64: a stranger drawing addresses from its prefix cannot keep a peer out', async () => {
    const b = await node({ id: 2, maxUnauthenticatedConnections: 8, handshakeTimeoutMs: 30_000 });
    // Tests may not listen on IPv6: the server is told that each connection from 127.0.0.2 comes
    // from another address of one /64, as a host given a whole prefix can make them.
    let n = 0;
    const server = (b.t as unknown as { server: net.Server }).server;
    server.prependListener('connection', (s: net.Socket) => {
      if (s.remoteAddress === '127.0.0.2') Object.defineProperty(s, 'remoteAddress', { value: `2001:db8:0:1::${(++n).toString(16)}` });
    });
    const strangers = await Promise.all(Array.from({ length: 8 }, () => connect(b.t.address, '127.0.0.2')));
    await until(() => b.t.stats().connectionsRefused === 4, 'the server to refuse four of them');
    await until(() => strangers.filter((s) => !s.destroyed).length === 4, 'the refused four to see their close');
    expect(n).toBe(8);
    expect(b.t.stats().handshakesInProgress).toBe(4);
    expect(b.log.has('TRANSPORT_TOO_MANY_CONNECTIONS: unauthenticated connections from 2001:db8:0:1::/64 at the limit of 4')).toBe(true);
    const a = await node({ id: 1, peers: { 2: b.t.address } });
    a.t.send([msg(1, 2, { commit: 7 })]);
    await until(() => b.rec.messages.length === 1, "the real peer's message");
    expect(b.rec.messages[0]!.commit).toBe(7);
    expect(b.t.stats().connectionsRefused).toBe(4);
  });

  it('counts an IPv4-mapped IPv6 address as its IPv4 form for the per-address cap, and checks the cap', () => {
    expect(hostKey('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(hostKey('::FFFF:10.1.2.3')).toBe('10.1.2.3');
    expect(hostKey('10.1.2.3')).toBe('10.1.2.3');
    expect(hostKey('FE80::1')).toBe('fe80::1');
    expect(hostKey('::ffff:fe80::1')).toBe('::ffff:fe80::1');
    const base = { id: 1, clusterId: 'c1', listen: '127.0.0.1:0', clusterSecret: SECRET };
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => new TcpTransport({ ...base, maxHandshakesPerAddress: bad })).toThrow(expect.objectContaining({ code: 'TRANSPORT_BAD_OPTION' }));
    }
  });

  it("logs strangers' refused connections at a bounded rate, and a member's closed connection in full", async () => {
    const clock = new ManualClock();
    const b = await node({ id: 2, refusalLogClock: clock });
    const warnings = (): string[] => b.log.lines.filter((l) => l.level === 'warn').map((l) => l.message);
    /** `n` strangers, one after another, each refused for what it sends. */
    const strangers = async (n: number, what: string): Promise<void> => {
      const before = b.t.stats().connectionsRefused;
      for (let i = 0; i < n; i++) {
        const s = await connect(b.t.address);
        s.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
        await closed(s);
      }
      await until(() => b.t.stats().connectionsRefused === before + n, what);
    };
    await strangers(15, 'every stranger refused');
    expect(warnings()).toHaveLength(10);
    expect(warnings().every((m) => /^transport: closing connection from unidentified peer at 127\.0\.0\.1:\d+: TRANSPORT_FRAME_TOO_LARGE/.test(m))).toBe(true);
    clock.fire();
    expect(b.log.lines.at(-1)!.fields).toEqual({ code: 'TRANSPORT_FRAME_TOO_LARGE', suppressed: 5 });
    expect(warnings().at(-1)).toMatch(/^transport: refused connections: 5 more TRANSPORT_FRAME_TOO_LARGE not logged/);
    // A new interval: a stranger is logged again, and close() logs what is still counted.
    await strangers(11, 'the next strangers refused');
    expect(warnings()).toHaveLength(21);
    // A member's connection closed for what it sent is logged whatever strangers used up.
    const member = await handshake(b.t.address, 1, 2, SECRET);
    await until(() => b.t.stats().framesReceived === 2, 'the member authenticated (its hello and proof)');
    member.write(encodeFrames([encodeMessage(newPacker(), msg(3, 2))]));
    await closed(member);
    expect(warnings().at(-1)).toMatch(/^transport: closing connection from peer 1 at .*TRANSPORT_WRONG_NODE/);
    await b.t.close();
    expect(b.log.lines.at(-1)!.fields).toEqual({ code: 'TRANSPORT_FRAME_TOO_LARGE', suppressed: 1 });
  });

  it('caps inbound connections overall: a new one is refused when only proven ones hold them', async () => {
    const b = await node({ id: 2, maxInboundConnections: 1 });
    const first = await rawPeer(b.t.address, 'c1', 1, 2, SECRET);
    await until(() => b.t.stats().handshakesInProgress === 0, 'the first connection proven');
    const second = await connect(b.t.address);
    await closed(second);
    expect(b.log.has('TRANSPORT_TOO_MANY_CONNECTIONS: inbound connections at the limit of 1')).toBe(true);
    expect(first.socket.destroyed).toBe(false);
  });
});

describe('authenticated connections', () => {
  const CONNECTIONS = 50;
  /** `ids.length` raw peers, each authenticated before the next dials (no handshake cap is in play). */
  async function authenticateAll(t: TcpTransport, ids: number[]): Promise<RawPeer[]> {
    const peers: RawPeer[] = [];
    for (const id of ids) {
      peers.push(await rawPeer(t.address, 'c1', id, 2, SECRET));
      await until(() => t.stats().handshakesInProgress === 0, `the handshake of connection ${peers.length}`);
    }
    return peers;
  }

  it(`a peer opening ${CONNECTIONS} authenticated connections keeps only the newest: each replaces the one before`, async () => {
    const b = await node({ id: 2, peers: { 5: '127.0.0.1:1' } });
    const peers = await authenticateAll(
      b.t,
      Array.from({ length: CONNECTIONS }, () => 5),
    );
    const newest = peers.pop()!;
    await Promise.all(peers.map((p) => p.closed));
    expect(peers.map(refusal)).toEqual(peers.map(() => 'TRANSPORT_CONNECTION_REPLACED'));
    await newest.send([encodeMessage(newPacker(), msg(5, 2))]);
    await until(() => b.rec.messages.length === 1, 'the message on the newest connection');
    expect(newest.socket.destroyed).toBe(false);
  });

  it(`ids this node does not know hold at most ${STRANGER_CONNECTIONS} authenticated connections, the newest, and never a member's`, async () => {
    const b = await node({ id: 2, peers: { 1: '127.0.0.1:1' } });
    const [member] = await authenticateAll(b.t, [1]);
    const strangers = await authenticateAll(
      b.t,
      Array.from({ length: CONNECTIONS }, (_, i) => 100 + i),
    );
    const kept = strangers.splice(CONNECTIONS - STRANGER_CONNECTIONS);
    await Promise.all(strangers.map((p) => p.closed));
    expect(strangers.map(refusal)).toEqual(strangers.map(() => 'TRANSPORT_CONNECTION_REPLACED'));
    expect(kept.filter((p) => p.socket.destroyed)).toEqual([]);
    await member!.send([encodeMessage(newPacker(), msg(1, 2))]);
    await until(() => b.rec.messages.length === 1, "the member's message");
    expect(member!.socket.destroyed).toBe(false);
  });

  it('a connection its peer replaced stops counting toward the inbound cap at once, though its peer never reads the close', async () => {
    const b = await node({ id: 2, peers: { 5: '127.0.0.1:1', 6: '127.0.0.1:1' }, maxInboundConnections: 2 });
    const [old] = await authenticateAll(b.t, [5]);
    // Reads nothing more, so it never sees the acceptor's end: the connection would linger on its side.
    old!.socket.pause();
    const [newer] = await authenticateAll(b.t, [5]);
    // Dialed as soon as the old one is replaced: within the second the acceptor would wait on it.
    const other = await rawPeer(b.t.address, 'c1', 6, 2, SECRET);
    await until(() => b.t.stats().handshakesInProgress === 0, 'the third handshake');
    await other.send([encodeMessage(newPacker(), msg(6, 2))]);
    await until(() => b.rec.messages.length === 1, 'the message from the other peer');
    expect(b.log.has('TRANSPORT_TOO_MANY_CONNECTIONS')).toBe(false);
    expect([newer!.socket.destroyed, other.socket.destroyed]).toEqual([false, false]);
  });

  it('a peer redialing while its old connection lingers (a link dropped without a close) is served at once, and the old one closed', async () => {
    const b = await node({ id: 2, peers: { 1: '127.0.0.1:1' } });
    const lingering = await rawPeer(b.t.address, 'c1', 1, 2, SECRET);
    await until(() => b.t.stats().handshakesInProgress === 0, 'the first handshake');
    const a = await node({ id: 1, peers: { 2: b.t.address } });
    a.t.send([msg(1, 2, { commit: 3 })]);
    await until(() => b.rec.messages.length === 1, 'the message on the new connection');
    await lingering.closed;
    expect(refusal(lingering)).toBe('TRANSPORT_CONNECTION_REPLACED');
    expect(a.t.stats().peers[2]!.connects).toBe(1);
  });
});

/** `perAddress` silent connections from each of `addresses` hosts, 127.0.0.2 on: a stranger's, sending nothing. */
async function strangers(address: string, addresses: number, perAddress: number): Promise<net.Socket[]> {
  const all: net.Socket[] = [];
  for (let a = 0; a < addresses; a++)
    for (let i = 0; i < perAddress; i++) {
      const s = await connect(address, `127.0.0.${a + 2}`);
      s.on('error', () => undefined); // closed for a member's connection: reset, perhaps
      all.push(s);
    }
  return all;
}

// Connections not yet proven (no secret, no certificate shown) are a stranger's to open at will:
// however many it holds, a member that proves itself gets in.
describe('connection slots under a stranger', () => {
  it('a member gets in while a stranger on four addresses holds every handshake slot (the defaults)', async () => {
    const b = await node({ id: 2, handshakeTimeoutMs: 30_000 });
    const held = await strangers(b.t.address, 4, 4);
    await until(() => b.t.stats().handshakesInProgress === 16, "the stranger's 16 connections");
    const a = await node({ id: 1, peers: { 2: b.t.address } });
    a.t.send([msg(1, 2, { commit: 7 })]);
    await until(() => b.rec.messages.length === 1, "the member's message");
    expect(b.rec.messages[0]!.commit).toBe(7);
    // The member's connection took the slot of the stranger's oldest, which was closed.
    await until(() => held[0]!.destroyed, "the stranger's oldest connection closed");
    expect(held.slice(1).filter((s) => s.destroyed)).toEqual([]);
    expect(b.t.stats().handshakesInProgress).toBe(15);
    expect(b.t.stats().refused).toEqual({ TRANSPORT_TOO_MANY_CONNECTIONS: 1 });
    expect(b.log.has('unauthenticated connections at the limit of 16: the oldest closed for a newer one')).toBe(true);
  });

  it('a member gets in while unproven connections fill maxInboundConnections', async () => {
    const b = await node({ id: 2, handshakeTimeoutMs: 30_000, maxInboundConnections: 3 });
    const held = await strangers(b.t.address, 1, 3);
    await until(() => b.t.stats().handshakesInProgress === 3, "the stranger's 3 connections");
    const a = await node({ id: 1, peers: { 2: b.t.address } });
    a.t.send([msg(1, 2, { commit: 7 })]);
    await until(() => b.rec.messages.length === 1, "the member's message");
    await until(() => held[0]!.destroyed, "the stranger's oldest connection closed");
    expect(held.slice(1).filter((s) => s.destroyed)).toEqual([]);
    expect(b.t.stats().refused).toEqual({ TRANSPORT_TOO_MANY_CONNECTIONS: 1 });
  });
});
