// An accepted connection on its own, over a real socket: what it writes back to a
// dialer that does not read stays bounded, whatever the dialer sends.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { Inbound } from '../../src/transport/inbound.js';
import { encodeFrames } from '../../src/transport/frame.js';
import { HANDSHAKE_MAX_BYTES, encodeHello, encodePing, encodeProof, newPacker } from '../../src/transport/wire.js';
import { inMemorySnapshots } from '../../src/transport/snapshot-streams.js';
import { PendingReleases } from '../../src/transport/pending-releases.js';
import { LogCapture, until } from './helpers.js';
import { Census, quiesce } from '../churn/census.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/**
 * A dialer connected to an Inbound (no secret) over a Unix socket, whose kernel buffers hold a few
 * hundred small writes where TCP's on loopback hold megabytes: what the Inbound leaves unsent shows at once.
 */
async function accepted(): Promise<{ dialer: net.Socket; acceptor: net.Socket; inbound: Inbound; refusals: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'raftlog-inbound-'));
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(join(dir, 's'), resolve));
  cleanups.push(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const accepting = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const dialer = net.connect({ path: join(dir, 's') });
  const acceptor = await accepting;
  const logger = new LogCapture();
  const refusals: string[] = [];
  const inbound = new Inbound(acceptor, {
    self: 2,
    clusterId: 'c1',
    maxFrameBytes: 1024 * 1024,
    maxSnapshotBytes: 1024,
    snapshots: inMemorySnapshots,
    isMember: () => true,
    handshakeTimeoutMs: 60_000,
    idleTimeoutMs: 60_000,
    secrets: () => [],
    logger,
    refusals: logger,
    packer: newPacker(),
    deliver: () => {},
    refused: (err) => refusals.push(err.code),
    learned: () => {},
    authenticated: () => {},
    releases: new PendingReleases(logger),
    abandonedStores: new Set(),
  });
  cleanups.push(() => {
    inbound.destroy();
    dialer.destroy();
  });
  return { dialer, acceptor, inbound, refusals };
}

it('answers the pings of a dialer that reads none of its pongs with at most one pong left unsent', async () => {
  const { dialer, acceptor, inbound } = await accepted();
  dialer.pause();
  const p = newPacker();
  dialer.write(encodeFrames([encodeHello(p, 'c1', 1, 2), encodeProof(p, new Uint8Array(0))]));
  // Far more pongs than the kernel's buffers hold (each is its own small write).
  const PINGS = 50_000;
  const batch = encodeFrames(Array.from({ length: 1000 }, () => encodePing(p, false)));
  for (let i = 0; i < PINGS / 1000; i++) dialer.write(batch);
  await until(() => inbound.framesReceived === PINGS + 2, 'every ping read', 30_000);
  // One pong: 6 bytes.
  expect(acceptor.writableLength).toBeLessThanOrEqual(6);
});

it('refuses a frame larger than a handshake from a dialer that has not identified itself, before holding it', async () => {
  const { dialer, inbound, refusals } = await accepted();
  dialer.on('error', () => {}); // the refusal may reset the connection under the write
  // A stranger's frame is held in full until it ends: a member's bound would let each held connection take maxFrameBytes.
  const frame = Buffer.alloc(4 + HANDSHAKE_MAX_BYTES + 1);
  frame.writeUInt32BE(HANDSHAKE_MAX_BYTES + 1, 0);
  dialer.write(frame);
  await until(() => refusals.length > 0, 'the connection refused');
  expect(refusals).toEqual(['TRANSPORT_FRAME_TOO_LARGE']);
  expect(inbound.framesReceived).toBe(0);
});

it('clears the grace timer of a refused connection once its socket closes', async () => {
  const { dialer, acceptor, refusals } = await accepted();
  dialer.on('error', () => {});
  dialer.resume(); // reads the refusal, and so ends its side at once
  const census = new Census().start();
  cleanups.push(() => census.stop());
  const graces: NodeJS.Timeout[] = [];
  const real = globalThis.setTimeout;
  const spy = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, ms?: number) => {
    const t = real(fn, ms);
    if (ms === 1_000) graces.push(t);
    return t;
  }) as typeof setTimeout);
  cleanups.push(() => spy.mockRestore());
  const closed = new Promise<void>((r) => acceptor.once('close', () => r()));
  const frame = Buffer.alloc(4);
  frame.writeUInt32BE(HANDSHAKE_MAX_BYTES + 1, 0);
  dialer.write(frame);
  await until(() => refusals.length > 0, 'the connection refused');
  spy.mockRestore();
  expect(graces).toHaveLength(1);
  await closed;
  await quiesce();
  // Left set, it would fire up to a second after the close, on a socket already gone.
  expect(census.counts(graces[0]!)).toBe(false);
});
