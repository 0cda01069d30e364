// Peer authentication. With a shared cluster secret, both ends of a connection
// prove they hold it: each sends a fresh random nonce, and each answers with an
// HMAC-SHA256 over both nonces, the cluster id, both node ids, both instance ids,
// the wire version and its role. The secret never crosses the wire, a recorded handshake cannot be
// replayed (the other side's nonce is new), and a proof cannot be reflected back
// (the role is in it). With mutual TLS, the certificate names the node id instead.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { BadOptionError } from './errors.js';

export type Secret = string | Buffer;

export const NONCE_BYTES = 32;
export const MIN_SECRET_BYTES = 16;

export interface HandshakeFacts {
  version: number;
  clusterId: string;
  dialer: number;
  acceptor: number;
  dialerNonce: Uint8Array;
  acceptorNonce: Uint8Array;
  /** Each side's instance id as it travelled (none: empty), so a proof holds only for the instances it names. */
  dialerInstance?: Uint8Array;
  acceptorInstance?: Uint8Array;
}

/** The secrets as buffers, the one to prove with first; throws on a weak or missing one. */
export function normalizeSecrets(s: Secret | Secret[] | undefined): Buffer[] {
  if (s === undefined) return [];
  const list = (Array.isArray(s) ? s : [s]).map((x) => (typeof x === 'string' ? Buffer.from(x, 'utf8') : x));
  if (list.length === 0) throw new BadOptionError('clusterSecret is an empty list');
  for (const b of list) {
    if (!Buffer.isBuffer(b) || b.length < MIN_SECRET_BYTES) throw new BadOptionError(`every clusterSecret must be at least ${MIN_SECRET_BYTES} bytes`);
  }
  return list;
}

export function nonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

function f64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(n);
  return b;
}

export function proof(secret: Buffer, role: 'dialer' | 'acceptor', f: HandshakeFacts): Buffer {
  const h = createHmac('sha256', secret);
  const cluster = Buffer.from(f.clusterId, 'utf8');
  // Lengths before variable fields, so no two fact lists hash the same bytes.
  h.update(`raftlog-handshake/${role}\n`);
  h.update(f64(f.version)).update(f64(f.dialer)).update(f64(f.acceptor));
  h.update(f64(cluster.length)).update(cluster);
  h.update(f64(f.dialerNonce.length)).update(f.dialerNonce);
  h.update(f64(f.acceptorNonce.length)).update(f.acceptorNonce);
  const none = new Uint8Array(0);
  h.update(f64(f.dialerInstance?.length ?? 0)).update(f.dialerInstance ?? none);
  h.update(f64(f.acceptorInstance?.length ?? 0)).update(f.acceptorInstance ?? none);
  return h.digest();
}

/**
 * The one of `secrets` that `got` proves knowledge of, if any (during a rotation, old and new
 * verify): the connection keeps it, so that it is closed once a rotation drops that secret.
 */
export function verify(secrets: Buffer[], role: 'dialer' | 'acceptor', f: HandshakeFacts, got: Uint8Array): Buffer | undefined {
  let proven: Buffer | undefined;
  for (const s of secrets) {
    const want = proof(s, role, f);
    if (got.length === want.length && timingSafeEqual(want, got)) proven = s;
  }
  return proven;
}

/** Whether `secret` is still one of `secrets` (a reload builds new buffers: compared by content). */
export function holds(secrets: Buffer[], secret: Buffer): boolean {
  return secrets.some((s) => s.equals(secret));
}

const URI_PREFIX = 'raftlog://node/';

/** The node ids a certificate names in its SAN URIs (`raftlog://node/<id>`). */
export function certNodeIds(cert: Pick<PeerCertificate, 'subjectaltname'> | undefined): number[] {
  const san = cert?.subjectaltname;
  if (typeof san !== 'string') return [];
  const ids: number[] = [];
  for (const part of san.split(',')) {
    const p = part.trim();
    if (!p.startsWith(`URI:${URI_PREFIX}`)) continue;
    const rest = p.slice(4 + URI_PREFIX.length);
    if (!/^[1-9][0-9]{0,15}$/.test(rest)) continue;
    const id = Number(rest);
    if (Number.isSafeInteger(id)) ids.push(id);
  }
  return ids;
}
