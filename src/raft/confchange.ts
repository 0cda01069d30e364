// The wire form of membership changes carried in ConfChange entries. Two
// encodings share the entry type and are told apart by their first byte:
// format 1, one change (what single-step changes have always written), and
// format 2, a ConfChangeV2 (several changes, a transition). Both stay readable.
import { ConfChangeType, type ConfChange, type ConfChangeV2 } from './types.js';
import { InvalidConfChangeError } from './errors.js';

const FORMAT_V1 = 1;
const HEADER_V1 = 10; // format u8, type u8, node id f64

const FORMAT_V2 = 2;
const HEADER_V2 = 4; // format u8, transition u8, count u16
const CHANGE_HEAD = 13; // type u8, node id f64, context length u32
/** More changes than any cluster has members; bounds what a hostile entry can make the decoder build. */
export const MAX_CHANGES = 1024;

const TRANSITIONS = ['auto', 'explicit'] as const;

/** The bytes of a single-change ConfChange entry's data (format 1). */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  validateConfChange(cc);
  const ctx = cc.context ?? new Uint8Array(0);
  const out = new Uint8Array(HEADER_V1 + ctx.byteLength);
  const view = new DataView(out.buffer);
  view.setUint8(0, FORMAT_V1);
  view.setUint8(1, cc.type);
  view.setFloat64(2, cc.nodeId, true);
  out.set(ctx, HEADER_V1);
  return out;
}

/** Decodes a single-change entry (format 1); throws InvalidConfChangeError on anything else. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  if (!(data instanceof Uint8Array) || data.byteLength < HEADER_V1) throw new InvalidConfChangeError('entry data too short');
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (view.getUint8(0) !== FORMAT_V1) throw new InvalidConfChangeError(`unknown encoding ${view.getUint8(0)}`);
  const cc: ConfChange = { type: view.getUint8(1) as ConfChangeType, nodeId: view.getFloat64(2, true) };
  if (data.byteLength > HEADER_V1) cc.context = data.slice(HEADER_V1);
  validateConfChange(cc);
  return cc;
}

/** The bytes of a ConfChangeV2 entry's data (format 2). */
export function encodeConfChangeV2(cc: ConfChangeV2): Uint8Array {
  validateConfChangeV2(cc);
  let size = HEADER_V2;
  for (const c of cc.changes) size += CHANGE_HEAD + (c.context?.byteLength ?? 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint8(0, FORMAT_V2);
  view.setUint8(1, TRANSITIONS.indexOf(cc.transition));
  view.setUint16(2, cc.changes.length, true);
  let at = HEADER_V2;
  for (const c of cc.changes) {
    const ctx = c.context ?? new Uint8Array(0);
    view.setUint8(at, c.type);
    view.setFloat64(at + 1, c.nodeId, true);
    view.setUint32(at + 9, ctx.byteLength, true);
    out.set(ctx, at + CHANGE_HEAD);
    at += CHANGE_HEAD + ctx.byteLength;
  }
  return out;
}

/**
 * Decodes the data of any ConfChange entry (format 1 or 2) as a ConfChangeV2: a
 * single change becomes `{ transition: 'auto', changes: [cc] }`, which applies
 * exactly as it always did. Throws InvalidConfChangeError on anything malformed.
 */
export function decodeConfChangeEntry(data: Uint8Array): ConfChangeV2 {
  if (!(data instanceof Uint8Array) || data.byteLength < 1) throw new InvalidConfChangeError('entry data too short');
  if (data[0] === FORMAT_V1) return { transition: 'auto', changes: [decodeConfChange(data)] };
  if (data[0] !== FORMAT_V2) throw new InvalidConfChangeError(`unknown encoding ${data[0]}`);
  if (data.byteLength < HEADER_V2) throw new InvalidConfChangeError('entry data too short');
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const transition = TRANSITIONS[view.getUint8(1)];
  if (transition === undefined) throw new InvalidConfChangeError(`unknown transition ${view.getUint8(1)}`);
  const count = view.getUint16(2, true);
  if (count > MAX_CHANGES) throw new InvalidConfChangeError(`${count} changes, more than ${MAX_CHANGES}`);
  const changes: ConfChange[] = [];
  let at = HEADER_V2;
  for (let i = 0; i < count; i++) {
    if (at + CHANGE_HEAD > data.byteLength) throw new InvalidConfChangeError(`change ${i} runs past the entry's end`);
    const c: ConfChange = { type: view.getUint8(at) as ConfChangeType, nodeId: view.getFloat64(at + 1, true) };
    const len = view.getUint32(at + 9, true);
    at += CHANGE_HEAD;
    if (len > data.byteLength - at) throw new InvalidConfChangeError(`change ${i}'s context runs past the entry's end`);
    if (len > 0) c.context = data.slice(at, at + len);
    at += len;
    changes.push(c);
  }
  if (at !== data.byteLength) throw new InvalidConfChangeError(`${data.byteLength - at} bytes after the last change`);
  const cc: ConfChangeV2 = { transition, changes };
  validateConfChangeV2(cc);
  return cc;
}

export function validateConfChange(cc: ConfChange): void {
  if (typeof cc !== 'object' || cc === null) throw new InvalidConfChangeError('not an object');
  if (cc.type !== ConfChangeType.AddNode && cc.type !== ConfChangeType.RemoveNode && cc.type !== ConfChangeType.AddLearnerNode) {
    throw new InvalidConfChangeError(`unknown type ${String(cc.type)}`);
  }
  if (!Number.isSafeInteger(cc.nodeId) || cc.nodeId <= 0) throw new InvalidConfChangeError(`node id must be a positive integer, got ${String(cc.nodeId)}`);
  if (cc.context !== undefined && !(cc.context instanceof Uint8Array)) throw new InvalidConfChangeError('context must be a Uint8Array');
  if (cc.context !== undefined && cc.context.byteLength > 0xffff_ffff) throw new InvalidConfChangeError('context too large');
}

/** Shape checks that need no configuration: known transition, valid changes, each node named once. */
export function validateConfChangeV2(cc: ConfChangeV2): void {
  if (typeof cc !== 'object' || cc === null) throw new InvalidConfChangeError('not an object');
  if (!TRANSITIONS.includes(cc.transition)) throw new InvalidConfChangeError(`unknown transition ${String(cc.transition)}`);
  if (!Array.isArray(cc.changes)) throw new InvalidConfChangeError('changes must be an array');
  if (cc.changes.length > MAX_CHANGES) throw new InvalidConfChangeError(`${cc.changes.length} changes, more than ${MAX_CHANGES}`);
  const seen = new Set<number>();
  for (const c of cc.changes) {
    validateConfChange(c);
    if (seen.has(c.nodeId)) throw new InvalidConfChangeError(`node ${c.nodeId} is named twice in one change`);
    seen.add(c.nodeId);
  }
}

/** Whether `cc` is a ConfChangeV2 (rather than a single change). */
export function isConfChangeV2(cc: ConfChange | ConfChangeV2): cc is ConfChangeV2 {
  return typeof cc === 'object' && cc !== null && Array.isArray((cc as ConfChangeV2).changes);
}

/** The entry data for either kind of change: single changes keep format 1. */
export function encodeAnyConfChange(cc: ConfChange | ConfChangeV2): Uint8Array {
  return isConfChangeV2(cc) ? encodeConfChangeV2(cc) : encodeConfChange(cc);
}
