// Who may connect, and who may run commands: the password and AUTH, the throttle on an
// address's failed AUTHs, the cap on an address's connections not authenticated yet, and
// protected mode. A stranger costs the server little: it is refused early, and what it may send
// before AUTH is small (UNAUTHENTICATED_LIMITS).
import { createHash, timingSafeEqual } from 'node:crypto';
import * as net from 'node:net';
import { AuthThrottle, type AuthThrottleOptions } from '../auth-throttle.js';
import { realTimers, type RefusalLogClock } from '../refusal-log.js';
import { networkKey } from '../transport/address.js';
import { OK, type Reply } from './resp.js';

/** 127.0.0.0/8 and ::1, also in their IPv4-mapped IPv6 form. */
export function isLoopbackAddress(addr: string | undefined): boolean {
  if (addr === undefined) return false;
  const a = addr.toLowerCase().replace(/^::ffff:/, '');
  return a === '::1' || (net.isIPv4(a) && a.startsWith('127.'));
}

/** What an address's failed AUTHs and connections not authenticated are counted under: an IPv6 address's /64. */
export const addressKey = (socket: net.Socket): string => networkKey(socket.remoteAddress ?? 'an unknown address');

const digest = (s: Buffer | string): Buffer => createHash('sha256').update(s).digest();

/** Equal-length digests, so the comparison takes the same time whatever the guess. */
function passwordMatches(guess: Buffer, expected: Buffer): boolean {
  return timingSafeEqual(digest(guess), expected);
}

export const PROTECTED_MODE_ERROR = new Error(
  'DENIED raftlog is in protected mode: no password is set, so only loopback clients are served. ' +
    'Set a password (requirepass), or serve on a loopback address only, or turn protected mode off.',
);

/** Before AUTH a client can send little: AUTH default <password> needs three short arguments. */
export const UNAUTHENTICATED_LIMITS = { maxArgs: 8, maxBulkBytes: 16 * 1024, maxCommandBytes: 64 * 1024, maxInlineBytes: 16 * 1024 };
export const NOAUTH = new Error('NOAUTH Authentication required.');
const WRONGPASS = new Error('WRONGPASS invalid username-password pair or user is disabled.');
const NO_PASSWORD = new Error('ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?');
/** A connection is closed at its third wrong password (answered, like the others, with -WRONGPASS). */
export const AUTH_FAILURES_PER_CONNECTION = 3;

export interface AuthResult {
  reply: Reply;
  ok: boolean;
  wrongPassword?: boolean;
  throttled?: boolean;
}

export interface AccessOptions {
  requirepass: string | undefined;
  protectedMode: boolean | undefined;
  isLoopback: ((remoteAddress: string | undefined) => boolean) | undefined;
  /** Checked by the caller (authThrottleProblem). */
  authThrottle: AuthThrottleOptions | undefined;
  clock: RefusalLogClock | undefined;
  maxStrangersPerAddress: number;
}

/** The server's access control, shared by its connections. */
export class Access {
  /** The password's digest, or null without one: then every client is authenticated as it connects. */
  readonly password: Buffer | null;
  private readonly maxStrangersPerAddress: number;
  private readonly protectedMode: boolean;
  private readonly isLoopback: (remoteAddress: string | undefined) => boolean;
  // Closing a connection at its third wrong password bounds the guesses of a connection, not of a
  // stranger, who opens another.
  private readonly throttle: AuthThrottle;
  // Connections not authenticated yet, by address: with a password, each holds a client slot
  // for up to authTimeoutMs, and a stranger reconnecting as fast as it can took them all.
  private readonly strangersFrom = new Map<string, number>();

  constructor(o: AccessOptions) {
    this.password = o.requirepass !== undefined && o.requirepass !== '' ? digest(o.requirepass) : null;
    this.protectedMode = this.password === null && (o.protectedMode ?? true);
    this.isLoopback = o.isLoopback ?? isLoopbackAddress;
    this.throttle = new AuthThrottle(o.authThrottle ?? {}, o.clock ?? realTimers);
    this.maxStrangersPerAddress = o.maxStrangersPerAddress;
  }

  /** Whether protected mode refuses this client. */
  refusesInProtectedMode(socket: net.Socket): boolean {
    return this.protectedMode && !this.isLoopback(socket.remoteAddress);
  }

  /** The reply refusing a client whose address failed AUTH too often, or null while it may try. */
  throttled(socket: net.Socket): Error | null {
    const from = addressKey(socket);
    const wait = this.throttle.retryAfter(from);
    if (wait === 0) return null;
    return new Error(
      `ERR TOO_MANY_AUTH_FAILURES ${this.throttle.failures} failed AUTH attempts from ${from} in the last ${(2 * this.throttle.windowMs) / 1000} s at most: retry in ${wait} s`,
    );
  }

  /** A place for one more such connection from `key`, and what gives it back (once); null past the cap. */
  admitStranger(key: string): (() => void) | null {
    const n = this.strangersFrom.get(key) ?? 0;
    if (n >= this.maxStrangersPerAddress) return null;
    this.strangersFrom.set(key, n + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const left = this.strangersFrom.get(key)! - 1;
      if (left === 0) this.strangersFrom.delete(key);
      else this.strangersFrom.set(key, left);
    };
  }

  /** AUTH password, or AUTH default password (the Redis 6 form with the one user there is). */
  auth(args: Buffer[], socket: net.Socket): AuthResult {
    if (args.length < 2) return { reply: new Error("ERR wrong number of arguments for 'auth' command"), ok: false };
    if (args.length > 3) return { reply: new Error('ERR syntax error'), ok: false };
    const userOk = args.length === 2 || args[1]!.toString('latin1') === 'default';
    // Without a password the default user is Redis's nopass user: any password is its own, and
    // a client configured with one (AUTH default <password>) connects as it does to Redis.
    if (this.password === null) {
      if (args.length === 2) return { reply: NO_PASSWORD, ok: false };
      return userOk ? { reply: OK, ok: true } : { reply: WRONGPASS, ok: false };
    }
    const refused = this.throttled(socket);
    if (refused !== null) return { reply: refused, ok: false, throttled: true };
    const matches = passwordMatches(args[args.length - 1]!, this.password);
    if (userOk && matches) return { reply: OK, ok: true };
    this.throttle.fail(addressKey(socket));
    return { reply: WRONGPASS, ok: false, wrongPassword: true };
  }

  clear(): void {
    this.throttle.clear();
  }
}
