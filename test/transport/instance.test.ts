// Instance ids in the handshake: carried both ways, inside the proof, checked against a record
// of the instance first met for each peer id.
import { afterEach, describe, expect, it } from 'vitest';
import { nonce, proof, verify, type HandshakeFacts } from '../../src/transport/auth.js';
import type { PeerInstances } from '../../src/transport/peer-instances.js';
import { TcpTransport, type TcpTransportOptions } from '../../src/transport/tcp-transport.js';
import { WIRE_VERSION, decodeFrame, encodeChallenge, encodeHello, newPacker } from '../../src/transport/wire.js';
import { LogCapture, Recorder, msg, until } from './helpers.js';
import { rawPeer, refusal, type RawPeer } from './raw-peer.js';

const SECRET = 'a secret of at least sixteen bytes';
const A = '0123456789abcdef0123456789abcdef';
const B = 'fedcba9876543210fedcba9876543210';

class Book implements PeerInstances {
  readonly map = new Map<number, string>();
  gate: Promise<void> | undefined;
  recorded(peer: number): string | undefined {
    return this.map.get(peer);
  }
  async record(peer: number, instance: string): Promise<string> {
    await this.gate;
    if (!this.map.has(peer)) this.map.set(peer, instance);
    return this.map.get(peer)!;
  }
}

/** Dials `address` as node 2 of cluster c1, to node 1, naming `instance`. */
const dial = (address: string, instance: Uint8Array | undefined): Promise<RawPeer> => rawPeer(address, 'c1', 2, 1, SECRET, instance);

describe('instance ids', () => {
  const open: TcpTransport[] = [];
  afterEach(async () => {
    for (const t of open.splice(0)) await t.close();
  });

  async function transport(
    id: number,
    instanceId: string | undefined,
    book?: PeerInstances,
    peers: Record<number, string> = {},
    more: Partial<TcpTransportOptions> = {},
  ) {
    const logger = new LogCapture();
    const handlers = new Recorder();
    const t = new TcpTransport({
      id,
      clusterId: 'c1',
      listen: '127.0.0.1:0',
      peers,
      clusterSecret: SECRET,
      logger,
      electionTimeoutMs: 300,
      ...(instanceId !== undefined ? { instanceId } : {}),
      ...(book !== undefined ? { peerInstances: book } : {}),
      ...more,
    });
    open.push(t);
    await t.start(handlers);
    return { t, logger, handlers };
  }

  it('are inside the proof: a proof made for other instances does not verify', () => {
    const facts: HandshakeFacts = {
      version: WIRE_VERSION,
      clusterId: 'c1',
      dialer: 1,
      acceptor: 2,
      dialerNonce: nonce(),
      acceptorNonce: nonce(),
      dialerInstance: Buffer.from(A, 'hex'),
      acceptorInstance: Buffer.from(B, 'hex'),
    };
    const secrets = [Buffer.from(SECRET)];
    for (const role of ['dialer', 'acceptor'] as const) {
      const p = proof(secrets[0]!, role, facts);
      expect(verify(secrets, role, facts, p)).toBe(secrets[0]);
      expect(verify(secrets, role, { ...facts, dialerInstance: Buffer.from(B, 'hex') }, p)).toBeUndefined();
      expect(verify(secrets, role, { ...facts, acceptorInstance: Buffer.from(A, 'hex') }, p)).toBeUndefined();
      const { acceptorInstance: _, ...without } = facts;
      expect(verify(secrets, role, without, p)).toBeUndefined();
    }
  });

  it('travel in the hello and the challenge; one of another length is a malformed frame', () => {
    const p = newPacker();
    const inst = Buffer.from(A, 'hex');
    expect(decodeFrame(Buffer.from(encodeHello(p, 'c', 1, 2, undefined, nonce(), inst)))).toMatchObject({ kind: 'hello', instance: inst });
    expect(decodeFrame(Buffer.from(encodeChallenge(p, nonce(), new Uint8Array(0), inst)))).toMatchObject({ kind: 'challenge', instance: inst });
    for (const bad of [new Uint8Array(15), new Uint8Array(17), new Uint8Array(0)]) {
      expect(() => decodeFrame(Buffer.from(encodeHello(p, 'c', 1, 2, undefined, nonce(), bad)))).toThrow(
        expect.objectContaining({ code: 'TRANSPORT_MALFORMED_FRAME' }),
      );
      expect(() => decodeFrame(Buffer.from(encodeChallenge(p, nonce(), new Uint8Array(0), bad)))).toThrow(
        expect.objectContaining({ code: 'TRANSPORT_MALFORMED_FRAME' }),
      );
    }
    // Not bytes at all.
    expect(() => decodeFrame(Buffer.from(p.pack([4, nonce(), new Uint8Array(0), 'x'.repeat(16)])))).toThrow(
      expect.objectContaining({ code: 'TRANSPORT_MALFORMED_FRAME' }),
    );
  });

  it("the dialer counts a refusal sent while it records the acceptor's instance under its code: the acceptor proved itself", async () => {
    const book = new Book();
    book.gate = new Promise<void>(() => undefined); // a record that never becomes durable
    const b = await transport(2, B, undefined, {}, { handshakeTimeoutMs: 200 });
    const { t: a } = await transport(1, A, book, { 2: b.t.address }, { connectTimeoutMs: 60_000 });
    // The acceptor waits for the proof this node sends only once the record is durable.
    await until(() => (a.stats().refusedByPeers.TRANSPORT_HANDSHAKE_TIMEOUT ?? 0) >= 1, 'the refusal counted under its code', 20_000);
    expect(a.stats().refusedByPeers.UNPROVEN).toBeUndefined();
  });

  it('the acceptor refuses a malformed instance, and a dialer that names none when it keeps a record', async () => {
    const book = new Book();
    const { t } = await transport(1, A, book, { 2: '127.0.0.1:1' });
    const short = await dial(t.address, new Uint8Array(5));
    await short.closed;
    expect(refusal(short)).toBe('TRANSPORT_MALFORMED_FRAME');
    const none = await dial(t.address, undefined);
    await none.closed;
    expect(refusal(none)).toBe('TRANSPORT_MALFORMED_FRAME');
    expect(book.map.size).toBe(0);
  });

  it('the acceptor records the first instance of a peer and refuses another after, with TRANSPORT_PEER_REPLACED', async () => {
    const book = new Book();
    const { t, logger } = await transport(1, A, book, { 2: '127.0.0.1:1' });
    const first = await dial(t.address, Buffer.from(B, 'hex'));
    await until(() => book.map.get(2) === B, 'the record');
    expect(first.frames[0]).toMatchObject({ kind: 'challenge', instance: Buffer.from(A, 'hex') });
    const again = await dial(t.address, Buffer.from(B, 'hex'));
    const other = await dial(t.address, Buffer.from(A, 'hex'));
    await other.closed;
    expect(refusal(other)).toBe('TRANSPORT_PEER_REPLACED');
    expect(refusal(again)).toBeUndefined();
    expect(book.map.get(2)).toBe(B);
    expect(t.stats().refused['TRANSPORT_PEER_REPLACED']).toBe(1);
    expect(logger.lines.some((l) => l.level === 'error' && /node 2 came back as a new instance/.test(l.message))).toBe(true);
  });

  it('nothing from a peer met for the first time is delivered before its record is durable', async () => {
    const book = new Book();
    let open: () => void = () => undefined;
    book.gate = new Promise<void>((resolve) => (open = resolve));
    const a = await transport(1, A, book, { 2: '127.0.0.1:1' });
    const b = await transport(2, B, undefined, { 1: a.t.address });
    await until(() => b.t.stats().peers[1]!.connected, 'the dialer to send its proof');
    b.t.send([msg(2, 1)]);
    // Well within the dialer's idle limit (900 ms), which a paused acceptor's silence would reach.
    await new Promise((r) => setTimeout(r, 100));
    expect(a.handlers.messages).toHaveLength(0);
    expect(book.map.size).toBe(0);
    open();
    await until(() => a.handlers.messages.length > 0, 'the message, once recorded');
    expect(book.map.get(2)).toBe(B);
  });

  it('a peer the driver did not add is checked but not recorded: a removed member still running must not be met again', async () => {
    const book = new Book();
    const a = await transport(1, A, book, {});
    const b = await transport(2, B, undefined, { 1: a.t.address });
    b.t.send([msg(2, 1)]);
    await until(() => a.handlers.messages.length > 0, 'the stranger heard');
    expect(book.map.has(2)).toBe(false);
    book.map.set(3, A);
    const c = await transport(3, B, undefined, { 1: a.t.address });
    c.t.send([msg(3, 1)]);
    await until(() => (a.t.stats().refused['TRANSPORT_PEER_REPLACED'] ?? 0) > 0, 'the replaced stranger refused');
  });

  it('the dialer refuses an acceptor whose instance changed, and is not told its messages arrived', async () => {
    const book = new Book();
    const b = await transport(2, B, undefined, {});
    book.map.set(2, A);
    const a = await transport(1, A, book, { 2: b.t.address });
    a.t.send([msg(1, 2)]);
    await until(() => (a.t.stats().refused['TRANSPORT_PEER_REPLACED'] ?? 0) > 0, 'the dialer to refuse');
    expect(b.handlers.messages).toHaveLength(0);
    expect(a.logger.lines.some((l) => l.level === 'error' && /node 2 came back as a new instance/.test(l.message))).toBe(true);
  });

  it('a refused dialer counts and logs the refusal as a new instance', async () => {
    const book = new Book();
    book.map.set(2, A);
    const a = await transport(1, A, book, { 2: '127.0.0.1:1' });
    const b = await transport(2, B, undefined, { 1: a.t.address });
    b.t.send([msg(2, 1)]);
    await until(() => (b.t.stats().refusedByPeers['TRANSPORT_PEER_REPLACED'] ?? 0) > 0, 'the dialer told');
    expect(b.logger.lines.some((l) => l.level === 'error' && /refuses this node as a new instance of node 2/.test(l.message))).toBe(true);
  });
});
