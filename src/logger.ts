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
