// A worker thread that keeps appends in flight and then ends abruptly, the
// way workerData.mode says: 'exit' (process.exit in the worker), 'throw' (an
// uncaught exception) or 'terminate' (it tells the host, which terminates it).
import { parentPort, workerData } from 'node:worker_threads';
import { Wal } from '../../src/wal/index.js';
import { range } from './helpers.js';

const { dir, mode } = workerData as { dir: string; mode: 'exit' | 'throw' | 'terminate' };
const wal = await Wal.open(dir, { segmentBytes: 16 * 1024 });
let next = 1;
let acked = 0;
function pump(): void {
  while (next - acked < 64) {
    const i = next++;
    wal.append(range(i, i + 1, 1)).then(
      () => {
        acked = Math.max(acked, i);
        if (acked === 8) end();
        pump();
      },
      () => undefined, // never settles or fails once the thread is gone
    );
  }
}
function end(): void {
  if (mode === 'exit') process.exit(0);
  if (mode === 'throw')
    setImmediate(() => {
      throw new Error('worker ends with appends in flight');
    });
  if (mode === 'terminate') parentPort!.postMessage('busy');
}
pump();
