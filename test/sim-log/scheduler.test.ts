import { describe, expect, it } from 'vitest';
import { Lifetime, Scheduler } from './scheduler.js';

describe('Scheduler', () => {
  it('runs events in (time, insertion) order and advances virtual time only', async () => {
    const s = new Scheduler();
    const seen: string[] = [];
    s.after(10, () => seen.push(`b@${s.now}`));
    s.after(5, () => seen.push(`a@${s.now}`));
    s.after(10, () => seen.push(`c@${s.now}`));
    s.after(0, () => seen.push(`z@${s.now}`));
    while (await s.step());
    expect(seen).toEqual(['z@0', 'a@5', 'b@10', 'c@10']);
    expect(s.steps).toBe(4);
  });

  it('drains every microtask an event started before the next event runs', async () => {
    const s = new Scheduler();
    const seen: string[] = [];
    s.after(1, () => {
      void Promise.resolve()
        .then(() => Promise.resolve())
        .then(() => queueMicrotask(() => seen.push('deep microtask')));
    });
    s.after(1, () => seen.push('second event'));
    while (await s.step());
    expect(seen).toEqual(['deep microtask', 'second event']);
  });

  it('a paused lifetime runs nothing until it wakes, then what fell due, in order; runUntil stops at its bound', async () => {
    const s = new Scheduler();
    const life = new Lifetime();
    const clock = s.clock(life);
    const seen: string[] = [];
    clock.setTimeout(() => seen.push(`a@${s.now}`), 10);
    clock.setTimeout(() => seen.push(`b@${s.now}`), 20);
    clock.setTimeout(() => seen.push(`after@${s.now}`), 60);
    s.after(15, () => seen.push(`other@${s.now}`));
    life.pausedUntil = 50;
    await s.runUntil(40);
    expect(seen).toEqual(['other@15']);
    expect(s.now).toBe(40);
    while (await s.step());
    expect(seen).toEqual(['other@15', 'a@50', 'b@50', 'after@60']);
  });

  it('cancels timers, and a lifetime that ended takes its timers and deferred calls with it', async () => {
    const s = new Scheduler();
    const life = new Lifetime();
    const clock = s.clock(life);
    const seen: string[] = [];
    const cancel = clock.setTimeout(() => seen.push('cancelled'), 5);
    clock.setTimeout(() => seen.push('dead'), 20);
    clock.defer(() => seen.push('deferred'));
    s.after(10, () => life.end());
    s.after(30, () => seen.push('other'));
    cancel();
    while (await s.step());
    expect(seen).toEqual(['deferred', 'other']);
  });

  it('defer runs after the current event, not inside it', async () => {
    const s = new Scheduler();
    const clock = s.clock(new Lifetime());
    const seen: string[] = [];
    s.after(0, () => {
      clock.defer(() => seen.push('deferred'));
      seen.push('event');
    });
    while (await s.step());
    expect(seen).toEqual(['event', 'deferred']);
  });

  it('runUntil stops at the time limit or when asked, and rejects bad delays', async () => {
    const s = new Scheduler();
    let n = 0;
    const tick = (): void => {
      n++;
      s.after(10, tick);
    };
    s.after(0, tick);
    await s.runUntil(95);
    expect([n, s.now]).toEqual([10, 95]);
    await s.runUntil(1000, () => n >= 15);
    expect(n).toBe(15);
    expect(() => s.after(-1, () => undefined)).toThrow(RangeError);
    expect(() => s.after(Number.NaN, () => undefined)).toThrow(RangeError);
  });

  it('a skewed clock stretches its timers, not the hardware ones', async () => {
    const s = new Scheduler();
    const slow = s.clock(new Lifetime(), 1.5);
    const fast = s.clock(new Lifetime(), 0.5);
    const seen: string[] = [];
    slow.setTimeout(() => seen.push(`slow@${s.now}`), 10);
    slow.hardwareTimeout(() => seen.push(`disk@${s.now}`), 10);
    fast.setTimeout(() => seen.push(`fast@${s.now}`), 10);
    while (await s.step());
    expect(seen).toEqual(['fast@5', 'disk@10', 'slow@15']);
  });
});
