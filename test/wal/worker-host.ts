// Runs workers that end (terminate, process.exit, uncaught throw) while their
// WAL has appends in flight; prints `survived <n>` if this process lived
// through all of them and every directory reopens (its lock was released).
// Usage: worker-host.ts <base dir> <workers>
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Wal } from '../../src/wal/index.js';

const [base, countArg] = process.argv.slice(2);
if (base === undefined || countArg === undefined) process.exit(2);
setTimeout(() => process.exit(3), 120_000).unref();
const modes = ['terminate', 'exit', 'throw'] as const;
const count = Number(countArg);
const batch = 6;
let survived = 0;
// Workers do not inherit the TypeScript loader: register it, then load the child.
const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(new URL('./worker-child.ts', import.meta.url).href)}); })`;

async function one(k: number): Promise<void> {
  const dir = join(base, `w${k}`);
  const mode = modes[k % modes.length]!;
  const worker = new Worker(boot, { eval: true, workerData: { dir, mode } });
  worker.on('message', () => void worker.terminate());
  worker.on('error', (err) => {
    if (mode !== 'throw') process.stderr.write(`worker ${k} (${mode}) failed: ${String(err)}\n`);
  });
  await new Promise((resolve) => worker.once('exit', resolve));
  const wal = await Wal.open(dir);
  if (wal.lastIndex < 8) throw new Error(`worker ${k}: only ${wal.lastIndex} entries after reopen`);
  await wal.close();
  survived++;
}

for (let k = 0; k < count; k += batch) {
  const runs: Promise<void>[] = [];
  for (let j = k; j < Math.min(count, k + batch); j++) runs.push(one(j));
  await Promise.all(runs);
}
process.stdout.write(`survived ${survived}\n`);
