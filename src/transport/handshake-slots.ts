// The slots of accepted connections still in their handshake, the only ones a stranger can open:
// a bounded number in all, and a few per client address, so that one address reconnecting fast
// holds a share of them and leaves the rest to the members. At the cap the oldest one goes for a
// newer one: a member's handshake takes a round trip or two, so a stranger that holds every slot,
// on however many addresses, keeps no member out unless it opens a whole cap's worth of
// connections within that time.
import { networkKey } from './address.js';
import { TooManyConnectionsError } from './errors.js';

interface Holder {
  key: string;
  /** Closes the connection holding the slot. */
  evict(err: TooManyConnectionsError): void;
}

export class HandshakeSlots {
  /** By each slot's release, oldest first. */
  private readonly holders = new Map<() => void, Holder>();
  /** Slots taken per client address (networkKey); an address with none has no entry. */
  private readonly from = new Map<string, number>();

  constructor(
    private readonly max: number,
    private readonly maxPerAddress: number,
  ) {}

  /** Slots taken now: the handshakes in progress. */
  get inProgress(): number {
    return this.holders.size;
  }

  /**
   * One of the slots for a connection from `remoteAddress`, and what gives it back (once, however
   * often it is called); at the cap, the oldest holder's is given back and `evict` is called for
   * it. An address at its own cap is refused instead, taking nothing and closing nothing: one
   * address never closes another's connections by opening more.
   */
  take(remoteAddress: string, evict: (err: TooManyConnectionsError) => void): (() => void) | TooManyConnectionsError {
    const key = networkKey(remoteAddress);
    const fromHere = this.from.get(key) ?? 0;
    if (fromHere >= this.maxPerAddress) return new TooManyConnectionsError('unauthenticated', this.maxPerAddress, key);
    if (this.holders.size >= this.max) this.evictOldest(undefined, new TooManyConnectionsError('unauthenticated', this.max, undefined, true));
    this.from.set(key, (this.from.get(key) ?? 0) + 1);
    const release = (): void => {
      if (!this.holders.delete(release)) return;
      const left = this.from.get(key)! - 1;
      if (left === 0) this.from.delete(key);
      else this.from.set(key, left);
    };
    this.holders.set(release, { key, evict });
    return release;
  }

  /** Closes the oldest connection in its handshake but `spare`, with `err`; false if there is none. */
  evictOldest(spare: (() => void) | undefined, err: TooManyConnectionsError): boolean {
    for (const [release, h] of this.holders) {
      if (release === spare) continue;
      release();
      h.evict(err);
      return true;
    }
    return false;
  }
}
