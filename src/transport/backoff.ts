// Reconnect delays grow exponentially to a cap, with "equal jitter" (half fixed,
// half random) so that nodes restarted together do not reconnect in lockstep,
// yet no retry comes sooner than half the nominal delay.

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

export function backoffDelay(attempt: number, o: BackoffOptions, random: () => number): number {
  const ceiling = Math.min(o.maxMs, o.initialMs * 2 ** Math.min(attempt, 30));
  return ceiling / 2 + (random() * ceiling) / 2;
}
