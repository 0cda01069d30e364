// A leaf module, so that every layer that takes a timeout from its caller refuses the same ones.

/**
 * Node's timers take at most 2^31 - 1 ms; a longer one fires after 1 ms (with a warning),
 * so a timeout meant to be long would expire at once.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;
