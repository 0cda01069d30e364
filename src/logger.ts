// The logger raftlog writes to: the shape of pino's (and of most Node loggers'),
// so an application passes its own. The library never writes to the console;
// without a logger it is silent. A leaf module: every layer may import it.

/** Structured fields first, then the message, as pino takes them. */
export type LogMethod = (fields: Record<string, unknown>, message: string) => void;

export interface Logger {
  trace: LogMethod;
  debug: LogMethod;
  info: LogMethod;
  warn: LogMethod;
  error: LogMethod;
  /** A logger that adds `bindings` to every line (pino's child loggers). */
  child(bindings: Record<string, unknown>): Logger;
}

const ignore: LogMethod = () => undefined;

export const silentLogger: Logger = {
  trace: ignore,
  debug: ignore,
  info: ignore,
  warn: ignore,
  error: ignore,
  child: () => silentLogger,
};

/**
 * `logger` with every call that throws, or returns a promise that rejects, ignored, the line lost. The log calls its logger from
 * inside the steps that stop it and settle its callers' promises: a throw there would leave the
 * node stopped halfway, its appends never settled, and the error loose in the process.
 */
export function guardedLogger(logger: Logger): Logger {
  // Looked up at each call: pino swaps a level's method when the level changes.
  const guard =
    (level: Exclude<keyof Logger, 'child'>): LogMethod =>
    (fields, message) =>
      guardedCall(() => logger[level](fields, message));
  const guarded: Logger = {
    trace: guard('trace'),
    debug: guard('debug'),
    info: guard('info'),
    warn: guard('warn'),
    error: guard('error'),
    child: (bindings) => {
      try {
        return guardedLogger(logger.child(bindings));
      } catch {
        return guarded; // its lines lose the bindings rather than the caller failing
      }
    },
  };
  return guarded;
}

/** Calls a logger's method, its throw or its promise's rejection ignored (see guardedLogger). */
export function guardedCall(call: () => unknown): void {
  try {
    // An async logger's method returns a promise: its rejection would be loose in the process.
    const r = call();
    if (typeof (r as { then?: unknown } | null)?.then === 'function') (r as PromiseLike<unknown>).then(undefined, () => undefined);
  } catch {
    // nowhere left to say it: the logger is what failed
  }
}
