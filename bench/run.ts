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
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const flags = process.argv.slice(2).filter((a) => a.startsWith('-'));
const suites = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.slice(0, -'.bench.ts'.length))
  .filter((name) => wanted.length === 0 || wanted.includes(name))
  .sort();

if (suites.length === 0) {
  console.error(`no benchmark suite matches ${wanted.join(', ')}`);
  process.exit(2);
}
for (const name of suites) {
  console.log(`\n=== ${name} ===`);
  const suite = (await import(pathToFileURL(join(here, `${name}.bench.ts`)).href)) as BenchSuite;
  await suite.default(flags);
}
