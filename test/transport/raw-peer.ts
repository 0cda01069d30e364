// A raw authenticated peer for tests that must send what a well-behaved
// transport never would (oversized, corrupt or abandoned snapshot streams).
import net from 'node:net';
import { FrameDecoder, encodeFrames } from '../../src/transport/frame.js';
import { WIRE_VERSION, decodeFrame, encodeHello, encodeProof, newPacker } from '../../src/transport/wire.js';
import type { Frame } from '../../src/transport/wire.js';
import { nonce, proof, type HandshakeFacts } from '../../src/transport/auth.js';
import { until } from './helpers.js';

export interface RawPeer {
  socket: net.Socket;
  /** Frames the acceptor wrote back (the challenge, pongs, a refusal). */
  frames: Frame[];
  closed: Promise<void>;
  /** Writes frames, waiting for the socket to drain when it asks to. */
  send(frames: Uint8Array[]): Promise<void>;
}

/**
 * Connects to `address` and runs the handshake as node `from` with `secret`, naming `instance` if
 * given. Refused before the challenge, it sends nothing more: the refusal is in `frames`.
 */
export async function rawPeer(address: string, clusterId: string, from: number, to: number, secret: string, instance?: Uint8Array): Promise<RawPeer> {
  const [host, port] = address.split(':');
  const socket = net.connect({ host: host!, port: Number(port) });
  await new Promise<void>((resolve, reject) => socket.once('connect', () => resolve()).once('error', reject));
  socket.on('error', () => undefined); // the acceptor may close on us mid-write: that is what some tests expect
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const frames: Frame[] = [];
  const d = new FrameDecoder(1 << 20);
  socket.on('data', (c: Buffer) => {
    d.push(c);
    for (let f = d.next(); f !== undefined; f = d.next()) frames.push(decodeFrame(f));
  });
  const mine = nonce();
  const p = newPacker();
  socket.write(encodeFrames([encodeHello(p, clusterId, from, to, undefined, mine, instance)]));
  await until(() => frames.length > 0, 'the challenge');
  const ch = frames[0]!;
  if (ch.kind !== 'challenge' && ch.kind !== 'refuse') throw new Error(`expected a challenge, got ${ch.kind}`);
  if (ch.kind === 'challenge') {
    const facts: HandshakeFacts = { version: WIRE_VERSION, clusterId, dialer: from, acceptor: to, dialerNonce: mine, acceptorNonce: ch.nonce };
    if (instance !== undefined) facts.dialerInstance = instance;
    if (ch.instance !== undefined) facts.acceptorInstance = ch.instance;
    socket.write(encodeFrames([encodeProof(p, proof(Buffer.from(secret), 'dialer', facts))]));
  }
  const send = async (fs: Uint8Array[]): Promise<void> => {
    if (socket.destroyed) return;
    if (!socket.write(encodeFrames(fs))) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          socket.off('drain', done);
          socket.off('close', done);
          resolve();
        };
        socket.once('drain', done).once('close', done);
      });
    }
  };
  return { socket, frames, closed, send };
}

/** The refusal the acceptor sent before closing, if any. */
export function refusal(peer: RawPeer): string | undefined {
  const f = peer.frames.find((x) => x.kind === 'refuse');
  return f?.kind === 'refuse' ? f.code : undefined;
}
