// Timers for tests that run only when the test says their time has come: code that takes
// a clock shaped as src/log/clock.ts's (setTimeout returning a cancel) is tested without waiting.
import type { RefusalLogClock } from '../src/refusal-log.js';

/** Timers that run only when the test says the time has come. */
export class ManualClock implements RefusalLogClock {
  private timers: Array<{ fn: () => void; ms: number; cancelled: boolean }> = [];
  setTimeout(fn: () => void, ms: number): () => void {
    const t = { fn, ms, cancelled: false };
    this.timers.push(t);
    return () => {
      t.cancelled = true;
    };
  }
  /** The delays of the timers still pending. */
  get pending(): number[] {
    return this.timers.filter((t) => !t.cancelled).map((t) => t.ms);
  }
  /** Runs every pending timer, as if their time had come. */
  fire(): void {
    const due = this.timers.filter((t) => !t.cancelled);
    this.timers = [];
    for (const t of due) t.fn();
  }
}
