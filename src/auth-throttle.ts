// Failed authentications counted by client address, so that a stranger guesses a token or a
// password at a bounded rate however many connections and requests it makes. A leaf module,
// shared by the admin endpoint and the RESP server: it imports nothing, taking a clock's
// `setTimeout` by its shape (src/refusal-log.ts's RefusalLogClock has it).
//
// Failures are counted in windows: one generation for the window under way, one for the window
// before, and every `windowMs` the older is dropped. An address is refused while its failures in
// the two reach the limit, so a failure is remembered for one to two windows, and the table,
// capped in entries, empties itself without a timer per address. A refused attempt is not
// checked, so it is neither a guess nor a failure: the address is let in again once its
// failures fall out of the windows.

/** A timer shaped as RefusalLogClock's: calls fn once after ms, returns a function that cancels it. */
export interface AuthThrottleClock {
  setTimeout(fn: () => void, ms: number): () => void;
}

export interface AuthThrottleOptions {
  /** Failed attempts from one address after which its attempts are refused, not checked. Default 10. */
  failures?: number;
  /** How long a failure counts: from one to two windows (ms), at most a day. Default 60000. */
  windowMs?: number;
}

/**
 * Addresses remembered at once (about 150 bytes each). Past it the oldest are forgotten: a
 * stranger with this many addresses could erase its own record, but it already has as many
 * times the guesses of one address.
 */
export const AUTH_THROTTLE_ADDRESSES = 10_000;

/** Why `o` cannot make a throttle, or null; each caller throws its own error with it. */
export function authThrottleProblem(o: AuthThrottleOptions): string | null {
  const { failures = 10, windowMs = 60_000 } = o;
  if (!Number.isSafeInteger(failures) || failures < 1) return `authThrottle.failures must be a positive integer, got ${failures}`;
  if (!Number.isSafeInteger(windowMs) || windowMs < 1 || windowMs > 86_400_000)
    return `authThrottle.windowMs must be a positive integer of at most a day, got ${windowMs}`;
  return null;
}

export class AuthThrottle {
  readonly failures: number;
  readonly windowMs: number;
  private current = new Map<string, number>();
  private previous = new Map<string, number>();
  /** Cancels the end of the window under way; undefined while nothing is counted. */
  private cancel: (() => void) | undefined;

  /** `o` as authThrottleProblem() accepts it. */
  constructor(
    o: AuthThrottleOptions,
    private readonly clock: AuthThrottleClock,
    private readonly maxAddresses = AUTH_THROTTLE_ADDRESSES,
  ) {
    this.failures = o.failures ?? 10;
    this.windowMs = o.windowMs ?? 60_000;
  }

  /** Seconds until `key` may try again (at most): 0 when it may try now. */
  retryAfter(key: string): number {
    const now = this.current.get(key) ?? 0;
    if (now + (this.previous.get(key) ?? 0) < this.failures) return 0;
    // Failures of the window under way are dropped at the end of the next one.
    return Math.ceil(((now >= this.failures ? 2 : 1) * this.windowMs) / 1000);
  }

  /** One failed attempt from `key`. */
  fail(key: string): void {
    const n = this.current.get(key);
    if (n === undefined) {
      if (this.current.size + this.previous.size >= this.maxAddresses) {
        const older = this.previous.size > 0 ? this.previous : this.current;
        older.delete(older.keys().next().value!);
      }
      this.current.set(key, 1);
    } else this.current.set(key, n + 1);
    this.cancel ??= this.clock.setTimeout(() => this.endWindow(), this.windowMs);
  }

  /** Addresses remembered now. */
  get size(): number {
    return this.current.size + this.previous.size;
  }

  /** Forgets every failure and holds no timer: for the server's close. */
  clear(): void {
    this.cancel?.();
    this.cancel = undefined;
    this.current.clear();
    this.previous.clear();
  }

  private endWindow(): void {
    this.previous = this.current;
    this.current = new Map();
    // A quiet server holds no timer.
    this.cancel = this.previous.size > 0 ? this.clock.setTimeout(() => this.endWindow(), this.windowMs) : undefined;
  }
}
