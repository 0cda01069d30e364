// One run of the instructions suite, under callgrind: an embedded log takes `warm`
// records, then `measured` more, from `clients` concurrent callers, and the process
// exits. Usage: instructions-driver.ts <warm> <measured> <clients> <record bytes>.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReplicatedLog } from '../src/index.js';

const [warm, measured, clients, size] = process.argv.slice(2).map(Number) as [number, number, number, number];
const dir = mkdtempSync(join(tmpdir(), 'raftlog-instructions-'));
try {
  const log = await ReplicatedLog.open({ dataDir: join(dir, 'node') });
  // A different slice of random bytes for every record, as in the product bench.
  const pool = randomBytes(1 << 20);
  const run = async (records: number): Promise<void> => {
    let started = 0;
    const client = async (i: number): Promise<void> => {
      let at = (i * 4099) % (pool.length - size);
      while (started < records) {
        started++;
        at = (at + size + 1) % (pool.length - size);
        await log.append(pool.subarray(at, at + size));
      }
    };
    await Promise.all(Array.from({ length: clients }, (_, i) => client(i)));
  };
  await run(warm);
  await run(measured);
  await log.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
