// Failed authentications counted by address: the limit, the windows that forget them, and the
// table's cap. Time is a clock the test runs.
import { describe, expect, it } from 'vitest';
import { AUTH_THROTTLE_ADDRESSES, AuthThrottle, authThrottleProblem } from '../src/auth-throttle.js';
import { ManualClock } from './manual-clock.js';

describe('AuthThrottle', () => {
  it('lets an address in until its failures reach the limit, then tells it when to retry, and forgets them one to two windows later', () => {
    const clock = new ManualClock();
    const t = new AuthThrottle({ failures: 3, windowMs: 30_000 }, clock);
    expect(clock.pending).toEqual([]); // nothing counted, no timer
    for (let i = 0; i < 2; i++) t.fail('a');
    expect(t.retryAfter('a')).toBe(0);
    t.fail('a');
    expect(t.retryAfter('a')).toBe(60); // failed in the window under way: dropped at the end of the next
    expect(t.retryAfter('b')).toBe(0);
    expect(clock.pending).toEqual([30_000]); // one timer, however many failures
    clock.fire();
    expect(t.retryAfter('a')).toBe(30);
    // Failures in both windows add up.
    const u = new AuthThrottle({ failures: 3, windowMs: 30_000 }, clock);
    u.fail('c');
    u.fail('c');
    clock.fire();
    u.fail('c');
    expect(u.retryAfter('c')).toBe(30);
    clock.fire();
    expect(u.retryAfter('c')).toBe(0);
    expect(t.retryAfter('a')).toBe(0);
    // Empty again, it holds no timer.
    expect(t.size).toBe(0);
    clock.fire();
    expect(clock.pending).toEqual([]);
  });

  it('remembers at most its cap of addresses, forgetting the oldest first', () => {
    const clock = new ManualClock();
    const t = new AuthThrottle({ failures: 1 }, clock, 100);
    for (let i = 0; i < 60; i++) t.fail(`old${i}`);
    clock.fire();
    for (let i = 0; i < 1000; i++) {
      t.fail(`new${i}`);
      expect(t.size).toBeLessThanOrEqual(100);
    }
    expect(t.size).toBe(100);
    expect(t.retryAfter('old59')).toBe(0);
    expect(t.retryAfter('new0')).toBe(0);
    expect(t.retryAfter('new999')).toBeGreaterThan(0);
    expect(AUTH_THROTTLE_ADDRESSES).toBe(10_000);
  });

  it('names a bad option', () => {
    expect(authThrottleProblem({})).toBeNull();
    for (const o of [{ failures: 0 }, { failures: 1.5 }, { windowMs: 0 }, { windowMs: Number.NaN }, { windowMs: 86_400_001 }])
      expect(authThrottleProblem(o), JSON.stringify(o)).toMatch(/^authThrottle\.(failures|windowMs) must be/);
  });
});
