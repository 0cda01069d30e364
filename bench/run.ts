// `npm run bench [-- name ...]`: runs every bench/<name>.bench.ts (or the named ones)
// in turn. Each suite prints its own progress and table and writes its results
// under bench/results/.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { COMMON_FLAGS, SuiteUsageError, normalizeArgs, profileDirOf, type SuiteOption } from './suite.js';

export interface BenchSuite {
  default: (args: string[]) => Promise<void>;
  /** True when the suite honours --profile. */
  profiles?: boolean;
  /** Options of this suite alone that take a value (`--name V` or `--name=V`). */
  options?: Record<string, SuiteOption>;
}

const here = dirname(fileURLToPath(import.meta.url));
const all = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.slice(0, -'.bench.ts'.length))
  .sort();
const load = async (name: string): Promise<BenchSuite> => (await import(pathToFileURL(join(here, `${name}.bench.ts`)).href)) as BenchSuite;

function usage(suites: Record<string, BenchSuite>): string {
  const own = Object.entries(suites).flatMap(([name, s]) => Object.entries(s.options ?? {}).map(([flag, o]) => `  ${name}: ${flag} ${o.help}`));
  return `usage: npm run bench [-- [${all.join('|')} ...] [report] [--quick] [--profile] [--profile-dir=DIR] [suite options]]
Runs every benchmark suite (or the named ones) in turn; each prints a table with the
machine it ran on and writes bench/results/<suite>.json; a run of every suite then
rebuilds docs/performance.md. --quick runs a short pass.
--profile (cluster, micro, resp, wal): records a CPU profile of each system measured into DIR
(default bench/results/profiles/) and prints, per system, the functions with the most
self time and the shares of idle, GC and program time.
report: after the named suites (alone: without running any), writes docs/performance.md
from bench/results/*.json.${own.length > 0 ? `\nSuite options (--name V or --name=V):\n${own.join('\n')}` : ''}`;
}

const argv = process.argv.slice(2);
const fail = (message: string, suites: Record<string, BenchSuite>): never => {
  console.error(`npm run bench: ${message}\n${usage(suites)}`);
  process.exit(2);
};
if (argv.includes('--help') || argv.includes('-h')) {
  const every: Record<string, BenchSuite> = {};
  for (const name of all) every[name] = await load(name);
  console.log(usage(every));
  process.exit(0);
}
// The suites named come first, so that their own options (and those options' values) are known.
const report = argv.includes('report');
const named = argv.filter((a) => all.includes(a));
const toRun = report && named.length === 0 ? [] : named.length > 0 ? named : all;
// A run of every suite leaves the page in step with its results.
const rebuildPage = report || named.length === 0;
const suites: Record<string, BenchSuite> = {};
for (const name of toRun) suites[name] = await load(name);
const options: Record<string, SuiteOption> = {};
for (const s of Object.values(suites)) Object.assign(options, s.options ?? {});
const rest = argv.filter((a) => !all.includes(a) && a !== 'report');
let flags: string[] = [];
try {
  // Whatever does not start with '-' and is no value of an option is a suite name nobody knows.
  const stray = rest.find((a, i) => !a.startsWith('-') && !(i > 0 && rest[i - 1]! in options && !rest[i - 1]!.includes('=')));
  if (stray !== undefined) {
    // `cluster --rounds 2`: the mistake is the option this suite does not take, not a suite named 2.
    normalizeArgs(rest.slice(0, rest.indexOf(stray)), options);
    fail(`unknown suite ${stray}`, suites);
  }
  flags = normalizeArgs(rest, options);
} catch (err) {
  if (!(err instanceof SuiteUsageError)) throw err;
  fail(err.message, suites);
}
for (const name of toRun) {
  console.log(`\n=== ${name} ===`);
  const suite = suites[name]!;
  if (profileDirOf(flags) !== null && suite.profiles !== true) console.log(`(${name} does not record CPU profiles; --profile is ignored for it)`);
  const own = Object.keys(suite.options ?? {});
  const theirs = flags.filter((f) => COMMON_FLAGS.includes(f) || f.startsWith('--profile-dir=') || own.some((o) => f.startsWith(`${o}=`)));
  try {
    await suite.default(theirs);
  } catch (err) {
    if (!(err instanceof SuiteUsageError)) throw err;
    fail(`${name}: ${err.message}`, suites);
  }
}
if (rebuildPage) {
  const { writeReport } = await import('./report.js');
  writeReport();
}
