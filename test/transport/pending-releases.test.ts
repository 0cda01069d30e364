import { afterEach, describe, expect, it, vi } from 'vitest';
import { PendingReleases } from '../../src/transport/pending-releases.js';
import { LogCapture } from './helpers.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('PendingReleases', () => {
  it('settles once every release has, logging each failure', async () => {
    const log = new LogCapture();
    const releases = new PendingReleases(log);
    let release: (() => void) | undefined;
    releases.add('closing a', new Promise<void>((r) => (release = r)));
    releases.add('closing b', Promise.reject(new Error('EIO')));
    let settled = false;
    const waiting = releases.settled(60_000).then(() => (settled = true));
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    release!();
    await waiting;
    expect(log.messages).toEqual(['transport: closing b failed: EIO']);
    await releases.settled(0); // nothing left: at once, and nothing logged
    expect(log.messages).toEqual(['transport: closing b failed: EIO']);
  });

  it('stops waiting after the bound, naming what has not settled, and still logs a failure that comes later', async () => {
    vi.useFakeTimers();
    const log = new LogCapture();
    const releases = new PendingReleases(log);
    let fail: ((err: Error) => void) | undefined;
    releases.add('deleting x', new Promise<void>(() => undefined));
    releases.add('deleting x', new Promise<void>(() => undefined));
    releases.add('closing y', new Promise<void>((_, reject) => (fail = reject)));
    releases.add('closing z', Promise.resolve());
    let settled = false;
    const waiting = releases.settled(500).then(() => (settled = true));
    await vi.advanceTimersByTimeAsync(499);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(settled).toBe(true);
    await waiting;
    expect(log.messages).toEqual(['transport: closed without waiting longer for deleting x (x2), closing y: not settled after 500 ms']);
    fail!(new Error('late'));
    await vi.advanceTimersByTimeAsync(0);
    expect(log.messages.at(-1)).toBe('transport: closing y failed: late');
  });
});
