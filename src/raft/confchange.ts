// Single-step membership changes (add/remove a voter, add a learner): the
// wire form carried in a ConfChange entry, and the new configuration it yields.
import { ConfChangeType, type ConfChange, type ConfState } from './types.js';
import { InvalidConfChangeError } from './errors.js';

const FORMAT = 1;
const HEADER = 10; // format u8, type u8, node id f64

/** The bytes of a ConfChange entry's data. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  validateConfChange(cc);
  const ctx = cc.context ?? new Uint8Array(0);
  const out = new Uint8Array(HEADER + ctx.byteLength);
  const view = new DataView(out.buffer);
  view.setUint8(0, FORMAT);
  view.setUint8(1, cc.type);
  view.setFloat64(2, cc.nodeId, true);
  out.set(ctx, HEADER);
  return out;
}

/** Decodes a ConfChange entry's data; throws InvalidConfChangeError on anything else. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  if (!(data instanceof Uint8Array) || data.byteLength < HEADER) throw new InvalidConfChangeError('entry data too short');
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (view.getUint8(0) !== FORMAT) throw new InvalidConfChangeError(`unknown encoding ${view.getUint8(0)}`);
  const cc: ConfChange = { type: view.getUint8(1) as ConfChangeType, nodeId: view.getFloat64(2, true) };
  if (data.byteLength > HEADER) cc.context = data.slice(HEADER);
  validateConfChange(cc);
  return cc;
}

export function validateConfChange(cc: ConfChange): void {
  if (typeof cc !== 'object' || cc === null) throw new InvalidConfChangeError('not an object');
  if (cc.type !== ConfChangeType.AddNode && cc.type !== ConfChangeType.RemoveNode && cc.type !== ConfChangeType.AddLearnerNode) {
    throw new InvalidConfChangeError(`unknown type ${String(cc.type)}`);
  }
  if (!Number.isSafeInteger(cc.nodeId) || cc.nodeId <= 0) throw new InvalidConfChangeError(`node id must be a positive integer, got ${String(cc.nodeId)}`);
  if (cc.context !== undefined && !(cc.context instanceof Uint8Array)) throw new InvalidConfChangeError('context must be a Uint8Array');
}

/**
 * The configuration after `cc`. Re-adding what is already there is a no-op;
 * a change that would remove the last voter is refused, because nothing could
 * ever commit again.
 */
export function applyToConfState(cs: ConfState, cc: ConfChange): ConfState {
  validateConfChange(cc);
  const voters = cs.voters.filter((id) => id !== cc.nodeId);
  const learners = cs.learners.filter((id) => id !== cc.nodeId);
  switch (cc.type) {
    case ConfChangeType.AddNode:
      voters.push(cc.nodeId);
      break;
    case ConfChangeType.AddLearnerNode:
      learners.push(cc.nodeId);
      break;
    case ConfChangeType.RemoveNode:
      break;
  }
  // A node that starts with no configuration (it learns it from the log) may pass through voterless states.
  if (voters.length === 0 && cs.voters.length > 0) throw new InvalidConfChangeError(`removing node ${cc.nodeId} would leave no voters`);
  voters.sort((a, b) => a - b);
  learners.sort((a, b) => a - b);
  return { voters, learners };
}
