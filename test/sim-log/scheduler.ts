// Virtual time for the simulator. Every timer, message and disk completion is
// an event in one queue ordered by (time, sequence); after each event every
// microtask it started runs before the next event, so a seed names one run.
// Nothing here reads the real clock.
import type { Clock } from '../../src/log/clock.js';
import { EventQueue } from '../sim/eventqueue.js';

interface Event {
  at: number;
  seq: number;
  fn: () => void;
  life: Lifetime | null;
  /** Shared by reference: the queue stores a copy of the event. */
  token: { cancelled: boolean };
}

/** One incarnation of a node: its timers, disk completions and deliveries die with it. */
export class Lifetime {
  private alive = true;
  /** The process is stalled (a long GC, a frozen VM) until this simulated time: its events wait until then. */
  pausedUntil = 0;

  get ended(): boolean {
    return !this.alive;
  }

  end(): void {
    this.alive = false;
  }
}

/** A Clock that also tells the simulated time. */
export interface SimClock extends Clock {
  now(): number;
  /** An unskewed timer of the same lifetime, for simulated hardware (the disk) rather than the process's own timers. */
  hardwareTimeout(fn: () => void, ms: number): () => void;
}

const drain = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

export class Scheduler {
  private readonly queue = new EventQueue<Event>();
  private time = 0;
  /** Events run so far. */
  steps = 0;

  /**
   * An event threw: in a real process that is an uncaught exception, which kills
   * it. Without a handler the error propagates out of step().
   */
  onError: ((err: unknown, life: Lifetime | null) => void) | null = null;

  get now(): number {
    return this.time;
  }

  get pending(): number {
    return this.queue.size;
  }

  /** Runs fn `ms` from now (0: after the current event). Returns a cancel function. */
  after(ms: number, fn: () => void, life: Lifetime | null = null): () => void {
    if (!(ms >= 0) || !Number.isFinite(ms)) throw new RangeError(`delay must be a finite number >= 0, got ${ms}`);
    const token = { cancelled: false };
    this.queue.push({ at: this.time + ms, fn, life, token });
    return () => {
      token.cancelled = true;
    };
  }

  /** Runs the next event and every microtask it started. False when no event is left. */
  async step(): Promise<boolean> {
    if (this.peekTime() === undefined) return false;
    const ev = this.queue.pop()!;
    this.time = ev.at;
    this.steps++;
    if (this.onError === null) ev.fn();
    else {
      try {
        ev.fn();
      } catch (err) {
        this.onError(err, ev.life);
      }
    }
    await drain();
    return true;
  }

  /** Runs events until simulated time `until` (events at exactly `until` run) or `stop()` says so. */
  async runUntil(until: number, stop: () => boolean = () => false): Promise<void> {
    while (!stop()) {
      const next = this.peekTime();
      if (next === undefined || next > until) break;
      await this.step();
    }
    if (this.time < until && !stop()) this.time = until;
  }

  /**
   * A clock for one node lifetime: its timers and deferred calls never fire after
   * the lifetime ends. `rate` skews it: a timer of ms fires after round(ms * rate).
   */
  clock(life: Lifetime, rate = 1): SimClock {
    return {
      now: () => this.time,
      setTimeout: (fn, ms) => this.after(Math.round(ms * rate), fn, life),
      hardwareTimeout: (fn, ms) => this.after(ms, fn, life),
      defer: (fn) => {
        this.after(0, fn, life);
      },
    };
  }

  private peekTime(): number | undefined {
    for (;;) {
      const ev = this.queue.peek();
      if (ev === undefined) return undefined;
      if (ev.token.cancelled || ev.life?.ended === true) {
        this.queue.pop();
        continue;
      }
      const paused = ev.life?.pausedUntil ?? 0;
      if (paused > ev.at) {
        // Moved, not run: what a stalled process was due to do it does when it wakes, in the same order.
        this.queue.pop();
        this.queue.push({ at: paused, fn: ev.fn, life: ev.life, token: ev.token });
        continue;
      }
      return ev.at;
    }
  }
}
