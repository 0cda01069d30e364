// A leader handing leadership on refuses proposals until the transfer ends, and a proposal a
// follower forwarded meanwhile was dropped with no word to it: its caller waited out the
// whole append timeout for APPEND_OUTCOME_UNKNOWN, though the transfer was given up within an
// election timeout (its transferee out of reach) and the record never committed. Held here
// instead, the proposals are stepped once the transfer is given up, or dropped once this node
// no longer leads: the follower then sees the leader change, and answers at once.
import type { Message } from '../raft/types.js';

export class HeldProposals {
  private messages: Message[] = [];
  private bytes = 0;

  /**
   * What peers' forwarded proposals may hold here, at most: `maxBytes` of entry data and
   * `maxMessages` messages (a message of tiny entries costs more than its bytes). Past either
   * they are dropped, as without the hold.
   */
  constructor(
    private readonly maxBytes: number,
    private readonly maxMessages: number,
  ) {}

  get size(): number {
    return this.messages.length;
  }

  /** Holds `m`; false if it would take more than the bound. */
  hold(m: Message): boolean {
    let bytes = 0;
    for (const e of m.entries) bytes += e.data.byteLength;
    if (this.bytes + bytes > this.maxBytes || this.messages.length >= this.maxMessages) return false;
    this.messages.push(m);
    this.bytes += bytes;
    return true;
  }

  /** Hands back every held proposal, oldest first, and holds none. */
  take(): Message[] {
    const taken = this.messages;
    this.messages = [];
    this.bytes = 0;
    return taken;
  }
}
