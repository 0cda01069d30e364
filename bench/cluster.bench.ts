// `npm run bench cluster`: the product benchmark (raftlog bench): a 3-process
// cluster, one embedded node and better-sqlite3 under the same append workload.
import { run } from '../src/cli/bench.js';
import { profileDirOf } from './suite.js';

/** --profile: one profile of this process per system (see raftlog bench --help). */
export const profiles = true;

export default async function cluster(args: string[]): Promise<void> {
  const quick = args.includes('--quick');
  await run({
    seconds: quick ? 1 : 3,
    runs: quick ? 1 : 3,
    sizes: [100, 1024],
    clients: [1, 16, 256, 1024],
    systems: ['cluster', 'embedded', 'sqlite'],
    sync: 'always',
    out: 'bench/results',
    profileDir: profileDirOf(args) ?? undefined,
  });
}
