// Requests other than appends (barriers, membership changes, leadership transfers)
// each settle within the log's timeout, and at once when the log closes: a caller
// never waits on a promise that nothing will settle.
import type { Clock } from './clock.js';
import { TimeoutError } from './errors.js';

export class Deadlines {
  private readonly closeHooks = new Set<(err: Error) => void>();

  constructor(
    private readonly clock: Pick<Clock, 'setTimeout'>,
    private readonly timeoutMs: number,
  ) {}

  /** Runs `start`, and rejects with a TimeoutError (after calling its cleanup) if it has not settled in time, or when the log closes. */
  run(what: string, start: (resolve: () => void, reject: (e: Error) => void) => () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      let cancelTimer: () => void = () => undefined;
      let cleanup: () => void = () => undefined;
      const settle = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        cancelTimer();
        this.closeHooks.delete(onClose);
        fn();
      };
      const onClose = (err: Error): void => settle(() => reject(err));
      this.closeHooks.add(onClose);
      cleanup = start(
        () => settle(resolve),
        (e) => settle(() => reject(e)),
      );
      if (settled) return;
      cancelTimer = this.clock.setTimeout(() => {
        cleanup();
        settle(() => reject(new TimeoutError(what, this.timeoutMs)));
      }, this.timeoutMs);
    });
  }

  /** The log stopped: every request still running rejects with `err`. */
  closeAll(err: Error): void {
    for (const hook of [...this.closeHooks]) hook(err);
  }
}
