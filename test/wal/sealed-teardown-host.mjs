// Terminates `count` worker threads, each in the middle of writing a sealed file (as TAIL is
// written while appends are in flight) over and over, at staggered moments; prints
// `survived <count>` if this process lived through all of them. Plain JavaScript on the
// compiled dist/, so that a worker starts in milliseconds.
// Usage: sealed-teardown-host.mjs <base dir> <count>
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

const [base, countArg] = process.argv.slice(2);
if (base === undefined || countArg === undefined) process.exit(2);
setTimeout(() => process.exit(3), 120_000).unref();
const module = new URL('../../dist/wal/sealed-file.js', import.meta.url).href;
const child = `
  const { parentPort, workerData } = require('node:worker_threads');
  import(workerData.module).then(async ({ seal, writeSealed }) => {
    const bytes = seal([1, 2, 3, 4, 5, 6, 7, 8], new Uint8Array(44));
    parentPort.postMessage('writing');
    for (;;) await writeSealed(workerData.dir, 'TAIL', bytes);
  });
`;
const count = Number(countArg);
for (let k = 0; k < count; k++) {
  const dir = join(base, `w${k % 8}`);
  mkdirSync(dir, { recursive: true });
  const worker = new Worker(child, { eval: true, workerData: { dir, module } });
  worker.on('error', (err) => process.stderr.write(`worker ${k} failed: ${String(err)}\n`));
  await new Promise((resolve) => worker.once('message', resolve));
  await new Promise((resolve) => setTimeout(resolve, k % 5));
  await worker.terminate();
}
process.stdout.write(`survived ${count}\n`);
