// What travels inside a frame. Messages go as positional tuples rather than maps:
// field names would otherwise be repeated in every message and every entry.
// Everything decoded is checked field by field: a peer's bytes are untrusted
// input, and a wrongly typed field must close the connection here, not
// surface later as a corrupt log inside the raft core.
import { Packr, Unpackr } from 'msgpackr';
import { EntryType, MessageType } from '../raft/types.js';
import type { ConfState, Entry, Message, SnapshotMeta } from '../raft/types.js';
import { MalformedFrameError } from './errors.js';

/** 2: challenge-response handshake (hello, challenge, proof) and keep-alive pings. */
export const WIRE_VERSION = 2;

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

export interface HelloFrame {
  kind: 'hello';
  version: number;
  clusterId: string;
  from: number;
  to: number;
  /** Where the dialer accepts connections (used only for a peer the local driver added without a dialable address). */
  address?: string;
  /** The dialer's fresh random challenge for the acceptor. */
  nonce?: Uint8Array;
}
/** The acceptor's answer to a hello: its own challenge, and its proof over both (empty without a secret). */
export interface ChallengeFrame {
  kind: 'challenge';
  nonce: Uint8Array;
  proof: Uint8Array;
}
/** The dialer's proof over both challenges (empty without a secret); messages may follow at once. */
export interface ProofFrame {
  kind: 'proof';
  proof: Uint8Array;
}
/** Keep-alive: the dialer pings every heartbeat interval, the acceptor answers. */
export interface PingFrame {
  kind: 'ping' | 'pong';
}
export interface MessageFrame {
  kind: 'message';
  message: Message;
}
/** One piece of a MsgSnap's snapshot data; the first piece (offset 0) carries the message and the metadata. */
export interface ChunkFrame {
  kind: 'chunk';
  streamId: number;
  offset: number;
  total: number;
  data: Uint8Array;
  header?: { message: Message; meta: SnapshotMeta };
}
/** Sent by the accepting side just before it closes a connection it refused. */
export interface RefuseFrame {
  kind: 'refuse';
  code: string;
  reason: string;
}
export type Frame = HelloFrame | MessageFrame | ChunkFrame | RefuseFrame | ChallengeFrame | ProofFrame | PingFrame;

/** A packer for one sender. Records (shared structures) are off: both ends must be stateless per frame. */
export function newPacker(): Packr {
  return new Packr({ useRecords: false });
}
/** An unpacker per connection, so nothing one peer sends can influence how another peer's frames decode. */
export function newUnpacker(): Unpackr {
  return new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });
}

export function encodeHello(p: Packr, clusterId: string, from: number, to: number, address?: string, nonce?: Uint8Array): Uint8Array {
  if (nonce !== undefined) return p.pack([Kind.Hello, WIRE_VERSION, clusterId, from, to, address ?? null, nonce]);
  return p.pack(address === undefined ? [Kind.Hello, WIRE_VERSION, clusterId, from, to] : [Kind.Hello, WIRE_VERSION, clusterId, from, to, address]);
}

export function encodeChallenge(p: Packr, nonce: Uint8Array, proof: Uint8Array): Uint8Array {
  return p.pack([Kind.Challenge, nonce, proof]);
}
export function encodeProof(p: Packr, proof: Uint8Array): Uint8Array {
  return p.pack([Kind.Proof, proof]);
}
export function encodePing(p: Packr, pong: boolean): Uint8Array {
  return p.pack([pong ? Kind.Pong : Kind.Ping]);
}

/**
 * The largest frame either side reads before the other has proved itself: a hello, a
 * challenge, a proof or a refusal. A stranger makes a node buffer no more than this.
 */
export const HANDSHAKE_MAX_BYTES = 1024;

/** Its reason cut to fit HANDSHAKE_MAX_BYTES, the most a dialer that has not finished its handshake reads. */
export function encodeRefuse(p: Packr, code: string, reason: string): Uint8Array {
  return p.pack([Kind.Refuse, code.slice(0, 64), reason.slice(0, 512)]);
}

function messageTuple(m: Message): unknown[] {
  const entries = new Array<unknown[]>(m.entries.length);
  for (let i = 0; i < m.entries.length; i++) {
    const e = m.entries[i]!;
    entries[i] = [e.index, e.term, e.type, e.data];
  }
  return [m.type, m.to, m.from, m.term, m.logTerm, m.index, m.commit, m.reject, m.rejectHint, entries, m.rejectHintTerm ?? null, m.context ?? null];
}

/** Below this many entries a message is packed whole: the splice below costs more than it saves. */
const SPLICE_ENTRIES = 8;

/** The last entries packed by a packer: a leader sends the same entries to every follower. */
interface PackedEntries {
  entries: readonly Entry[];
  bytes: Buffer;
}
const lastPacked = new WeakMap<Packr, PackedEntries>();

function packedEntries(p: Packr, entries: readonly Entry[]): Buffer {
  const last = lastPacked.get(p);
  // The same Entry objects in the same order are the same bytes: entries are never changed in place.
  if (last !== undefined && last.entries.length === entries.length && last.entries.every((e, i) => e === entries[i])) return last.bytes;
  const tuples = new Array<unknown[]>(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    tuples[i] = [e.index, e.term, e.type, e.data];
  }
  // No copy: a packer never writes over what it returned (the next pack starts after it, or in a new buffer).
  const bytes = p.pack(tuples);
  lastPacked.set(p, { entries: entries.slice(), bytes });
  return bytes;
}

/** fixarray(2), Kind.Message, fixarray(12): the start of every message frame. */
const MESSAGE_HEAD = Buffer.from([0x92, Kind.Message, 0x9c]);

/**
 * A message without its snapshot (snapshots travel as chunks), as the pieces of
 * one frame's payload. A message with many entries is packed in parts, the
 * entries' part shared with the other followers' copies and written as it is
 * (a catch-up message is a megabyte: copying it into one buffer, and again
 * into the frame, cost as much as packing it); the bytes are exactly those of
 * packing it whole (a msgpack array is its header followed by its elements).
 */
export function encodeMessageParts(p: Packr, m: Message): Uint8Array[] {
  if (m.entries.length < SPLICE_ENTRIES) return [p.pack([Kind.Message, messageTuple(m)])];
  // Each part packed as an array, less its one-byte fixarray header.
  const before = p.pack([m.type, m.to, m.from, m.term, m.logTerm, m.index, m.commit, m.reject, m.rejectHint]);
  const after = p.pack([m.rejectHintTerm ?? null, m.context ?? null]);
  const entries = packedEntries(p, m.entries);
  return [MESSAGE_HEAD, before.subarray(1), entries, after.subarray(1)];
}

/** A message without its snapshot, as one payload. */
export function encodeMessage(p: Packr, m: Message): Uint8Array {
  const parts = encodeMessageParts(p, m);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

export function encodeChunk(
  p: Packr,
  streamId: number,
  offset: number,
  total: number,
  data: Uint8Array,
  header?: { message: Message; meta: SnapshotMeta },
): Uint8Array {
  const h =
    header === undefined
      ? null
      : [messageTuple(header.message), header.meta.index, header.meta.term, header.meta.conf.voters, header.meta.conf.learners, ...jointTail(header.meta.conf)];
  return p.pack([Kind.SnapshotChunk, streamId, offset, total, data, h]);
}

export function decodeFrame(u: Unpackr, payload: Buffer): Frame {
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

/** The joint parts of a configuration, on the wire only when there are any: a plain one keeps the 5-field header. */
function jointTail(conf: ConfState): unknown[] {
  const out = conf.votersOutgoing ?? [];
  const next = conf.learnersNext ?? [];
  if (out.length === 0 && next.length === 0 && conf.autoLeave !== true) return [];
  return [out, next, conf.autoLeave === true];
}
