import { describe, expect, it } from 'vitest';
import { EntryType, MessageType } from '../../src/raft/types.js';
import { MalformedFrameError } from '../../src/transport/errors.js';
import { decodeFrame, encodeChunk, encodeHello, encodeMessage, newPacker, newUnpacker } from '../../src/transport/wire.js';
import { msg, seeded, testSeed } from './helpers.js';
import { nextTurn } from '../setup/next-turn.js';

describe('wire', () => {
  const p = newPacker();
  const valid = [
    encodeHello(p, 'cluster', 1, 2),
    encodeMessage(
      p,
      msg(1, 2, {
        type: MessageType.MsgApp,
        context: new Uint8Array([1]),
        rejectHintTerm: 4,
        entries: [{ index: 5, term: 2, type: EntryType.ConfChange, data: new Uint8Array([1, 2]) }],
      }),
    ),
    encodeChunk(p, 3, 0, 10, new Uint8Array(4), {
      message: msg(1, 2, { type: MessageType.MsgSnap }),
      meta: { index: 9, term: 2, conf: { voters: [1, 2], learners: [3] } },
    }),
  ].map((b) => Buffer.from(b));

  it('decodes what it encodes', () => {
    const u = newUnpacker();
    expect(decodeFrame(u, valid[0]!)).toEqual({ kind: 'hello', version: 2, clusterId: 'cluster', from: 1, to: 2 });
    const m = decodeFrame(u, valid[1]!);
    expect(m.kind === 'message' && m.message.entries[0]).toEqual({ index: 5, term: 2, type: EntryType.ConfChange, data: Buffer.from([1, 2]) });
    const c = decodeFrame(u, valid[2]!);
    expect(c.kind === 'chunk' && c.header?.meta).toEqual({ index: 9, term: 2, conf: { voters: [1, 2], learners: [3] } });
    expect(decodeFrame(u, Buffer.from(encodeHello(p, 'cluster', 1, 2, '127.0.0.1:7101')))).toEqual({
      kind: 'hello',
      version: 2,
      clusterId: 'cluster',
      from: 1,
      to: 2,
      address: '127.0.0.1:7101',
    });
  });

  it('throws only MalformedFrameError on random and mutated bytes (seeded fuzz)', async () => {
    const seed = testSeed('wire fuzz');
    const random = seeded(seed);
    const u = newUnpacker();
    let rejected = 0;
    for (let i = 0; i < 5_000; i++) {
      if (i % 500 === 0) await nextTurn();
      let bytes: Buffer;
      if (i % 2 === 0) {
        bytes = Buffer.from(Array.from({ length: Math.floor(random() * 40) }, () => Math.floor(random() * 256)));
      } else {
        bytes = Buffer.from(valid[i % valid.length]!);
        const flips = 1 + Math.floor(random() * 3);
        for (let f = 0; f < flips; f++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      }
      try {
        decodeFrame(u, bytes);
      } catch (e) {
        if (!(e instanceof MalformedFrameError)) throw new Error(`seed ${seed} case ${i}: ${bytes.toString('hex')} threw ${String(e)}`);
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(2_500);
  });
});
