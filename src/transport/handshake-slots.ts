// The slots of accepted connections still in their handshake, the only ones a stranger can open:
// a bounded number in all, and a few per client address, so that one address reconnecting fast
// holds a share of them and leaves the rest to the members.
import { networkKey } from './address.js';
import { TooManyConnectionsError } from './errors.js';

export class HandshakeSlots {
  private taken = 0;
  /** Slots taken per client address (networkKey); an address with none has no entry. */
  private readonly from = new Map<string, number>();

  constructor(
    private readonly max: number,
    private readonly maxPerAddress: number,
  ) {}

  /** Slots taken now: the handshakes in progress. */
  get inProgress(): number {
    return this.taken;
  }

  /**
   * One of the slots for a connection from `remoteAddress`, and what gives it back (once, however
   * often it is called); otherwise the error to refuse the connection with, taking nothing. The
   * cap per address is checked first: when both are reached, the log names the address.
   */
  take(remoteAddress: string): (() => void) | TooManyConnectionsError {
    const key = networkKey(remoteAddress);
    const fromHere = this.from.get(key) ?? 0;
    if (fromHere >= this.maxPerAddress) return new TooManyConnectionsError('unauthenticated', this.maxPerAddress, key);
    if (this.taken >= this.max) return new TooManyConnectionsError('unauthenticated', this.max);
    this.taken++;
    this.from.set(key, fromHere + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.taken--;
      const left = this.from.get(key)! - 1;
      if (left === 0) this.from.delete(key);
      else this.from.set(key, left);
    };
  }
}
