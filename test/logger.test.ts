import { describe, expect, it } from 'vitest';
import { guardedLogger, type Logger } from '../src/logger.js';
import { looseErrors } from './broken-logger.js';

/** Lets the rejections of the calls made so far reach the process's handlers. */
const turns = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 50));

describe('guardedLogger', () => {
  it('leaves no rejection loose when a method returns a promise that rejects (an async logger)', async () => {
    const loose = looseErrors();
    let calls = 0;
    const rejecting = (): Promise<never> => {
      calls++;
      return Promise.reject(new Error('the log shipper is down'));
    };
    const asyncLogger = { trace: rejecting, debug: rejecting, info: rejecting, warn: rejecting, error: rejecting, child: () => asyncLogger };
    const logger = guardedLogger(asyncLogger as unknown as Logger).child({ node: 1 });
    for (const level of ['trace', 'debug', 'info', 'warn', 'error'] as const) logger[level]({}, 'a line');
    await turns();
    expect(calls).toBe(5);
    expect(loose).toEqual([]);
  });

  it('survives a child() that throws, returns nothing, or returns something without methods', async () => {
    const loose = looseErrors();
    const lines: string[] = [];
    const base = (child: () => unknown): Logger => {
      const record = (_f: Record<string, unknown>, m: string): void => void lines.push(m);
      return { trace: record, debug: record, info: record, warn: record, error: record, child } as Logger;
    };
    const odd = [
      () => {
        throw new Error('no child');
      },
      () => undefined,
      () => ({}),
      () => Promise.resolve(base(() => undefined)),
    ];
    for (const child of odd) {
      const logger = guardedLogger(base(child)).child({ node: 1 });
      logger.warn({}, 'still called');
      logger.child({ peer: 2 }).error({}, 'grandchild');
    }
    await turns();
    expect(loose).toEqual([]);
    // A child() that throws loses only the bindings: its lines still reach the logger.
    expect(lines).toEqual(['still called', 'grandchild']);
  });
});
