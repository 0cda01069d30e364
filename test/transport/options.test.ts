// What TcpTransport's constructor refuses: every option a peer's traffic or a dial depends on is
// checked before anything listens, each refusal a TRANSPORT_BAD_OPTION naming the option.
import { afterEach, describe, expect, it } from 'vitest';
import { TcpTransport } from '../../src/transport/tcp-transport.js';
import type { TcpTransportOptions } from '../../src/transport/tcp-transport.js';
import { HANDSHAKE_MAX_BYTES, MAX_CLUSTER_ID_BYTES, encodeHello, newPacker } from '../../src/transport/wire.js';
import { nonce } from '../../src/transport/auth.js';
import { Recorder, msg, until } from './helpers.js';

const base: TcpTransportOptions = { id: 1, clusterId: 'c1', listen: '127.0.0.1:0', insecure: true };
const refused = (extra: Record<string, unknown>, why: RegExp): void => {
  expect(() => new TcpTransport({ ...base, ...extra } as never), Object.keys(extra).join()).toThrow(
    expect.objectContaining({ code: 'TRANSPORT_BAD_OPTION', message: expect.stringMatching(why) }),
  );
};

const open: TcpTransport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

describe('TcpTransport options', () => {
  it('refuses a cluster id that is no string, empty, blank, with a control character, or too long for the hello every handshake sends', () => {
    refused({ clusterId: 5 }, /clusterId must be a non-empty string/);
    refused({ clusterId: '' }, /clusterId must be a non-empty string/);
    refused({ clusterId: ' \t' }, /not blank and without control characters, got 2 bytes/);
    refused({ clusterId: 'c1\r' }, /not blank and without control characters, got 3 bytes/);
    // Accepted, it made every hello larger than an acceptor reads before the handshake: no peer could ever connect.
    refused({ clusterId: 'x'.repeat(2000) }, /at most 256 UTF-8 bytes, .*got 2000 bytes/);
    refused({ clusterId: 'é'.repeat(MAX_CLUSTER_ID_BYTES / 2 + 1) }, /got 258 bytes/);
  });

  it('a hello fits what an acceptor reads before the handshake, with the longest cluster id, address, nonce and instance', () => {
    const clusterId = 'é'.repeat(MAX_CLUSTER_ID_BYTES / 2);
    const address = `[${'f'.repeat(253)}]:65535`; // longer than any host name DNS allows
    const hello = encodeHello(newPacker(), clusterId, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, address, nonce(), new Uint8Array(16));
    expect(hello.length).toBeLessThanOrEqual(HANDSHAKE_MAX_BYTES);
  });

  it('connects peers whose cluster id is as long as allowed', async () => {
    const clusterId = 'é'.repeat(MAX_CLUSTER_ID_BYTES / 2);
    const rb = new Recorder();
    const b = new TcpTransport({ ...base, id: 2, clusterId });
    open.push(b);
    await b.start(rb);
    const a = new TcpTransport({ ...base, clusterId, peers: { 2: b.address }, backoff: { initialMs: 10, maxMs: 100 } });
    open.push(a);
    await a.start(new Recorder());
    await until(() => {
      a.send([msg(1, 2)]);
      return rb.messages.length > 0;
    }, 'a message between nodes of a long cluster id');
  });

  it('refuses frame, queue, snapshot and connection limits that are not positive integers', () => {
    for (const k of ['maxFrameBytes', 'maxQueueBytes', 'snapshotChunkBytes', 'maxSnapshotBytes', 'maxInboundConnections', 'maxUnauthenticatedConnections']) {
      for (const v of [Number.NaN, -1, 0, 1.5, Infinity, '1024']) refused({ [k]: v }, new RegExp(`^${k} must be an integer from 1 to`));
    }
    // The length prefix of a frame says no more than 2^32 - 1.
    refused({ maxFrameBytes: 2 ** 32 }, /maxFrameBytes must be an integer from 1 to 4294967295/);
    refused({ maxSnapshotBytes: 2 ** 60 }, /maxSnapshotBytes must be an integer/);
    refused({ backoff: { initialMs: Number.NaN } }, /backoff.initialMs must be more than 0/);
    refused({ backoff: { maxMs: -5 } }, /backoff.maxMs must be more than 0/);
  });

  it('refuses malformed peers: ids that are no positive integers, itself, and addresses with a port that cannot be dialled', () => {
    for (const id of ['1.5', '0', '-2', '02', 'x', '1e3', String(2 ** 53)]) refused({ peers: { [id]: '127.0.0.1:5000' } }, /an id must be a positive integer/);
    refused({ peers: { 1: '127.0.0.1:5000' } }, /a node is not its own peer/);
    // Taken as a placeholder for an address the peer's handshake will tell, as a name without a port is, and dialled forever.
    for (const address of ['127.0.0.1:70000', ':5000', '127.0.0.1:', '127.0.0.1:5x', 5000, null]) {
      refused({ peers: { 2: address } }, /bad peer 2: want 'host:port'/);
    }
    refused({ peers: ['127.0.0.1:1'] }, /peers must be an object/);
    refused({ peers: new Map([[2, '127.0.0.1:5000']]) }, /peers must be an object/);
    refused({ peers: 'localhost:5000' }, /peers must be an object/);
  });

  it('refuses a listen address, logger, snapshot store or random source of the wrong kind', () => {
    // A raw TypeError from parseAddress.
    for (const listen of [undefined, 5, null, {}]) refused({ listen }, /listen must be a 'host:port' string/);
    // Taken without a word, to fail only when first used.
    refused({ logger: 5 }, /logger must have the methods trace, debug, info, warn, error/);
    refused({ logger: { warn: () => undefined } }, /logger must have the methods/);
    refused({ snapshots: {} }, /snapshots must have the methods open, spool/);
    refused({ random: 0.5 }, /random must be a function/);
  });

  it('refuses options it cannot read, and reads each once', () => {
    const boom = (): never => {
      throw new Error('boom');
    };
    refused({ peers: Object.defineProperty({}, '2', { enumerable: true, get: boom }) }, /the options cannot be read: boom/);
    const options = { ...base };
    Object.defineProperty(options, 'maxFrameBytes', { enumerable: true, get: boom });
    expect(() => new TcpTransport(options)).toThrow(expect.objectContaining({ code: 'TRANSPORT_BAD_OPTION' }));
    // A value that passed the check must be the one used: a getter is read once.
    let reads = 0;
    const changing = { ...base };
    Object.defineProperty(changing, 'clusterId', { enumerable: true, get: () => (reads++ === 0 ? 'c1' : 'x'.repeat(5000)) });
    const t = new TcpTransport(changing);
    expect(reads).toBe(1);
    void t.close();
  });
});
