// maxRecordBytes at the largest value open() takes: every bound it reaches, the peer frame's
// length prefix, a Buffer, the WAL's entry, holds it, without writing a record of that size.
import { constants } from 'node:buffer';
import { afterEach, expect, it } from 'vitest';
import { resolveOptions, validateOptions } from '../../src/log/options.js';
import { openPeerTransport, peerFrameBytes } from '../../src/log/peer-transport.js';
import { encodeBatches, recordOrigin } from '../../src/log/record-batch.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { MemorySnapshotStore } from '../../src/storage/snapshot-store.js';
import { FrameDecoder, MAX_FRAME_LENGTH } from '../../src/transport/frame.js';
import { ENTRY_PREFIX, MAX_PAYLOAD } from '../../src/wal/record.js';
import { RecordingLogger } from '../recording-logger.js';
import { enc, tempDir } from './helpers.js';

const MiB = 1024 * 1024;
/** The largest value the options take (MAX_PAYLOAD less a MiB), checked below against validateOptions itself. */
const LARGEST = MAX_PAYLOAD - MiB;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('the largest maxRecordBytes the options take, and one byte more refused', () => {
  expect(() => validateOptions({ dataDir: '/nowhere', maxRecordBytes: LARGEST, maxPendingBytes: LARGEST })).not.toThrow();
  expect(() => validateOptions({ dataDir: '/nowhere', maxRecordBytes: LARGEST + 1, maxPendingBytes: LARGEST + 1 })).toThrow(
    expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(new RegExp(`maxRecordBytes must be .* at most ${LARGEST}`)) }),
  );
});

it('at the largest maxRecordBytes the peer frame fits the length prefix and a Buffer, and a frame at the limit is taken, one byte over refused, neither buffered', () => {
  const frame = peerFrameBytes(LARGEST);
  expect(frame).toBeLessThanOrEqual(MAX_FRAME_LENGTH);
  expect(frame).toBeLessThanOrEqual(constants.MAX_LENGTH);
  const header = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n, 0);
    return b;
  };
  const atLimit = new FrameDecoder(frame);
  atLimit.push(header(frame));
  expect(atLimit.next()).toBeUndefined(); // waits for the payload
  const over = new FrameDecoder(frame);
  over.push(header(frame + 1));
  expect(() => over.next()).toThrow(expect.objectContaining({ code: 'TRANSPORT_FRAME_TOO_LARGE' }));
  // The transport a log opens takes that frame limit.
  const o = resolveOptions({
    dataDir: '/nowhere',
    id: 1,
    peers: { 1: '127.0.0.1:1', 2: '127.0.0.1:2' },
    insecure: true,
    maxRecordBytes: LARGEST,
    maxPendingBytes: LARGEST,
  });
  const transport = openPeerTransport(o, '127.0.0.1:0', new MemorySnapshotStore(), new RecordingLogger());
  cleanups.push(() => transport.close());
});

it('a record at the largest maxRecordBytes, in a batch of its own with the longest header, fits a WAL entry', () => {
  // The longest header: the largest node id and seq; a record of 2^30 bytes or less takes 5 bytes of length.
  const origin = recordOrigin(Number.MAX_SAFE_INTEGER, new Uint8Array(8));
  const [empty] = encodeBatches(origin, [Number.MAX_SAFE_INTEGER], [new Uint8Array(0)], MiB, []);
  const header = empty!.length - 1 + 5;
  expect(LARGEST + header).toBeLessThanOrEqual(MAX_PAYLOAD - ENTRY_PREFIX);
});

it('a node opens with the largest maxRecordBytes, appends, and closes', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const log = await ReplicatedLog.open({ dataDir: t.dir, maxRecordBytes: LARGEST, maxPendingBytes: LARGEST, sync: 'none' });
  cleanups.push(() => log.close());
  await expect(log.append(enc('small'))).resolves.toMatchObject({ index: expect.any(Number) });
});
