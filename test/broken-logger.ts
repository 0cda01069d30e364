// A logger whose every call throws, and a catcher for the errors that escape to the process: what
// a library must survive from the logger an application hands it.
import { onTestFinished } from 'vitest';
import type { Logger } from '../src/logger.js';

export class BrokenLogger implements Logger {
  /** Calls made to it, each of which threw: a test that expects lines sees it was reached. */
  calls = 0;
  private readonly fail = (): never => {
    this.calls++;
    throw new Error('logger broke');
  };
  trace = this.fail;
  debug = this.fail;
  info = this.fail;
  warn = this.fail;
  error = this.fail;
  child = (): Logger => this;
}

/** Errors that reach the process as uncaught exceptions or unhandled rejections until the test ends. */
export function looseErrors(): unknown[] {
  const loose: unknown[] = [];
  const onLoose = (reason: unknown): void => void loose.push(reason);
  process.on('unhandledRejection', onLoose);
  process.on('uncaughtException', onLoose);
  onTestFinished(() => {
    process.off('unhandledRejection', onLoose);
    process.off('uncaughtException', onLoose);
  });
  return loose;
}
