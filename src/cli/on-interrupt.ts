// A signal ends a process without running its `finally` blocks: what a command made (temporary
// directories, child processes) is cleaned up here instead, and the process then exits as a
// shell expects of one ended by that signal.

/**
 * Runs `cleanup` at SIGINT or SIGTERM, then exits with 130 or 143. Returns what removes the
 * handlers, for the `finally` that cleans up when no signal came.
 */
export function onInterrupt(cleanup: () => void): () => void {
  const onSignal = (signal: NodeJS.Signals): void => {
    cleanup();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}
