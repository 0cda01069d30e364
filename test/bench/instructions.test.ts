import { expect, it } from 'vitest';
import { collected } from '../../bench/instructions.bench.js';

it("reads the count from callgrind's summary, and refuses a run that printed none", () => {
  const stderr = [
    '==4242== Callgrind, a call-graph generating cache profiler',
    '==4242== Events    : Ir',
    '==4242== Collected : 1505558493',
    '==4242== I   refs:      1,505,558,493',
  ].join('\n');
  expect(collected(stderr)).toBe(1505558493);
  expect(() => collected('==4242== valgrind: failed to start tool')).toThrow(/no count/);
});
