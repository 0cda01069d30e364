// The frame decoder as it was before frames were read field by field: msgpackr's
// unpack, then each field checked. Kept only to hold the field-by-field reader to
// the same answers on the same bytes.
import { Unpackr } from 'msgpackr';
import { EntryType, MessageType } from '../../src/raft/types.js';
import type { ConfState, Entry, Message } from '../../src/raft/types.js';
import { MalformedFrameError } from '../../src/transport/errors.js';
import type { ChunkFrame, Frame, HelloFrame } from '../../src/transport/wire.js';

const enum Kind {
  Hello = 0,
  Message = 1,
  SnapshotChunk = 2,
  Refuse = 3,
  Challenge = 4,
  Proof = 5,
  Ping = 6,
  Pong = 7,
}

export function newUnpacker(): Unpackr {
  return new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });
}

export function decodeFrameUnpacked(u: Unpackr, payload: Buffer): Frame {
  let v: unknown;
  try {
    v = u.unpack(payload);
  } catch (e) {
    throw new MalformedFrameError(`not msgpack (${e instanceof Error ? e.message : typeof e})`);
  }
  try {
    return frameOf(v);
  } catch (e) {
    // The value is the peer's: whatever it makes a check throw (a map decoded into an object
    // whose own toString is not a function defeats String(), say) is a malformed frame, never
    // an exception that escapes the socket's handler and ends the process.
    if (e instanceof MalformedFrameError) throw e;
    throw new MalformedFrameError(`undecodable (${e instanceof Error ? e.message : typeof e})`);
  }
}

function frameOf(v: unknown): Frame {
  if (!Array.isArray(v) || v.length === 0) throw new MalformedFrameError('not a tuple');
  switch (v[0]) {
    case Kind.Hello: {
      if (v.length !== 6 && v.length !== 7) expectLength(v, 5, 'hello');
      const hello: HelloFrame = {
        kind: 'hello',
        version: uint(v[1], 'hello.version'),
        clusterId: str(v[2], 'hello.clusterId'),
        from: uint(v[3], 'hello.from'),
        to: uint(v[4], 'hello.to'),
      };
      if (v.length >= 6 && v[5] !== null) hello.address = str(v[5], 'hello.address');
      if (v.length === 7) hello.nonce = bytes(v[6], 'hello.nonce');
      return hello;
    }
    case Kind.Challenge:
      expectLength(v, 3, 'challenge');
      return { kind: 'challenge', nonce: bytes(v[1], 'challenge.nonce'), proof: bytes(v[2], 'challenge.proof') };
    case Kind.Proof:
      expectLength(v, 2, 'proof');
      return { kind: 'proof', proof: bytes(v[1], 'proof.proof') };
    case Kind.Ping:
    case Kind.Pong:
      expectLength(v, 1, 'ping');
      return { kind: v[0] === Kind.Ping ? 'ping' : 'pong' };
    case Kind.Message: {
      expectLength(v, 2, 'message');
      const message = decodeMessage(v[1]);
      if (message.type === MessageType.MsgSnap) throw new MalformedFrameError('MsgSnap outside a snapshot stream');
      return { kind: 'message', message };
    }
    case Kind.SnapshotChunk: {
      expectLength(v, 6, 'chunk');
      const frame: ChunkFrame = {
        kind: 'chunk',
        streamId: uint(v[1], 'chunk.streamId'),
        offset: uint(v[2], 'chunk.offset'),
        total: uint(v[3], 'chunk.total'),
        data: bytes(v[4], 'chunk.data'),
      };
      if (v[5] !== null) {
        const h = v[5];
        if (!Array.isArray(h)) throw new MalformedFrameError('chunk.header is not a tuple');
        if (h.length !== 8) expectLength(h, 5, 'chunk.header');
        const message = decodeMessage(h[0]);
        if (message.type !== MessageType.MsgSnap) throw new MalformedFrameError('snapshot stream header is not a MsgSnap');
        const conf: ConfState = { voters: ids(h[3], 'meta.voters'), learners: ids(h[4], 'meta.learners') };
        if (h.length === 8) {
          // A snapshot of a joint configuration: its outgoing voters, learnersNext and autoLeave.
          const outgoing = ids(h[5], 'meta.votersOutgoing');
          const next = ids(h[6], 'meta.learnersNext');
          if (typeof h[7] !== 'boolean') throw new MalformedFrameError('meta.autoLeave is not a boolean');
          if (outgoing.length > 0) conf.votersOutgoing = outgoing;
          if (next.length > 0) conf.learnersNext = next;
          if (h[7]) conf.autoLeave = true;
        }
        frame.header = { message, meta: { index: uint(h[1], 'meta.index'), term: uint(h[2], 'meta.term'), conf } };
      }
      if (frame.offset + frame.data.length > frame.total) throw new MalformedFrameError('chunk runs past the snapshot end');
      return frame;
    }
    case Kind.Refuse:
      expectLength(v, 3, 'refuse');
      return { kind: 'refuse', code: str(v[1], 'refuse.code'), reason: str(v[2], 'refuse.reason') };
    default:
      throw new MalformedFrameError(`unknown frame kind ${typeof v[0] === 'number' ? v[0] : typeof v[0]}`);
  }
}

function decodeMessage(t: unknown): Message {
  if (!Array.isArray(t)) throw new MalformedFrameError('message is not a tuple');
  expectLength(t, 12, 'message');
  const type = uint(t[0], 'type');
  if (!(type in MessageType)) throw new MalformedFrameError(`unknown message type ${type}`);
  const rawEntries = t[9];
  if (!Array.isArray(rawEntries)) throw new MalformedFrameError('entries is not an array');
  const entries = new Array<Entry>(rawEntries.length);
  for (let i = 0; i < rawEntries.length; i++) entries[i] = decodeEntry(rawEntries[i]);
  if (typeof t[7] !== 'boolean') throw new MalformedFrameError('reject is not a boolean');
  const m: Message = {
    type: type as MessageType,
    to: uint(t[1], 'to'),
    from: uint(t[2], 'from'),
    term: uint(t[3], 'term'),
    logTerm: uint(t[4], 'logTerm'),
    index: uint(t[5], 'index'),
    commit: uint(t[6], 'commit'),
    reject: t[7],
    rejectHint: uint(t[8], 'rejectHint'),
    entries,
  };
  if (t[10] !== null) m.rejectHintTerm = uint(t[10], 'rejectHintTerm');
  if (t[11] !== null) m.context = bytes(t[11], 'context');
  return m;
}

function decodeEntry(t: unknown): Entry {
  if (!Array.isArray(t) || t.length !== 4) throw new MalformedFrameError('entry is not a 4-tuple');
  const type = uint(t[2], 'entry.type');
  if (type !== EntryType.Normal && type !== EntryType.ConfChange) throw new MalformedFrameError(`unknown entry type ${type}`);
  return { index: uint(t[0], 'entry.index'), term: uint(t[1], 'entry.term'), type, data: bytes(t[3], 'entry.data') };
}

function expectLength(v: unknown[], n: number, what: string): void {
  if (v.length !== n) throw new MalformedFrameError(`${what} has ${v.length} fields, expected ${n}`);
}
function uint(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new MalformedFrameError(`${field} is not a non-negative integer`);
  return v;
}
function str(v: unknown, field: string): string {
  if (typeof v !== 'string') throw new MalformedFrameError(`${field} is not a string`);
  return v;
}
function bytes(v: unknown, field: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new MalformedFrameError(`${field} is not binary`);
  return v;
}
function ids(v: unknown, field: string): number[] {
  if (!Array.isArray(v)) throw new MalformedFrameError(`${field} is not an array`);
  return v.map((x) => uint(x, field));
}
