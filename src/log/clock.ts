/** Time as the driver sees it: real timers in production, a simulated clock in the simulator. */
export interface Clock {
  /** Calls fn once after ms; returns a function that cancels it. */
  setTimeout(fn: () => void, ms: number): () => void;
  /** Calls fn after the current turn of the event loop (all appends of one turn become one proposal). */
  defer(fn: () => void): void;
}

export const realClock: Clock = {
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref(); // an idle embedded log must not keep the process alive
    return () => clearTimeout(t);
  },
  defer(fn) {
    setImmediate(fn);
  },
};
