// What the transport refuses is counted by its stable code, so that an operator can alert on a
// peer being refused without reading logs: connections and frames it refuses, dials it gives up
// on, and dials a peer refuses. A peer's words never become a label: any code not the transport's
// own counts as OTHER.
import net from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { TcpTransport, type TcpTransportOptions } from '../../src/transport/tcp-transport.js';
import { FrameDecoder, encodeFrames } from '../../src/transport/frame.js';
import { decodeFrame, encodeChallenge, encodeMessage, encodePing, encodeRefuse, newPacker } from '../../src/transport/wire.js';
import { OTHER_CODE, REFUSAL_CODES, UNPROVEN_CODE } from '../../src/transport/errors.js';
import { MessageType } from '../../src/raft/types.js';
import { LogCapture, Recorder, msg, until } from '../transport/helpers.js';
import { rawPeer, refusal } from '../transport/raw-peer.js';
import { seeded, testSeed } from '../seeded.js';

const SECRET = 'correct horse battery staple';
const OTHER_SECRET = 'a secret node 2 was never given';
const open: TcpTransport[] = [];
const servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
  for (const s of servers.splice(0)) s.close();
});

async function node(o: Partial<TcpTransportOptions> & { id: number }): Promise<TcpTransport> {
  const t = new TcpTransport({
    clusterId: 'c1',
    listen: '127.0.0.1:0',
    clusterSecret: SECRET,
    backoff: { initialMs: 10, maxMs: 50 },
    logger: new LogCapture(),
    ...o,
  });
  open.push(t);
  await t.start(new Recorder());
  return t;
}

it('counts a dial with a secret the acceptor does not hold on both sides, and a cluster id of another cluster', async () => {
  const acceptor = await node({ id: 2 });
  // Mid-rotation with a secret node 2 never got first: node 1 verifies node 2, and proves itself with the other.
  const dialer = await node({ id: 1, clusterSecret: [OTHER_SECRET, SECRET], peers: { 2: acceptor.address } });
  await until(() => (dialer.stats().refusedByPeers.TRANSPORT_AUTH_FAILED ?? 0) >= 2, 'two refused dials');
  expect(acceptor.stats().refused.TRANSPORT_AUTH_FAILED).toBeGreaterThanOrEqual(2);
  // The dialer refused nothing itself: the acceptor proved it holds a secret the dialer knows.
  expect(dialer.stats().refused).toEqual({});

  // Only the other secret: the dialer gives up on the acceptor's proof before it proves itself.
  const stranger = await node({ id: 3, clusterSecret: OTHER_SECRET, peers: { 2: acceptor.address } });
  await until(() => (stranger.stats().refused.TRANSPORT_AUTH_FAILED ?? 0) >= 1, "a dial refused for the acceptor's proof");
  expect(stranger.stats().refusedByPeers).toEqual({});

  const foreign = await node({ id: 4, clusterId: 'c2', peers: { 2: acceptor.address } });
  // Refused at its hello, before the acceptor proved anything: counted as unproven, not under the code.
  await until(() => (foreign.stats().refusedByPeers[UNPROVEN_CODE] ?? 0) >= 1, 'a dial refused for its cluster id');
  expect(Object.keys(foreign.stats().refusedByPeers)).toEqual([UNPROVEN_CODE]);
  expect(acceptor.stats().refused.TRANSPORT_CLUSTER_MISMATCH).toBeGreaterThanOrEqual(1);
  const { refused, connectionsRefused } = acceptor.stats();
  // Each refused connection once, under one code, which /metrics exports from the start.
  expect(Object.values(refused).reduce((a, b) => a + b, 0)).toBe(connectionsRefused);
  for (const code of Object.keys(refused)) expect(REFUSAL_CODES).toContain(code);
});

it('counts frames refused over a raw socket: malformed, oversized, another sender, a replaced connection', async () => {
  const t = await node({ id: 1, peers: { 2: '127.0.0.1:1' }, maxFrameBytes: 64 * 1024 });
  const counted = (code: string): number => t.stats().refused[code] ?? 0;

  const garbage = await rawPeer(t.address, 'c1', 2, 1, SECRET);
  await garbage.send([Uint8Array.from([0xc1, 0xc1, 0xc1])]);
  await garbage.closed;
  expect(refusal(garbage)).toBe('TRANSPORT_MALFORMED_FRAME');
  await until(() => counted('TRANSPORT_MALFORMED_FRAME') === 1, 'the malformed frame counted');

  const big = await rawPeer(t.address, 'c1', 2, 1, SECRET);
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(1 << 30);
  big.socket.write(prefix);
  await big.closed;
  expect(refusal(big)).toBe('TRANSPORT_FRAME_TOO_LARGE');
  await until(() => counted('TRANSPORT_FRAME_TOO_LARGE') === 1, 'the oversized frame counted');

  const forger = await rawPeer(t.address, 'c1', 2, 1, SECRET);
  await forger.send([encodeMessage(newPacker(), msg(3, 1, { type: MessageType.MsgHeartbeat, term: 1 }))]);
  await forger.closed;
  expect(refusal(forger)).toBe('TRANSPORT_WRONG_NODE');
  await until(() => counted('TRANSPORT_WRONG_NODE') === 1, 'the message from another sender counted');

  const older = await rawPeer(t.address, 'c1', 2, 1, SECRET);
  // Answered only once authenticated: the newer connection is the one that replaces.
  await older.send([encodePing(newPacker(), false)]);
  await until(() => older.frames.some((f) => f.kind === 'pong'), 'the first connection authenticated');
  const newer = await rawPeer(t.address, 'c1', 2, 1, SECRET);
  await older.closed;
  await until(() => counted('TRANSPORT_CONNECTION_REPLACED') === 1, 'the replaced connection counted');
  newer.socket.destroy();
  expect(t.stats().refused).toEqual({
    TRANSPORT_MALFORMED_FRAME: 1,
    TRANSPORT_FRAME_TOO_LARGE: 1,
    TRANSPORT_WRONG_NODE: 1,
    TRANSPORT_CONNECTION_REPLACED: 1,
  });
});

it('a peer that refuses with codes of its own adds no label: they count as OTHER, or as UNPROVEN before it proved itself', async () => {
  const random = seeded(testSeed('refusal codes of a peer'));
  const codes = Array.from({ length: 20 }, () => `EVIL_${Math.floor(random() * 1e9)}\u00e9"\n{}`);
  codes.push('', '__proto__', 'constructor', 'TRANSPORT_AUTH_FAILED ', 'transport_auth_failed', OTHER_CODE, UNPROVEN_CODE);
  let next = 0;
  // An acceptor that proves itself (insecure: an empty proof), then answers each dialer's proof with
  // a refusal, a code of its own making each time; and refuses every other dial at its hello.
  let proven = true;
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    const d = new FrameDecoder(1 << 16);
    s.on('data', (c: Buffer) => {
      d.push(c);
      for (let f = d.next(); f !== undefined; f = d.next()) {
        const kind = decodeFrame(f).kind;
        if (proven && kind === 'hello') s.write(encodeFrames([encodeChallenge(newPacker(), new Uint8Array(32), new Uint8Array(0))]));
        else s.end(encodeFrames([encodeRefuse(newPacker(), codes[next++ % codes.length]!, 'go away')]));
      }
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const t = await node({ id: 1, peers: { 2: `127.0.0.1:${port}` }, clusterSecret: undefined, insecure: true });
  await until(() => next > codes.length, 'every code sent once');
  await until(() => (t.stats().refusedByPeers[OTHER_CODE] ?? 0) >= codes.length, 'every refusal counted');
  expect(Object.keys(t.stats().refusedByPeers)).toEqual([OTHER_CODE]);
  proven = false;
  const sent = next;
  await until(() => next > sent + codes.length, 'every code sent once more, at the hello');
  await until(() => (t.stats().refusedByPeers[UNPROVEN_CODE] ?? 0) >= codes.length, 'every unproven refusal counted');
  expect(Object.keys(t.stats().refusedByPeers).sort()).toEqual([OTHER_CODE, UNPROVEN_CODE]);
  expect(Object.getPrototypeOf(t.stats().refusedByPeers)).toBe(Object.prototype);
  expect(t.stats().refused).toEqual({});
});
