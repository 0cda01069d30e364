// What travels inside a frame. Messages go as positional tuples rather than maps:
// field names would otherwise be repeated in every message and every entry.
// Frames are encoded with msgpackr but read field by field (wire-reader.ts), each
// value as the field it must be: a peer's bytes are untrusted input, a wrongly
// typed field must close the connection here, not surface later as a corrupt log
// inside the raft core, and no shape the peer makes up is built on the heap first.
import { Packr } from 'msgpackr';
import { EntryType, MessageType } from '../raft/types.js';
import type { ConfState, Entry, Message, SnapshotMeta } from '../raft/types.js';
import { MalformedFrameError } from './errors.js';
import { WireReader } from './wire-reader.js';

/**
 * 2: challenge-response handshake (hello, challenge, proof) and keep-alive pings.
 * 3: the hello and the challenge carry their sender's instance id.
 */
export const WIRE_VERSION = 3;

/** An instance id's bytes on the wire (instance-id.ts in the storage layer makes them, as hex). */
export const INSTANCE_BYTES = 16;

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
  /** The dialer's instance id (INSTANCE_BYTES), if it has one. */
  instance?: Uint8Array;
}
/** The acceptor's answer to a hello: its own challenge, and its proof over both (empty without a secret). */
export interface ChallengeFrame {
  kind: 'challenge';
  nonce: Uint8Array;
  proof: Uint8Array;
  /** The acceptor's instance id (INSTANCE_BYTES), if it has one. */
  instance?: Uint8Array;
}
/** The dialer's proof over both challenges (empty without a secret); messages may follow at once. */
export interface ProofFrame {
  kind: 'proof';
  proof: Uint8Array;
}
/** Keep-alive: the dialer pings every heartbeat interval, the acceptor answers, and pongs unasked per 64 KiB it receives. */
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

export function encodeHello(p: Packr, clusterId: string, from: number, to: number, address?: string, nonce?: Uint8Array, instance?: Uint8Array): Uint8Array {
  if (instance !== undefined) return p.pack([Kind.Hello, WIRE_VERSION, clusterId, from, to, address ?? null, nonce ?? null, instance]);
  if (nonce !== undefined) return p.pack([Kind.Hello, WIRE_VERSION, clusterId, from, to, address ?? null, nonce]);
  return p.pack(address === undefined ? [Kind.Hello, WIRE_VERSION, clusterId, from, to] : [Kind.Hello, WIRE_VERSION, clusterId, from, to, address]);
}

export function encodeChallenge(p: Packr, nonce: Uint8Array, proof: Uint8Array, instance?: Uint8Array): Uint8Array {
  return p.pack(instance === undefined ? [Kind.Challenge, nonce, proof] : [Kind.Challenge, nonce, proof, instance]);
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

/**
 * The longest cluster id, in UTF-8 bytes. Every hello carries it beside the dialer's address (a
 * host name of up to 253 characters), its nonce and its instance id, all within
 * HANDSHAKE_MAX_BYTES: a longer one made every hello too large, and every handshake failed.
 */
export const MAX_CLUSTER_ID_BYTES = 256;

/** Its reason cut to fit HANDSHAKE_MAX_BYTES, the most a dialer that has not finished its handshake reads. */
export function encodeRefuse(p: Packr, code: string, reason: string): Uint8Array {
  return p.pack([Kind.Refuse, utf8Prefix(code, 64), utf8Prefix(reason, 512)]);
}

/**
 * The longest start of `s` whose UTF-8 takes at most `max` bytes, whole characters only. Cut in
 * characters, a reason of three-byte ones (a peer's cluster id, say) took three times the room.
 */
function utf8Prefix(s: string, max: number): string {
  // Every UTF-16 unit takes a byte at least: the first `max` hold all that can fit.
  const b = Buffer.from(s.slice(0, max), 'utf8');
  if (b.length <= max) return s.slice(0, max);
  let end = max;
  while ((b[end]! & 0xc0) === 0x80) end--;
  return b.toString('utf8', 0, end);
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

function packedEntries(p: Packr, entries: readonly Entry[]): Buffer {
  const tuples = new Array<unknown[]>(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    tuples[i] = [e.index, e.term, e.type, e.data];
  }
  // No copy: a packer never writes over what it returned (the next pack starts after it, or in a new buffer).
  return p.pack(tuples);
}

/** fixarray(2), Kind.Message, fixarray(12): the start of every message frame. */
const MESSAGE_HEAD = Buffer.from([0x92, Kind.Message, 0x9c]);

/**
 * A message without its snapshot (snapshots travel as chunks), as the pieces of
 * one frame's payload. A message with many entries is packed in parts, the
 * entries' part written as it is (a catch-up message is a megabyte: copying it
 * into one buffer, and again into the frame, cost as much as packing it); the
 * bytes are exactly those of packing it whole (a msgpack array is its header
 * followed by its elements).
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

/** Enough of a chunk frame's start to name its stream and offset. */
export const CHUNK_HEAD_BYTES = 24;

/**
 * The stream and offset a frame still arriving names, from its first bytes, if it is a snapshot
 * chunk: undefined for another frame, or while too little of it is here to tell. Only a hint of
 * progress: the whole frame is checked once it is here.
 */
export function chunkHead(start: Buffer): { streamId: number; offset: number } | undefined {
  const r = new WireReader(start);
  try {
    if (r.array('frame') !== 6 || r.uint('frame kind') !== Kind.SnapshotChunk) return undefined;
    return { streamId: r.uint('chunk.streamId'), offset: r.uint('chunk.offset') };
  } catch (e) {
    if (e instanceof MalformedFrameError) return undefined;
    throw e;
  }
}

export function decodeFrame(payload: Buffer): Frame {
  const r = new WireReader(payload);
  const fields = r.array('frame');
  if (fields === 0) throw new MalformedFrameError('not a tuple');
  const f = frameOf(r, r.uint('frame kind'), fields);
  r.end();
  return f;
}

function frameOf(r: WireReader, kind: number, fields: number): Frame {
  switch (kind) {
    case Kind.Hello: {
      if (fields < 6 || fields > 8) expectLength(fields, 5, 'hello');
      const hello: HelloFrame = {
        kind: 'hello',
        version: r.uint('hello.version'),
        clusterId: r.str('hello.clusterId'),
        from: r.uint('hello.from'),
        to: r.uint('hello.to'),
      };
      if (fields >= 6 && !r.nil()) hello.address = r.str('hello.address');
      if (fields >= 7 && !r.nil()) hello.nonce = r.bytes('hello.nonce');
      if (fields === 8) hello.instance = instanceField(r, 'hello.instance');
      return hello;
    }
    case Kind.Challenge: {
      if (fields !== 4) expectLength(fields, 3, 'challenge');
      const challenge: ChallengeFrame = { kind: 'challenge', nonce: r.bytes('challenge.nonce'), proof: r.bytes('challenge.proof') };
      if (fields === 4) challenge.instance = instanceField(r, 'challenge.instance');
      return challenge;
    }
    case Kind.Proof:
      expectLength(fields, 2, 'proof');
      return { kind: 'proof', proof: r.bytes('proof.proof') };
    case Kind.Ping:
    case Kind.Pong:
      expectLength(fields, 1, 'ping');
      return { kind: kind === Kind.Ping ? 'ping' : 'pong' };
    case Kind.Message: {
      expectLength(fields, 2, 'message');
      const message = decodeMessage(r);
      if (message.type === MessageType.MsgSnap) throw new MalformedFrameError('MsgSnap outside a snapshot stream');
      return { kind: 'message', message };
    }
    case Kind.SnapshotChunk: {
      expectLength(fields, 6, 'chunk');
      const frame: ChunkFrame = {
        kind: 'chunk',
        streamId: r.uint('chunk.streamId'),
        offset: r.uint('chunk.offset'),
        total: r.uint('chunk.total'),
        data: r.bytes('chunk.data'),
      };
      if (!r.nil()) {
        const n = r.array('chunk.header');
        if (n !== 8) expectLength(n, 5, 'chunk.header');
        const message = decodeMessage(r);
        if (message.type !== MessageType.MsgSnap) throw new MalformedFrameError('snapshot stream header is not a MsgSnap');
        const index = r.uint('meta.index');
        const term = r.uint('meta.term');
        const conf: ConfState = { voters: r.uints('meta.voters'), learners: r.uints('meta.learners') };
        if (n === 8) {
          // A snapshot of a joint configuration: its outgoing voters, learnersNext and autoLeave.
          const outgoing = r.uints('meta.votersOutgoing');
          const next = r.uints('meta.learnersNext');
          if (outgoing.length > 0) conf.votersOutgoing = outgoing;
          if (next.length > 0) conf.learnersNext = next;
          if (r.bool('meta.autoLeave')) conf.autoLeave = true;
        }
        frame.header = { message, meta: { index, term, conf } };
      }
      if (frame.offset + frame.data.length > frame.total) throw new MalformedFrameError('chunk runs past the snapshot end');
      return frame;
    }
    case Kind.Refuse:
      expectLength(fields, 3, 'refuse');
      return { kind: 'refuse', code: r.str('refuse.code'), reason: r.str('refuse.reason') };
    default:
      throw new MalformedFrameError(`unknown frame kind ${kind}`);
  }
}

/** The fewest bytes an entry takes: fixarray(4), three one-byte integers and an empty bin. */
const ENTRY_MIN_BYTES = 6;

function decodeMessage(r: WireReader): Message {
  r.tuple(12, 'message');
  const type = r.uint('type');
  if (!(type in MessageType)) throw new MalformedFrameError(`unknown message type ${type}`);
  const m: Message = {
    type: type as MessageType,
    to: r.uint('to'),
    from: r.uint('from'),
    term: r.uint('term'),
    logTerm: r.uint('logTerm'),
    index: r.uint('index'),
    commit: r.uint('commit'),
    reject: r.bool('reject'),
    rejectHint: r.uint('rejectHint'),
    entries: new Array<Entry>(r.array('entries', ENTRY_MIN_BYTES)),
  };
  for (let i = 0; i < m.entries.length; i++) m.entries[i] = decodeEntry(r);
  if (!r.nil()) m.rejectHintTerm = r.uint('rejectHintTerm');
  if (!r.nil()) m.context = r.bytes('context');
  return m;
}

function decodeEntry(r: WireReader): Entry {
  r.tuple(4, 'entry');
  const index = r.uint('entry.index');
  const term = r.uint('entry.term');
  const type = r.uint('entry.type');
  if (type !== EntryType.Normal && type !== EntryType.ConfChange) throw new MalformedFrameError(`unknown entry type ${type}`);
  return { index, term, type, data: r.bytes('entry.data') };
}

function instanceField(r: WireReader, what: string): Uint8Array {
  const b = r.bytes(what);
  if (b.length !== INSTANCE_BYTES) throw new MalformedFrameError(`${what} is ${b.length} bytes, expected ${INSTANCE_BYTES}`);
  return b;
}

function expectLength(got: number, n: number, what: string): void {
  if (got !== n) throw new MalformedFrameError(`${what} has ${got} fields, expected ${n}`);
}

/** The joint parts of a configuration, on the wire only when there are any: a plain one keeps the 5-field header. */
function jointTail(conf: ConfState): unknown[] {
  const out = conf.votersOutgoing ?? [];
  const next = conf.learnersNext ?? [];
  if (out.length === 0 && next.length === 0 && conf.autoLeave !== true) return [];
  return [out, next, conf.autoLeave === true];
}
