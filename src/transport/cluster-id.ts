import { MAX_CLUSTER_ID_BYTES } from './wire.js';

/** What a cluster id must be, as every refusal of one says. */
export const CLUSTER_ID_RULE = `a non-empty string of at most ${MAX_CLUSTER_ID_BYTES} UTF-8 bytes, not blank and without control characters`;

/**
 * Nodes compare cluster ids byte for byte. A blank one, or one holding a control character (a
 * tab or line end pasted with it), names no cluster an operator could give again on the next
 * node: that node would refuse its peers as of another cluster, over a difference no log line
 * shows. Over MAX_CLUSTER_ID_BYTES, every hello was too large for a peer to read.
 */
export function isClusterId(v: unknown): v is string {
  return typeof v === 'string' && v.trim() !== '' && !/\p{Cc}/u.test(v) && Buffer.byteLength(v, 'utf8') <= MAX_CLUSTER_ID_BYTES;
}
