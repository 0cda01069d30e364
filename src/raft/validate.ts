// Messages come from the network: check every field before anything is
// touched, so a malformed message is refused with an error and changes nothing.
import { EntryType, MAX_INDEX, MAX_TERM, MessageType, type ConfState, type Entry, type Message, type Snapshot } from './types.js';
import { InvalidMessageError } from './errors.js';
import { checkConfState } from './changer.js';

// Enum members as locals: under tsx and vitest each `Enum.Member` access is a module getter call on the hot path.
const {
  MsgApp,
  MsgBeat,
  MsgCheckQuorum,
  MsgHup,
  MsgPreVote,
  MsgPreVoteResp,
  MsgProp,
  MsgVote,
  MsgReadIndex,
  MsgReadIndexResp,
  MsgSnap,
  MsgSnapStatus,
  MsgTransferLeader,
  MsgUnreachable,
} = MessageType;
const { ConfChange: EntryConfChange, Normal: EntryNormal } = EntryType;

const MAX_TYPE = MsgPreVoteResp;
const NUMERIC_FIELDS = ['to', 'from', 'term', 'logTerm', 'index', 'commit', 'rejectHint'] as const;

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function checkIndex(o: Record<string, unknown>, field: string, where: string): void {
  if (!isIndex(o[field])) throw new InvalidMessageError(`${where}.${field} must be a non-negative integer, got ${describe(o[field])}`);
}

function describe(v: unknown): string {
  if (v === undefined) return 'undefined (missing)';
  if (v === null) return 'null';
  if (typeof v === 'object') return Array.isArray(v) ? 'an array' : 'an object';
  return `${typeof v} ${String(v)}`;
}

function checkIds(v: unknown, where: string): void {
  if (!Array.isArray(v)) throw new InvalidMessageError(`${where} must be an array of node ids`);
  for (const id of v) if (!isIndex(id) || id === 0) throw new InvalidMessageError(`${where} holds an invalid node id ${describe(id)}`);
}

export function validateSnapshot(s: unknown, where = 'snapshot'): asserts s is Snapshot {
  if (typeof s !== 'object' || s === null) throw new InvalidMessageError(`${where} must be an object`);
  const snap = s as Record<string, unknown>;
  if (!(snap.data instanceof Uint8Array)) throw new InvalidMessageError(`${where}.data must be a Uint8Array`);
  const meta = snap.meta as Record<string, unknown> | undefined;
  if (typeof meta !== 'object' || meta === null) throw new InvalidMessageError(`${where}.meta must be an object`);
  checkIndex(meta, 'index', `${where}.meta`);
  checkIndex(meta, 'term', `${where}.meta`);
  if ((meta.index as number) > MAX_INDEX || (meta.term as number) > MAX_TERM)
    throw new InvalidMessageError(`${where}.meta index or term above the limit ${MAX_TERM}`);
  const conf = meta.conf as Record<string, unknown> | undefined;
  if (typeof conf !== 'object' || conf === null) throw new InvalidMessageError(`${where}.meta.conf must be an object`);
  checkIds(conf.voters, `${where}.meta.conf.voters`);
  checkIds(conf.learners, `${where}.meta.conf.learners`);
  if (conf.votersOutgoing !== undefined) checkIds(conf.votersOutgoing, `${where}.meta.conf.votersOutgoing`);
  if (conf.learnersNext !== undefined) checkIds(conf.learnersNext, `${where}.meta.conf.learnersNext`);
  if (conf.autoLeave !== undefined && typeof conf.autoLeave !== 'boolean') throw new InvalidMessageError(`${where}.meta.conf.autoLeave must be a boolean`);
  try {
    checkConfState(conf as unknown as ConfState);
  } catch (e) {
    throw new InvalidMessageError(`${where}.meta.conf: ${(e as Error).message}`);
  }
}

/**
 * With `log` (a MsgApp), entries must extend (prevIndex, prevTerm) as a log
 * does: consecutive indexes, terms never decreasing and never above the
 * sender's term. The core relies on that shape (e.g. binary search by term).
 */
function validateEntries(v: unknown, log: { prevIndex: number; prevTerm: number; term: number } | undefined): asserts v is Entry[] {
  if (!Array.isArray(v)) throw new InvalidMessageError(`entries must be an array, got ${describe(v)}`);
  let lastTerm = log === undefined ? 0 : log.prevTerm;
  for (let i = 0; i < v.length; i++) {
    const e = v[i] as Record<string, unknown>;
    if (typeof e !== 'object' || e === null) throw new InvalidMessageError(`entries[${i}] must be an object`);
    if (!isIndex(e.index) || !isIndex(e.term)) throw new InvalidMessageError(`entries[${i}] index and term must be non-negative integers`);
    if (e.index > MAX_INDEX || e.term > MAX_TERM) throw new InvalidMessageError(`entries[${i}] index or term above the limit ${MAX_TERM}`);
    if (e.type !== EntryNormal && e.type !== EntryConfChange) throw new InvalidMessageError(`entries[${i}].type ${describe(e.type)} is unknown`);
    if (!(e.data instanceof Uint8Array)) throw new InvalidMessageError(`entries[${i}].data must be a Uint8Array`);
    if (log === undefined) continue;
    if (e.index !== log.prevIndex + 1 + i) throw new InvalidMessageError(`entries[${i}] has index ${e.index}, expected ${log.prevIndex + 1 + i}`);
    if (e.term === 0 || e.term < lastTerm || e.term > log.term) {
      throw new InvalidMessageError(`entries[${i}] has term ${e.term}; terms must not decrease (previous ${lastTerm}) nor exceed the message term ${log.term}`);
    }
    lastTerm = e.term;
  }
}

/** Throws InvalidMessageError unless `m` is a well-formed message addressed to `self`. */
export function validateMessage(m: unknown, self: number): asserts m is Message {
  if (typeof m !== 'object' || m === null) throw new InvalidMessageError(`message must be an object, got ${describe(m)}`);
  const o = m as Record<string, unknown>;
  const t = o.type;
  if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > MAX_TYPE) throw new InvalidMessageError(`unknown message type ${describe(t)}`);
  if (!isIndex(o.to) || !isIndex(o.from) || !isIndex(o.term) || !isIndex(o.logTerm) || !isIndex(o.index) || !isIndex(o.commit) || !isIndex(o.rejectHint)) {
    for (const f of NUMERIC_FIELDS) checkIndex(o, f, 'message'); // names the offending field
  }
  // Checked before anything else about the message matters: a term at the edge of the safe
  // integers would be adopted and persisted, and no node could ever move past it.
  if (
    (o.term as number) > MAX_TERM ||
    (o.logTerm as number) > MAX_TERM ||
    (o.rejectHint as number) > MAX_INDEX ||
    (o.index as number) > MAX_INDEX ||
    (o.commit as number) > MAX_INDEX
  ) {
    throw new InvalidMessageError(`term or index above the limit ${MAX_TERM}`);
  }
  if (o.rejectHintTerm !== undefined && (o.rejectHintTerm as number) > MAX_TERM) throw new InvalidMessageError(`rejectHintTerm above the limit ${MAX_TERM}`);
  if (o.to !== self) throw new InvalidMessageError(`message addressed to ${String(o.to)} stepped into node ${self}`);
  if (typeof o.reject !== 'boolean') throw new InvalidMessageError(`message.reject must be a boolean, got ${describe(o.reject)}`);
  if (o.rejectHintTerm !== undefined && !isIndex(o.rejectHintTerm)) throw new InvalidMessageError('message.rejectHintTerm must be a non-negative integer');
  if (o.context !== undefined && !(o.context instanceof Uint8Array)) throw new InvalidMessageError('message.context must be a Uint8Array');
  const type = t as MessageType;
  const isApp = type === MsgApp;
  validateEntries(o.entries, isApp ? { prevIndex: o.index as number, prevTerm: o.logTerm as number, term: o.term as number } : undefined);
  if ((isApp || type === MsgVote || type === MsgPreVote) && (o.logTerm as number) > (o.term as number)) {
    throw new InvalidMessageError(`logTerm ${String(o.logTerm)} is above the message term ${String(o.term)}`);
  }
  if (type === MsgSnap) validateSnapshot(o.snapshot, 'message.snapshot');
  else if (o.snapshot !== undefined) validateSnapshot(o.snapshot, 'message.snapshot');
  if (type === MsgProp && (o.entries as Entry[]).length === 0) throw new InvalidMessageError('MsgProp without entries');
  if ((type === MsgReadIndex || type === MsgReadIndexResp) && o.context === undefined) {
    throw new InvalidMessageError('read index messages need a context');
  }
  if (type === MsgReadIndexResp && o.reject === true && o.index !== 0) throw new InvalidMessageError('a refused read carries no read index');
  // Everything but local messages and forwarded requests carries the sender's term.
  const termless =
    type === MsgHup ||
    type === MsgBeat ||
    type === MsgProp ||
    type === MsgUnreachable ||
    type === MsgSnapStatus ||
    type === MsgCheckQuorum ||
    type === MsgTransferLeader ||
    type === MsgReadIndex;
  if (!termless && o.term === 0) throw new InvalidMessageError(`message type ${type} needs a term`);
  if (o.from === 0 && type !== MsgHup && type !== MsgBeat && type !== MsgCheckQuorum) {
    throw new InvalidMessageError(`message type ${type} needs a sender`);
  }
}
