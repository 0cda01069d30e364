import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { TcpTransport } from '../../src/transport/tcp-transport.js';
import type { TcpTransportOptions, TlsOptions } from '../../src/transport/tcp-transport.js';
import { LogCapture, Recorder, msg, until, within } from './helpers.js';
import { Census } from '../churn/census.js';
import { FrameDecoder, encodeFrames } from '../../src/transport/frame.js';
import { decodeFrame, encodeHello, newPacker, type Frame } from '../../src/transport/wire.js';
import { nonce } from '../../src/transport/auth.js';
import { collect } from '../churn/cluster.js';

// Throwaway certificates made with the openssl command line for each run:
// a cluster CA, a node certificate it signs (SAN 127.0.0.1, server+client use),
// and an impostor signed by a CA of its own.
let dir: string;
const pem = (name: string) => readFileSync(join(dir, name));
function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}
function makeCa(name: string): void {
  openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.crt`,
    '-days',
    '1',
    '-subj',
    `/CN=${name}`,
  );
}
// Each certificate names its node: nodeN gets raftlog://node/N, anything else node 99, unless `id` says.
function makeCert(name: string, ca: string, id = /^node(\d+)$/.exec(name)?.[1] ?? '99'): void {
  openssl(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${name}`,
  );
  writeFileSync(join(dir, `${name}.cnf`), `subjectAltName=URI:raftlog://node/${id},IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n`);
  openssl(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.crt`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-out',
    `${name}.crt`,
    '-days',
    '1',
    '-extfile',
    `${name}.cnf`,
  );
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'raftlog-tls-'));
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  makeCa('ca');
  makeCa('rogue-ca');
  makeCert('node1', 'ca');
  makeCert('node2', 'ca');
  makeCert('impostor', 'rogue-ca');
  makeCert('node3', 'ca');
  // Certificates naming a member, from the wrong CA.
  makeCert('rogue1', 'rogue-ca', '1');
  makeCert('rogue2', 'rogue-ca', '2');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const open: TcpTransport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

const creds = (name: string, ca = 'ca'): TlsOptions => ({ key: pem(`${name}.key`), cert: pem(`${name}.crt`), ca: pem(`${ca}.crt`) });

async function node(id: number, t: TlsOptions, peers: Record<number, string> = {}, more: Partial<TcpTransportOptions> = {}) {
  const rec = new Recorder();
  const log = new LogCapture();
  const tr = new TcpTransport({ id, clusterId: 'c1', listen: '127.0.0.1:0', peers, tls: t, logger: log, backoff: { initialMs: 10, maxMs: 100 }, ...more });
  open.push(tr);
  await tr.start(rec);
  return { t: tr, rec, log };
}

describe('TcpTransport with TLS', () => {
  it('exchanges messages between peers that both hold certificates of the cluster CA', async () => {
    const b = await node(2, creds('node2'));
    const a = await node(1, creds('node1'), { 2: b.t.address });
    b.t.addPeer(1, a.t.address);
    a.t.send([msg(1, 2, { commit: 5 })]);
    await until(() => b.rec.messages.length === 1, 'a message over TLS');
    b.t.send([msg(2, 1, { commit: 6 })]);
    await until(() => a.rec.messages.length === 1, 'the reply over TLS');
    expect(b.rec.messages[0]!.commit).toBe(5);
    expect(a.rec.messages[0]!.commit).toBe(6);
  });

  it('refuses a peer whose certificate another CA signed', async () => {
    const b = await node(2, creds('node2'));
    const impostor = await node(1, creds('rogue1'), { 2: b.t.address });
    impostor.t.send([msg(1, 2)]);
    await until(() => b.log.has('TLS peer at 127.0.0.1'), 'the refusal in the log');
    expect(b.log.messages[0]).toMatch(/refused: UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    expect(b.rec.messages).toEqual([]);
    expect(b.t.stats().connectionsRefused).toBeGreaterThan(0);
    expect(Object.keys(b.t.stats().refused)).toEqual(['TRANSPORT_AUTH_FAILED']);
  });

  it('counts a refusal of the hello under its code: the certificate proved the acceptor; with a secret too, as UNPROVEN until it proves that', async () => {
    const b = await node(2, creds('node2'), {}, { clusterId: 'c2' });
    const a = await node(1, creds('node1'), { 2: b.t.address });
    await until(() => (a.t.stats().refusedByPeers.TRANSPORT_CLUSTER_MISMATCH ?? 0) >= 2, 'two refusals counted under their code');
    expect(Object.keys(a.t.stats().refusedByPeers)).toEqual(['TRANSPORT_CLUSTER_MISMATCH']);
    const secret = { clusterSecret: 'a secret of at least sixteen bytes' };
    const d = await node(2, creds('node2'), {}, { clusterId: 'c2', ...secret });
    const c = await node(1, creds('node1'), { 2: d.t.address }, secret);
    await until(() => (c.t.stats().refusedByPeers.UNPROVEN ?? 0) >= 2, 'two refusals counted as UNPROVEN');
    expect(Object.keys(c.t.stats().refusedByPeers)).toEqual(['UNPROVEN']);
  });

  it('refuses a client that presents no certificate', async () => {
    const b = await node(2, creds('node2'));
    const [host, port] = b.t.address.split(':');
    const s = tls.connect({ host: host!, port: Number(port), ca: pem('ca.crt') });
    s.on('error', () => undefined); // the server's alert surfaces here; the assertion is the server's log
    s.resume();
    await until(() => b.log.has('TLS peer at 127.0.0.1'), 'the refusal in the log');
    expect(b.log.messages[0]).toMatch(/refused: no client certificate/);
    s.destroy();
  });

  it('neither logs nor counts as refused a connection still in its TLS handshake that close() cuts off', async () => {
    const b = await node(2, creds('node2'));
    const [host, port] = b.t.address.split(':');
    const s = net.connect({ host: host!, port: Number(port) });
    s.on('error', () => undefined);
    await until(() => b.t.stats().handshakesInProgress === 1, 'the connection to be admitted');
    await b.t.close();
    await until(() => b.t.stats().handshakesInProgress === 0, 'its handshake slot to be given back');
    expect(b.log.messages).toEqual([]);
    expect(b.t.stats().connectionsRefused).toBe(0);
    s.destroy();
  });

  it('does not connect to a server whose certificate another CA signed', async () => {
    const rogue = await node(2, creds('rogue2', 'rogue-ca'));
    const a = await node(1, creds('node1'), { 2: rogue.t.address });
    a.t.send([msg(1, 2)]);
    await until(() => a.log.has('connection to peer 2'), "the client's log");
    expect(a.log.messages.join('\n')).toMatch(/certificate/i);
    expect(rogue.rec.messages).toEqual([]);
  });

  it('refuses a peer whose certificate names another node id than its hello claims', async () => {
    const b = await node(2, creds('node2'));
    // A genuine cluster certificate, but it names node 3 while the hello claims node 1.
    const [host, port] = b.t.address.split(':');
    const s = tls.connect({ host: host!, port: Number(port), ...creds('node3'), checkServerIdentity: () => undefined });
    s.on('error', () => undefined);
    const frames: Frame[] = [];
    const d = new FrameDecoder(1 << 20);
    s.on('data', (c: Buffer) => {
      d.push(c);
      for (let f = d.next(); f !== undefined; f = d.next()) frames.push(decodeFrame(f));
    });
    await within('the TLS handshake', new Promise((r) => s.once('secureConnect', r)), 5_000);
    s.write(encodeFrames([encodeHello(newPacker(), 'c1', 1, 2, undefined, nonce())]));
    await until(() => frames.length > 0, 'the answer to the hello');
    expect(frames[0]).toMatchObject({ kind: 'refuse', code: 'TRANSPORT_AUTH_FAILED' });
    expect(b.log.messages.join('\n')).toMatch(/hello claims node 1, the certificate names node 3/);
    expect(b.rec.messages).toEqual([]);
    expect(Object.keys(b.t.stats().refused)).toEqual(['TRANSPORT_AUTH_FAILED']);
    s.destroy();
  });

  it('does not talk to a server whose certificate names another node than the one dialled', async () => {
    const other = await node(3, creds('node3'));
    const a = await node(1, creds('node1'), { 2: other.t.address }); // the address of "node 2" is node 3's
    a.t.send([msg(1, 2)]);
    await until(() => a.log.has('connection to peer 2'), "the client's log");
    expect(a.log.messages.join('\n')).toMatch(/does not name node 2/);
    expect(other.rec.messages).toEqual([]);
  });

  it('reloadTls: connections made after a reload use the new credentials', async () => {
    const b = await node(2, creds('node2'));
    const a = await node(1, creds('rogue1'), { 2: b.t.address }); // from another CA at first
    a.t.send([msg(1, 2, { commit: 1 })]);
    await until(() => b.t.stats().refused.TRANSPORT_AUTH_FAILED !== undefined, 'the first refusal');
    a.t.reloadTls(creds('node1'));
    await until(() => {
      a.t.send([msg(1, 2, { commit: 2 })]);
      return b.rec.messages.length > 0;
    }, 'a message after the reload');
    expect(b.rec.messages.every((m) => m.commit === 2)).toBe(true);
  });

  it('reloadTls before start(): the server start() builds presents and verifies the reloaded credentials', async () => {
    const rec = new Recorder();
    // At first a certificate of another CA, which node 1 neither trusts nor is trusted by.
    const b = new TcpTransport({
      id: 2,
      clusterId: 'c1',
      listen: '127.0.0.1:0',
      tls: creds('rogue2', 'rogue-ca'),
      logger: new LogCapture(),
      backoff: { initialMs: 10, maxMs: 100 },
    });
    open.push(b);
    b.reloadTls(creds('node2'));
    await b.start(rec);
    const a = await node(1, creds('node1'), { 2: b.address });
    await until(() => {
      a.t.send([msg(1, 2, { commit: 1 })]);
      return rec.messages.length > 0;
    }, 'a message to the reloaded server');
    expect(b.stats().refused.TRANSPORT_AUTH_FAILED).toBeUndefined();
  });

  it('reloadTls with other CAs closes every connection, both ways: peers the new CAs verify redial, the others stay out', async () => {
    const b = await node(2, creds('node2'));
    const a = await node(1, creds('node1'), { 2: b.t.address });
    b.t.addPeer(1, a.t.address);
    let n = 0;
    const exchange = async (what: string): Promise<void> => {
      n++;
      await until(() => {
        a.t.send([msg(1, 2, { commit: n })]);
        b.t.send([msg(2, 1, { commit: n })]);
        return a.rec.messages.some((m) => m.commit === n) && b.rec.messages.some((m) => m.commit === n);
      }, what);
    };
    await exchange('messages both ways');
    // Only the certificate renewed: nothing is closed.
    b.t.reloadTls(creds('node2'));
    await exchange('messages both ways after a renewal');
    expect(a.t.stats().peers[2]!.connects).toBe(1);
    expect(b.t.stats().peers[1]!.connects).toBe(1);
    // A CA added: the connections are made again, under the new list.
    b.t.reloadTls({ ...creds('node2'), ca: [pem('ca.crt'), pem('rogue-ca.crt')] });
    await until(() => a.t.stats().peers[2]!.connects === 2 && b.t.stats().peers[1]!.connects === 2, 'both connections made again');
    await exchange('messages both ways after a CA was added');
    // The cluster CA dropped: what it let in is closed, both ways, and node 1 (of that CA) no longer gets in.
    b.t.reloadTls({ ...creds('node2'), ca: pem('rogue-ca.crt') });
    await until(() => b.t.connectedPeers().size === 0 && !a.t.stats().peers[2]!.connected, 'every connection closed');
    await until(() => (b.t.stats().refused.TRANSPORT_AUTH_FAILED ?? 0) >= 2, 'a redial of node 1 refused');
    expect(b.t.connectedPeers().size).toBe(0);
    expect(b.log.has('the CAs that verified the peer were replaced')).toBe(true);
  });

  it('refuses credentials it cannot use, at construction and at a reload, with TRANSPORT_BAD_OPTION; those in force keep working', async () => {
    // Node's errors escaped without a code of ours; a CA holding no certificate, or a certificate naming
    // another node, was taken without a word, and then no peer could be verified, or every peer refused this node.
    const bad = (name: string, other: string): Array<[unknown, RegExp]> => [
      [{ ...creds(name), key: 'not a key' }, /tls \(key, cert, ca\) cannot be used/],
      [{ ...creds(name), key: pem(`${other}.key`) }, /cannot be used: .*key values mismatch/],
      [{ ...creds(name), cert: 'not a certificate' }, /cannot be used/],
      [{ ...creds(name), ca: 'not a CA' }, /cannot be used/],
      [{ ...creds(name), ca: [pem('ca.crt'), 'not a CA'] }, /cannot be used/],
      [null, /cannot be used/],
      [creds('node3'), /the tls certificate names node 3, not this node: it needs the SAN URI raftlog:\/\/node\/\d/],
      [creds('impostor'), /names node 99, not this node/],
    ];
    for (const [t, why] of bad('node1', 'node2')) {
      expect(() => new TcpTransport({ id: 1, clusterId: 'c1', listen: '127.0.0.1:0', tls: t as TlsOptions }), String(why)).toThrow(
        expect.objectContaining({ code: 'TRANSPORT_BAD_OPTION', message: expect.stringMatching(why) }),
      );
    }
    const b = await node(2, creds('node2'));
    const a = await node(1, creds('node1'));
    for (const [n, own, other] of [
      [a, 'node1', 'node2'],
      [b, 'node2', 'node1'],
    ] as const) {
      for (const [t, why] of bad(own, other)) {
        expect(() => n.t.reloadTls(t as TlsOptions), `${own} ${String(why)}`).toThrow(
          expect.objectContaining({ code: 'TRANSPORT_BAD_OPTION', message: expect.stringMatching(why) }),
        );
      }
    }
    // Both still dial and accept with what they had.
    a.t.addPeer(2, b.t.address);
    await until(() => {
      a.t.send([msg(1, 2, { commit: 4 })]);
      return b.rec.messages.length > 0;
    }, 'a message over a connection made after the refused reloads');
  });

  it('reloadCredentials puts secrets and certificates in force together or not at all: refused ones leave the secret in force', async () => {
    const OLD = 'the old secret of this cluster';
    const NEW = 'the new secret of this cluster';
    const b = await node(2, creds('node2'), {}, { clusterSecret: OLD });
    const a = await node(1, creds('node1'), { 2: b.t.address }, { clusterSecret: OLD });
    b.t.addPeer(1, a.t.address);
    let n = 0;
    const exchange = async (what: string): Promise<void> => {
      n++;
      await until(() => {
        a.t.send([msg(1, 2, { commit: n })]);
        b.t.send([msg(2, 1, { commit: n })]);
        return a.rec.messages.some((m) => m.commit === n) && b.rec.messages.some((m) => m.commit === n);
      }, what);
    };
    await exchange('messages both ways');
    // A certificate naming another node beside a new secret list: the list was put in force
    // first, closing the connections the old secret proved, and the reload then refused.
    expect(() => b.t.reloadCredentials({ clusterSecret: NEW, tls: creds('node3') })).toThrow(
      expect.objectContaining({ code: 'TRANSPORT_BAD_OPTION', message: expect.stringMatching(/names node 3, not this node/) }),
    );
    await exchange('messages both ways after the refused reload');
    expect(a.t.stats().peers[2]!.connects).toBe(1);
    expect(b.t.stats().peers[1]!.connects).toBe(1);
    expect(b.log.has('no longer in the list')).toBe(false);
    // Both accepted: in force together.
    for (const t of [a.t, b.t]) t.reloadCredentials({ clusterSecret: [NEW, OLD], tls: creds(t === a.t ? 'node1' : 'node2') });
    await exchange('messages both ways after both reloaded');
    // A transport without TLS refuses certificates, and keeps its secret.
    const d = await node(4, creds('node1'), {}, { tls: undefined, clusterSecret: OLD });
    const e = await node(5, creds('node1'), { 4: d.t.address }, { tls: undefined, clusterSecret: OLD });
    await until(() => {
      e.t.send([msg(5, 4, { commit: 1 })]);
      return d.rec.messages.length > 0;
    }, 'a message without TLS');
    expect(() => d.t.reloadCredentials({ clusterSecret: NEW, tls: creds('node1') })).toThrow(
      expect.objectContaining({ code: 'TRANSPORT_BAD_OPTION', message: expect.stringMatching(/without tls/) }),
    );
    const heard = d.rec.messages.length;
    await until(() => {
      e.t.send([msg(5, 4, { commit: 2 })]);
      return d.rec.messages.length > heard;
    }, 'a message without TLS after the refused reload');
    expect(e.t.stats().peers[4]!.connects).toBe(1);
    expect(d.log.has('no longer in the list')).toBe(false);
  });

  it('dials with one secure context per set of credentials, and a reload changes what the next dial presents', async () => {
    const contexts = vi.spyOn(tls, 'createSecureContext');
    try {
      const b = await node(2, creds('node2'));
      const a = await node(1, creds('rogue1'), { 2: b.t.address }); // from another CA: refused, dialled again
      const built = contexts.mock.calls.length;
      a.t.send([msg(1, 2, { commit: 1 })]);
      await until(() => b.t.stats().connectionsRefused >= 5, 'five dials refused');
      expect(contexts.mock.calls.length).toBe(built);
      a.t.reloadTls(creds('node1'));
      const reloaded = contexts.mock.calls.length;
      await until(() => {
        a.t.send([msg(1, 2, { commit: 2 })]);
        return b.rec.messages.length > 0;
      }, 'a message after the reload');
      expect(b.rec.messages.every((m) => m.commit === 2)).toBe(true);
      expect(contexts.mock.calls.length).toBe(reloaded);
    } finally {
      contexts.mockRestore();
    }
  });

  it('closes without waiting on a connection stuck before its TLS handshake', { timeout: 5_000 }, async () => {
    const b = await node(2, creds('node2'));
    const [host, port] = b.t.address.split(':');
    const s = net.connect({ host: host!, port: Number(port) });
    s.on('error', () => undefined);
    await new Promise((r) => s.once('connect', r));
    const gone = new Promise((r) => s.once('close', r));
    s.resume();
    await b.t.close(); // would wait for Node's 120 s TLS handshake timeout if the socket were not tracked
    await gone;
  });
});

// A TCP connection to a TLS node that never starts TLS, or stops between the handshakes, must
// count against the handshake slots and the handshake timeout from the moment it is accepted:
// otherwise Node holds it for 120 s, and enough of them fill the inbound cap and shut out peers.
describe('TcpTransport with TLS: handshake limits from the TCP accept', () => {
  const raws: net.Socket[] = [];
  afterEach(() => {
    for (const s of raws.splice(0)) s.destroy();
  });
  /** A TCP connection that sends nothing; resolves once connected, with when it closes. */
  async function silent(address: string): Promise<{ s: net.Socket; closed: Promise<number> }> {
    const [host, port] = address.split(':');
    const s = net.connect({ host: host!, port: Number(port) });
    raws.push(s);
    s.on('error', () => undefined);
    s.resume();
    const closed = new Promise<number>((r) => s.once('close', () => r(Date.now())));
    await new Promise((r) => s.once('connect', r));
    return { s, closed };
  }

  it(
    'closes connections that never start TLS within the handshake timeout; a peer still gets through while they keep coming',
    { timeout: 20_000 },
    async () => {
      const b = await node(2, creds('node2'), {}, { maxInboundConnections: 6, maxUnauthenticatedConnections: 4, handshakeTimeoutMs: 300 });
      // Enough at once to fill the inbound cap, as many as an attacker holds without the fix.
      const opened = Date.now();
      const first = await Promise.all(Array.from({ length: 6 }, () => silent(b.t.address)));
      const closedAt = await within('the first silent connections to close', Promise.all(first.map((c) => c.closed)), 3_000);
      expect(Math.max(...closedAt) - opened).toBeLessThan(300 + 1_000);
      expect(b.log.has('TRANSPORT_HANDSHAKE_TIMEOUT')).toBe(true);
      // More keep arriving, one every 100 ms, while a real peer dials.
      const more = setInterval(() => void silent(b.t.address).catch(() => undefined), 100);
      try {
        await new Promise((r) => setTimeout(r, 350));
        const a = await node(1, creds('node1'), { 2: b.t.address });
        await until(
          () => {
            a.t.send([msg(1, 2, { commit: 3 })]);
            return b.rec.messages.length > 0;
          },
          "the real peer's message",
          5_000,
        );
      } finally {
        clearInterval(more);
      }
      expect(b.rec.messages[0]!.commit).toBe(3);
    },
  );

  it(
    'counts connections still in their TLS handshake against the handshake-slot cap, closes the oldest for a new one, and frees a slot when one closes',
    { timeout: 20_000 },
    async () => {
      const b = await node(2, creds('node2'), {}, { maxUnauthenticatedConnections: 2, handshakeTimeoutMs: 10_000 });
      // An authenticated peer leaves its slot behind.
      const a = await node(1, creds('node1'), { 2: b.t.address });
      a.t.send([msg(1, 2, { commit: 1 })]);
      await until(() => b.rec.messages.length === 1, 'the peer authenticated');
      const held = [await silent(b.t.address), await silent(b.t.address)];
      const third = await silent(b.t.address);
      await within('the oldest connection to be closed at once', held[0]!.closed, 2_000);
      expect(b.log.has('TRANSPORT_TOO_MANY_CONNECTIONS: unauthenticated connections at the limit of 2: the oldest closed for a newer one')).toBe(true);
      expect([held[1]!.s.destroyed, third.s.destroyed]).toEqual([false, false]);
      // A connection that goes gives its slot back: the next one takes it, closing none.
      held[1]!.s.destroy();
      await held[1]!.closed;
      await until(() => b.t.stats().handshakesInProgress === 1, 'the server to see the close');
      const fourth = await silent(b.t.address);
      await until(() => b.t.stats().handshakesInProgress === 2, 'the fourth connection in its handshake');
      expect([third.s.destroyed, fourth.s.destroyed]).toEqual([false, false]);
      expect(b.t.stats().refused.TRANSPORT_TOO_MANY_CONNECTIONS).toBe(1);
    },
  );

  it('bounds the time from the TCP accept to an authenticated peer, the TLS handshake included', { timeout: 20_000 }, async () => {
    const b = await node(2, creds('node2'), {}, { handshakeTimeoutMs: 600 });
    const { s } = await silent(b.t.address);
    const connected = Date.now();
    await new Promise((r) => setTimeout(r, 450));
    // A genuine certificate, TLS completed late, then not a byte of our handshake.
    const c = tls.connect({ socket: s, ...creds('node1'), rejectUnauthorized: false });
    c.on('error', () => undefined);
    c.resume(); // reads the refusal, if one comes, so that the close is seen
    raws.push(c);
    const closed = new Promise<number>((r) => c.once('close', () => r(Date.now())));
    await within('the TLS handshake', new Promise((r) => c.once('secureConnect', r)), 2_000);
    const at = await within('the connection to be closed', closed, 3_000);
    // Timed from the end of TLS, it would close at 450 + 600 ms or later.
    expect(at - connected).toBeLessThan(600 + 300);
    expect(b.log.has('TRANSPORT_HANDSHAKE_TIMEOUT')).toBe(true);
  });

  it('strangers on the TLS port, 120 of them, failing before, during and after the TLS handshake, leave no slot, timer, socket or descriptor behind', async () => {
    const census = new Census().start();
    try {
      const b = await node(2, creds('node2'), {}, { handshakeTimeoutMs: 150, maxHandshakesPerAddress: 16 });
      const [host, port] = b.t.address.split(':');
      const at = { host: host!, port: Number(port) };
      const ended = (s: net.Socket): Promise<void> => new Promise((r) => (s.closed ? r() : s.once('close', () => r())));
      const plain = async (then: (s: net.Socket) => void): Promise<void> => {
        const s = net.connect(at);
        s.on('error', () => undefined);
        s.resume();
        await new Promise((r) => s.once('connect', r));
        then(s);
        await ended(s);
      };
      const secure = async (o: tls.ConnectionOptions, then: (s: tls.TLSSocket) => void): Promise<void> => {
        const s = tls.connect({ ...at, ca: pem('ca.crt'), checkServerIdentity: () => undefined, ...o });
        s.on('error', () => undefined);
        s.resume();
        s.once('secureConnect', () => then(s));
        await ended(s);
      };
      const ways: Array<() => Promise<void>> = [
        () => plain((s) => s.destroy()), // leaves before TLS
        () => plain((s) => s.write('not a TLS hello\r\n')), // speaks something else
        () => plain(() => undefined), // says nothing: the handshake deadline closes it
        () => secure({}, () => undefined), // no client certificate
        () => secure({ key: pem('impostor.key'), cert: pem('impostor.crt') }, () => undefined), // another CA's
        () => secure({ key: pem('node3.key'), cert: pem('node3.crt') }, (s) => s.destroy()), // a member's, leaves before the hello
      ];
      const growth = await census.growth({
        cycles: 24,
        warmUp: 4,
        cycle: () => Promise.all(ways.map((visit) => visit())),
        settle: async () => {
          await until(() => b.t.stats().handshakesInProgress === 0, 'every handshake slot back');
          await new Promise((r) => setTimeout(r, 1_100)); // a refusal waits up to a second for its peer to read why
          await collect(); // Node destroys the TLS wrap of a connection cut off mid-handshake only when it is collected
        },
      });
      expect(growth).toEqual({});
      expect(census.warnings).toEqual([]);
    } finally {
      census.stop();
    }
  });
});
