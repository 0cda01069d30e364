// `npm run bench [-- name ...]`: runs every bench/<name>.bench.ts (or the named ones)
// in turn. Each suite prints its own progress and table and writes its results
// under bench/results/.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface BenchSuite {
  default: (args: string[]) => Promise<void>;
}

const here = dirname(fileURLToPath(import.meta.url));
const all = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.slice(0, -'.bench.ts'.length))
  .sort();
const FLAGS = ['--quick'];
const USAGE = `usage: npm run bench [-- [${all.join('|')} ...] [--quick]]
Runs every benchmark suite (or the named ones) in turn; each prints a table and writes
bench/results/<suite>.json. --quick runs a short pass.`;

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const flags = process.argv.slice(2).filter((a) => a.startsWith('-'));
if (flags.includes('--help') || flags.includes('-h')) {
  console.log(USAGE);
  process.exit(0);
}
const bad = [...flags.filter((f) => !FLAGS.includes(f)), ...wanted.filter((w) => !all.includes(w))];
if (bad.length > 0) {
  console.error(`npm run bench: unknown ${bad[0]!.startsWith('-') ? 'option' : 'suite'} ${bad[0]}\n${USAGE}`);
  process.exit(2);
}
const suites = all.filter((name) => wanted.length === 0 || wanted.includes(name));
for (const name of suites) {
  console.log(`\n=== ${name} ===`);
  const suite = (await import(pathToFileURL(join(here, `${name}.bench.ts`)).href)) as BenchSuite;
  await suite.default(flags);
}
