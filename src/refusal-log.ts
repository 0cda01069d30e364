// Warnings about refused strangers, at a bounded rate. A refusal costs whoever causes it one
// connection or request, so a line for each lets a flood of them flood the operator's logs.
// The first few of an interval are logged as they come, since the reason a misconfigured peer
// is refused is what an operator needs to see; the rest are counted, and the count is logged
// when the interval ends, a line for each `code` they carried and that code in its `code` field,
// so a log pipeline that counts one code's refusals counts those not logged too. A leaf module, so that the transport, the RESP server and the
// admin endpoint share it: it imports nothing, taking the logger's `warn` and a clock's
// `setTimeout` by their shapes (src/logger.ts's Logger and src/log/clock.ts's Clock have them).

/** The timer it needs, shaped as Clock's: a real one in production, one the test fires by hand. */
export interface RefusalLogClock {
  /** Calls fn once after ms; returns a function that cancels it. */
  setTimeout(fn: () => void, ms: number): () => void;
}

/** Real timers, unreferenced: a pending count must not keep the process alive. */
export const realTimers: RefusalLogClock = {
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  },
};

/**
 * 10 lines per 10 s: a flood costs at most 10 lines per 10 s and one for each code it carried
 * (about one a second), while a peer
 * refused for its configuration (another cluster's id or secret, a certificate for another node),
 * which redials every half to whole election timeout (2 to 4 times a second with a log's default
 * timing), still has 10 refusals of every 10 s logged, each with its reason.
 */
export const REFUSAL_LOG_LINES = 10;
export const REFUSAL_LOG_INTERVAL_MS = 10_000;

export class RefusalLog {
  private logged = 0;
  /** The refusals not logged this interval, by their `code` ('' for those that carried none). */
  private readonly suppressed = new Map<string, number>();
  /** Cancels the end of the interval under way; undefined between intervals. */
  private cancel: (() => void) | undefined;

  /** `subject` starts the line with the count: 'transport: refused connections', say. */
  constructor(
    private readonly logger: { warn(fields: Record<string, unknown>, message: string): void },
    private readonly subject: string,
    private readonly clock: RefusalLogClock = realTimers,
  ) {}

  /** One refusal: logged, or counted when the interval has had its lines. */
  warn(fields: Record<string, unknown>, message: string): void {
    // The interval starts at the first refusal, so a quiet port holds no timer.
    this.cancel ??= this.clock.setTimeout(() => this.endInterval(), REFUSAL_LOG_INTERVAL_MS);
    if (this.logged < REFUSAL_LOG_LINES) {
      this.logged++;
      this.logger.warn(fields, message);
    } else {
      const code = typeof fields.code === 'string' ? fields.code : '';
      this.suppressed.set(code, (this.suppressed.get(code) ?? 0) + 1);
    }
  }

  /** Logs the count of refusals not logged now, not at the interval's end: for a server's close. */
  flush(): void {
    this.cancel?.();
    this.endInterval();
  }

  private endInterval(): void {
    this.cancel = undefined;
    const counts = [...this.suppressed];
    this.logged = 0;
    this.suppressed.clear();
    for (const [code, n] of counts) {
      this.logger.warn(
        code === '' ? { suppressed: n } : { code, suppressed: n },
        `${this.subject}: ${n} more${code === '' ? '' : ` ${code}`} not logged (at most ${REFUSAL_LOG_LINES} are logged every ${REFUSAL_LOG_INTERVAL_MS / 1000} s, then their count)`,
      );
    }
  }
}

/**
 * Keeps a listening server serving through the errors it emits: an accept that fails (EMFILE,
 * ENFILE, ENOBUFS) is an 'error' on the server, which stays open, and without a listener it was
 * thrown where nothing catches it, and ended the process. Each is logged with its code, at the
 * bounded rate, since one that repeats fails every connection. Returns the log, for the
 * server's close to flush.
 */
export function logServerErrors(
  server: { on(event: 'error', listener: (err: Error & { code?: unknown }) => void): unknown },
  logger: { warn(fields: Record<string, unknown>, message: string): void },
  subject: string,
  clock?: RefusalLogClock,
): RefusalLog {
  const log = new RefusalLog(logger, `${subject}: server errors`, clock);
  server.on('error', (err) => {
    const code = typeof err.code === 'string' ? err.code : 'INTERNAL';
    log.warn({ err, code }, `${subject}: the server failed, and serves on: ${code}: ${err.message}`);
  });
  return log;
}
