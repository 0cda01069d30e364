// Budget, the memory all RESP clients hold together, without a server: which client an eviction
// closes is then set by hand, a socket destroyed and not yet closed among them.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { Budget, type Held } from '../../src/kv/budget.js';
import { RefusalLog } from '../../src/refusal-log.js';
import { RecordingLogger } from '../recording-logger.js';

function budget(maxBufferedBytes: number): { budget: Budget; logger: RecordingLogger; hold: (bytes: number, authed: boolean) => [net.Socket, Held] } {
  const logger = new RecordingLogger();
  const refusals = new RefusalLog(logger, 'RESP server: refused connections', undefined);
  const b = new Budget({ maxBufferedBytes, maxWriteBufferedBytes: 1 << 20, maxPendingReads: 16, refusals, logger, clock: undefined });
  const hold = (bytes: number, authed: boolean): [net.Socket, Held] => {
    const socket = new net.Socket();
    const held: Held = { bytes, authed, queued: 0 };
    b.clients.set(socket, held);
    b.buffered += bytes;
    return [socket, held];
  };
  return { budget: b, logger, hold };
}

describe('Budget.evict', () => {
  it('evicts no one for the bytes of a client already destroyed: they are given back, once', () => {
    const { budget: b, logger, hold } = budget(100);
    const [gone, goneHeld] = hold(80, false);
    const [live] = hold(50, false);
    gone.destroy(); // its close event has not fired yet
    b.evict();
    expect(b.counters.evicted).toBe(0);
    expect(logger.lines).toEqual([]);
    expect(live.destroyed).toBe(false);
    expect(b.buffered).toBe(50);
    // What its close gives back is what it still holds: nothing.
    expect(goneHeld.bytes).toBe(0);
    live.destroy();
  });

  it("gives back a destroyed client's bytes first, then closes a live client if the rest still pass the budget", () => {
    const { budget: b, logger, hold } = budget(100);
    const [gone] = hold(80, false);
    const [stranger] = hold(50, false);
    const [authed] = hold(60, true);
    gone.destroy();
    b.evict();
    expect(b.counters.evicted).toBe(1);
    expect(stranger.destroyed).toBe(true);
    expect(authed.destroyed).toBe(false);
    expect(b.buffered).toBe(60);
    expect(logger.lines.map((l) => l.fields.code)).toEqual(['KV_MAX_BUFFERED']);
    authed.destroy();
  });
});
