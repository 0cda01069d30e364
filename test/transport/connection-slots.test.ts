// Connections not yet proven (no secret, no certificate shown) are a stranger's to open at will:
// however many it holds, a member that proves itself gets in.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TcpTransport } from '../../src/transport/tcp-transport.js';
import type { TcpTransportOptions } from '../../src/transport/tcp-transport.js';
import { parseAddress } from '../../src/transport/address.js';
import { LogCapture, Recorder, msg, until } from './helpers.js';

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

/** A stranger's connection from `from` (any of 127.0.0.0/8 is this host's): it sends nothing. */
function stranger(address: string, from: string): Promise<net.Socket> {
  const { host, port } = parseAddress(address);
  const s = net.connect({ host, port, localAddress: from });
  sockets.push(s);
  s.resume();
  s.on('error', () => undefined);
  return new Promise((resolve, reject) => s.once('connect', () => resolve(s)).once('error', reject));
}

/** `perAddress` silent connections from each of `addresses` hosts, 127.0.0.2 on. */
async function strangers(address: string, addresses: number, perAddress: number): Promise<net.Socket[]> {
  const all: net.Socket[] = [];
  for (let a = 0; a < addresses; a++) for (let i = 0; i < perAddress; i++) all.push(await stranger(address, `127.0.0.${a + 2}`));
  return all;
}

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
