// `npm run bench [-- name ...]`: runs every bench/<name>.bench.ts (or the named ones)
// in turn. Each suite prints its own progress and table and writes its results
// under bench/results/.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { profileDirOf } from './suite.js';

export interface BenchSuite {
  default: (args: string[]) => Promise<void>;
  /** True when the suite honours --profile. */
  profiles?: boolean;
}

const here = dirname(fileURLToPath(import.meta.url));
const all = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.slice(0, -'.bench.ts'.length))
  .sort();
const FLAGS = ['--quick', '--profile'];
const USAGE = `usage: npm run bench [-- [${all.join('|')} ...] [report] [--quick] [--profile] [--profile-dir=DIR]]
Runs every benchmark suite (or the named ones) in turn; each prints a table with the
machine it ran on and writes bench/results/<suite>.json. --quick runs a short pass.
--profile (cluster, micro, wal): records a CPU profile of each system measured into DIR
(default bench/results/profiles/) and prints, per system, the functions with the most
self time and the shares of idle, GC and program time.
report: after the named suites (alone: without running any), writes docs/performance.md
from bench/results/*.json.`;

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const flags = process.argv.slice(2).filter((a) => a.startsWith('-'));
if (flags.includes('--help') || flags.includes('-h')) {
  console.log(USAGE);
  process.exit(0);
}
const known = (f: string): boolean => FLAGS.includes(f) || (f.startsWith('--profile-dir=') && f.length > '--profile-dir='.length);
const bad = [...flags.filter((f) => !known(f)), ...wanted.filter((w) => !all.includes(w) && w !== 'report')];
if (bad.length > 0) {
  console.error(`npm run bench: unknown ${bad[0]!.startsWith('-') ? 'option' : 'suite'} ${bad[0]}\n${USAGE}`);
  process.exit(2);
}
const report = wanted.includes('report');
const named = wanted.filter((w) => w !== 'report');
const suites = report && named.length === 0 ? [] : all.filter((name) => named.length === 0 || named.includes(name));
for (const name of suites) {
  console.log(`\n=== ${name} ===`);
  const suite = (await import(pathToFileURL(join(here, `${name}.bench.ts`)).href)) as BenchSuite;
  if (profileDirOf(flags) !== null && suite.profiles !== true) console.log(`(${name} does not record CPU profiles; --profile is ignored for it)`);
  await suite.default(flags);
}
if (report) {
  const { writeReport } = await import('./report.js');
  writeReport();
}
