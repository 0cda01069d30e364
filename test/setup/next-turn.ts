/**
 * One turn of the event loop. A long synchronous sweep awaits this between units
 * of work, so the worker keeps answering the test runner (see event-loop.ts).
 */
export const nextTurn = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));
