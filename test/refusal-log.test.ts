// The rate limit on warnings about refused strangers: the first lines of an interval as they
// come, the rest counted and logged as one line when it ends. Time is a clock the test runs.
import { describe, expect, it } from 'vitest';
import { REFUSAL_LOG_INTERVAL_MS, REFUSAL_LOG_LINES, RefusalLog } from '../src/refusal-log.js';
import { ManualClock } from './manual-clock.js';
import { RecordingLogger } from './recording-logger.js';

function setup() {
  const logger = new RecordingLogger();
  const clock = new ManualClock();
  return { logger, clock, refusals: new RefusalLog(logger, 'port: refused connections', clock) };
}

describe('RefusalLog', () => {
  it('logs the first lines of an interval, counts the rest, and logs the count when it ends', () => {
    const { logger, clock, refusals } = setup();
    for (let i = 0; i < 25; i++) refusals.warn({ i }, `refused ${i}`);
    expect(logger.messages).toEqual(Array.from({ length: REFUSAL_LOG_LINES }, (_, i) => `refused ${i}`));
    expect(logger.lines.every((l) => l.level === 'warn')).toBe(true);
    expect(logger.lines[3]!.fields).toEqual({ i: 3 });
    // One timer for the interval, however many refusals.
    expect(clock.pending).toEqual([REFUSAL_LOG_INTERVAL_MS]);
    clock.fire();
    expect(logger.lines).toHaveLength(REFUSAL_LOG_LINES + 1);
    expect(logger.lines.at(-1)!).toEqual({
      level: 'warn',
      fields: { suppressed: 15 },
      message: 'port: refused connections: 15 more not logged (at most 10 are logged every 10 s, then their count)',
    });
    // The next interval starts with the next refusal, its lines logged again.
    expect(clock.pending).toEqual([]);
    refusals.warn({}, 'refused again');
    expect(logger.messages.at(-1)).toBe('refused again');
    expect(clock.pending).toEqual([REFUSAL_LOG_INTERVAL_MS]);
  });

  it("logs the count of each code's refusals on a line of its own, the code in its code field", () => {
    const { logger, clock, refusals } = setup();
    for (let i = 0; i < REFUSAL_LOG_LINES; i++) refusals.warn({ code: 'TRANSPORT_AUTH_FAILED' }, `refused ${i}`);
    for (let i = 0; i < 3; i++) refusals.warn({ code: 'TRANSPORT_AUTH_FAILED' }, 'one more');
    refusals.warn({ code: 'ECONNRESET' }, 'and another');
    clock.fire();
    expect(logger.lines.slice(REFUSAL_LOG_LINES)).toEqual([
      {
        level: 'warn',
        fields: { code: 'TRANSPORT_AUTH_FAILED', suppressed: 3 },
        message: 'port: refused connections: 3 more TRANSPORT_AUTH_FAILED not logged (at most 10 are logged every 10 s, then their count)',
      },
      {
        level: 'warn',
        fields: { code: 'ECONNRESET', suppressed: 1 },
        message: 'port: refused connections: 1 more ECONNRESET not logged (at most 10 are logged every 10 s, then their count)',
      },
    ]);
  });

  it('logs no count for an interval that had no more than its lines', () => {
    const { logger, clock, refusals } = setup();
    for (let i = 0; i < REFUSAL_LOG_LINES; i++) refusals.warn({}, `refused ${i}`);
    clock.fire();
    expect(logger.lines).toHaveLength(REFUSAL_LOG_LINES);
    refusals.flush();
    expect(logger.lines).toHaveLength(REFUSAL_LOG_LINES);
  });

  it('flush() logs the count at once and cancels the end of the interval', () => {
    const { logger, clock, refusals } = setup();
    for (let i = 0; i < REFUSAL_LOG_LINES + 2; i++) refusals.warn({}, `refused ${i}`);
    refusals.flush();
    expect(logger.lines.at(-1)!.fields).toEqual({ suppressed: 2 });
    expect(clock.pending).toEqual([]);
    clock.fire();
    expect(logger.lines).toHaveLength(REFUSAL_LOG_LINES + 1);
  });
});
