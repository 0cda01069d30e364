// How the on-demand scripts read their flags.
import { UsageError, parseArgs } from '../src/cli/args.js';

/**
 * A script's flags, read as raftlog's commands read theirs (src/cli/args.ts: numbers are
 * decimal digits, nothing else): -h prints `usage`; a bad flag ends the process with the
 * usage and exit status 2, before the script starts anything.
 */
export function scriptFlags<T>(script: string, usage: string, known: Record<string, 'string' | 'boolean'>, read: (opts: Map<string, string | true>) => T): T {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(usage);
    process.exit(0);
  }
  try {
    return read(parseArgs(argv, known));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`npm run ${script}: ${err.message}\n${usage}`);
    process.exit(2);
  }
}
