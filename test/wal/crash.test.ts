// Crash safety: a child process appends continuously and reports each
// acknowledged index; we SIGKILL it at random moments, reopen, and check that
// every acknowledged entry is there, byte-identical, in a contiguous log.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Wal } from '../../src/wal/index.js';
import { cleanTempDirs, payload, tempDir } from './helpers.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const KILLS = Number(process.env.WAL_CRASH_KILLS ?? 20);

afterEach(cleanTempDirs);

interface Run {
  acked: number;
  commit: number;
}

/** Runs the child until `delayMs` after it is ready, then SIGKILLs it. */
function runAndKill(dir: string, seed: number, delayMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join('test', 'wal', 'crash-child.ts'), dir, String(seed)], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const run: Run = { acked: -1, commit: 0 };
    let buffered = '';
    let stderr = '';
    let killed = false;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const [what, a, b] = buffered.slice(0, nl).split(' ');
        buffered = buffered.slice(nl + 1);
        if (what === 'ready' && !killed) {
          killed = true;
          setTimeout(() => child.kill('SIGKILL'), delayMs);
        } else if (what === 'ack') {
          run.acked = Math.max(run.acked, Number(a));
          run.commit = Math.max(run.commit, Number(b));
        }
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`crash child exited with ${code}: ${stderr}`));
      else resolve(run);
    });
  });
}

describe('crash safety', () => {
  it(`keeps every acknowledged entry across ${KILLS} SIGKILLs`, async () => {
    const seed = Number(process.env.WAL_SEED ?? Date.now() % 1_000_000);
    console.log(`crash test seed ${seed} (replay with WAL_SEED=${seed}; kill count WAL_CRASH_KILLS=${KILLS})`);
    let x = seed || 1;
    const rand = (n: number): number => {
      x = (x * 1103515245 + 12345) % 2147483648;
      return x % n;
    };
    const dir = tempDir();
    let everAcked = 0;
    let torn = 0;
    for (let k = 0; k < KILLS; k++) {
      const run = await runAndKill(dir, seed * 1000 + k, 30 + rand(400));
      everAcked = Math.max(everAcked, run.acked);
      const wal = await Wal.open(dir, { segmentBytes: 64 * 1024, cacheBytes: 0 });
      if (wal.repair !== null) torn++;
      try {
        expect(wal.lastIndex, `kill ${k}`).toBeGreaterThanOrEqual(everAcked);
        expect(wal.hardState.commit).toBeGreaterThanOrEqual(run.commit);
        expect(wal.firstIndex - 1).toBe(wal.snapshot?.index ?? 0);
        const all = wal.entriesSync(wal.firstIndex, wal.lastIndex + 1);
        expect(all.length).toBe(wal.lastIndex - wal.firstIndex + 1);
        all.forEach((e, i) => {
          expect(e.index).toBe(wal.firstIndex + i);
          expect(Buffer.from(e.data).equals(Buffer.from(payload(e.index, 1))), `entry ${e.index}`).toBe(true);
        });
      } finally {
        await wal.close();
      }
    }
    console.log(`crash test: ${KILLS} kills, ${everAcked} entries acknowledged, ${torn} torn tails repaired`);
    expect(everAcked).toBeGreaterThan(0);
  }, 180_000);
});
