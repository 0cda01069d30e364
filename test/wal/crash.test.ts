// Crash safety: a child process appends continuously (and now and then
// overwrites its own recent suffix with a higher term, or compacts), printing
// each call before it is made and each acknowledgement after it is durable.
// We SIGKILL it at random moments, reopen, and check that the log is exactly
// the result of some prefix of the calls (possibly ending inside an
// unacknowledged call) that includes every acknowledged one: acknowledged
// data survives, byte-identical, overwrites included, and the log is
// contiguous.
import { spawn } from 'node:child_process';
import { cpSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Wal } from '../../src/wal/index.js';
import { cleanTempDirs, payload, tempDir } from './helpers.js';
import { testSeed } from '../seeded.js';
import { checkTail } from '../../src/wal/tail.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const KILLS = Number(process.env.WAL_CRASH_KILLS ?? 20);
const SMALL_KILLS = Number(process.env.WAL_CRASH_SMALL_KILLS ?? 6);

afterEach(cleanTempDirs);

interface Call {
  first: number;
  last: number;
  term: number;
}

interface Run {
  calls: Call[];
  /** Highest call number acknowledged (calls are numbered from 1). */
  acked: number;
  commit: number;
}

/** The calls and acknowledgements the child wrote to its journal, line by line, before it died. */
function readJournal(path: string): Run {
  const run: Run = { calls: [], acked: 0, commit: 0 };
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const [what, a, b, c, d] = line.split(' ');
    if (what === 'call') {
      if (Number(a) !== run.calls.length + 1) throw new Error(`the child's calls are out of order: call ${a} is line number ${run.calls.length + 1}`);
      run.calls.push({ first: Number(b), last: Number(c), term: Number(d) });
    } else if (what === 'ack') {
      run.acked = Math.max(run.acked, Number(a));
      run.commit = Math.max(run.commit, Number(b));
    }
  }
  return run;
}

/** Runs the child until `delayMs` after it is ready, then SIGKILLs it. */
function runAndKill(dir: string, journal: string, seed: number, delayMs: number, segmentBytes: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join('test', 'wal', 'crash-child.ts'), dir, String(seed), journal, String(segmentBytes)], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let killed = false;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (!killed && chunk.includes('ready')) {
        killed = true;
        setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`crash child exited with ${code}: ${stderr}`));
      else {
        try {
          resolve(readJournal(journal));
        } catch (err) {
          reject(err as Error);
        }
      }
    });
  });
}

/** The log as index -> term, from first to last. */
interface LogShape {
  first: number;
  last: number;
  terms: Map<number, number>;
}

function shapeOf(wal: Wal): LogShape {
  const terms = new Map<number, number>();
  for (let i = wal.firstIndex; i <= wal.lastIndex; i++) terms.set(i, wal.term(i));
  return { first: wal.firstIndex, last: wal.lastIndex, terms };
}

/**
 * The points p such that the reopened log equals `before` after calls 1..p,
 * p >= the last acknowledged call; p may end inside a call that was not
 * acknowledged (p = 7.5: a torn write kept the first whole records of call 8,
 * which is as safe as losing them: they were never acknowledged).
 */
function matchingPrefixes(before: LogShape, run: Run, after: LogShape): number[] {
  const terms = new Map(before.terms);
  let last = before.last;
  const matches: number[] = [];
  const equal = (expected: (i: number) => number | undefined): boolean => {
    for (let i = after.first; i <= after.last; i++) if (expected(i) !== after.terms.get(i)) return false;
    return true;
  };
  for (let p = 0; p <= run.calls.length; p++) {
    if (p > 0) {
      const c = run.calls[p - 1]!;
      for (let i = c.first; i <= last; i++) terms.delete(i);
      for (let i = c.first; i <= c.last; i++) terms.set(i, c.term);
      last = c.last;
    }
    if (p < run.acked) continue;
    if (last === after.last && equal((i) => terms.get(i))) matches.push(p);
    const torn = run.calls[p];
    if (torn !== undefined && torn.first <= after.last && after.last < torn.last && equal((i) => (i >= torn.first ? torn.term : terms.get(i))))
      matches.push(p + 0.5);
  }
  return matches;
}

/** For a failure: how the reopened log differs from the state after each candidate prefix. */
function explain(before: LogShape, run: Run, after: LogShape): string {
  const terms = new Map(before.terms);
  let last = before.last;
  const out: string[] = [`before [${before.first}, ${before.last}], after [${after.first}, ${after.last}], acked ${run.acked} of ${run.calls.length}`];
  for (let p = 0; p <= run.calls.length; p++) {
    if (p > 0) {
      const c = run.calls[p - 1]!;
      for (let i = c.first; i <= last; i++) terms.delete(i);
      for (let i = c.first; i <= c.last; i++) terms.set(i, c.term);
      last = c.last;
    }
    if (p < run.acked) continue;
    let diff = -1;
    for (let i = after.first; i <= Math.max(after.last, last) && diff < 0; i++) if (terms.get(i) !== after.terms.get(i)) diff = i;
    const c = run.calls[p - 1];
    out.push(
      `  p=${p} call [${c?.first}, ${c?.last}] t${c?.term} -> last ${last}; first difference at ${diff}: expected t${terms.get(diff)} got t${after.terms.get(diff)}`,
    );
  }
  return out.join('\n');
}

/**
 * SIGKILLs the child `kills` times, writing segments of `segmentBytes`, and checks every reopened log.
 * Small segments rotate at nearly every append, so kills fall around rotations and TAIL's writes:
 * a TAIL that claimed more than a crash can leave would make a reopen fail with WAL_CORRUPT.
 */
async function crashes(kills: number, segmentBytes: number, seed: number): Promise<void> {
  let x = seed || 1;
  const rand = (n: number): number => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x % n;
  };
  const dir = tempDir();
  const journals = tempDir();
  let before: LogShape = { first: 1, last: 0, terms: new Map() };
  let calls = 0;
  let acked = 0;
  let torn = 0;
  let partial = 0;
  let overwrites = 0;
  let claims = 0;
  for (let k = 0; k < kills; k++) {
    const run = await runAndKill(dir, join(journals, `run-${k}`), seed * 1000 + k, 30 + rand(400), segmentBytes);
    calls += run.calls.length;
    acked += run.acked;
    overwrites += run.calls.filter((c, i) => i > 0 && c.first <= run.calls[i - 1]!.last).length;
    const wal = await Wal.open(dir, { segmentBytes, cacheBytes: 0 }).catch((err: unknown) => {
      const keep = join(tmpdir(), `raftlog-crash-failure-${seed}`);
      cpSync(dir, keep, { recursive: true });
      console.log(`kill ${k}: open failed; the WAL directory is kept in ${keep}`);
      throw err;
    });
    if (wal.repair !== null) torn++;
    // A claim on a segment still in the log (not one released since) was checked by this open.
    if ((await checkTail(dir)).keep !== null) claims++;
    try {
      const after = shapeOf(wal);
      const matches = matchingPrefixes(before, run, after);
      if (matches.length === 0) console.log(explain(before, run, after));
      if (matches.length > 0 && matches.every((p) => p % 1 !== 0)) partial++;
      expect(
        matches.length,
        `kill ${k}: the reopened log [${after.first}, ${after.last}] is no prefix of the ${run.calls.length} calls made (${run.acked} acknowledged)`,
      ).toBeGreaterThan(0);
      expect(wal.hardState.commit).toBeGreaterThanOrEqual(run.commit);
      expect(wal.firstIndex - 1).toBe(wal.snapshot?.index ?? 0);
      const all = wal.entriesSync(wal.firstIndex, wal.lastIndex + 1);
      expect(all.length).toBe(wal.lastIndex - wal.firstIndex + 1);
      all.forEach((e, i) => {
        expect(e.index).toBe(wal.firstIndex + i);
        expect(Buffer.from(e.data).equals(Buffer.from(payload(e.index, e.term))), `entry ${e.index}`).toBe(true);
      });
      before = after;
    } finally {
      await wal.close();
    }
  }
  console.log(
    `crash test: ${kills} kills of segments of ${segmentBytes} bytes, ${calls} appends made, ${acked} acknowledged, ${overwrites} overwrites, ${torn} torn tails repaired, ${partial} logs ending inside an unacknowledged append, ${claims} reopens that checked a claim of TAIL`,
  );
  expect(acked).toBeGreaterThan(0);
  expect(claims).toBeGreaterThan(0);
}

describe('crash safety', () => {
  it(`keeps every acknowledged write, overwrites included, across ${KILLS} SIGKILLs`, async () => {
    await crashes(KILLS, 64 * 1024, testSeed(`crash test (kill count WAL_CRASH_KILLS=${KILLS})`));
  }, 180_000);

  it(`never refuses a log killed around rotations of small segments (${SMALL_KILLS} SIGKILLs)`, async () => {
    await crashes(SMALL_KILLS, 4096, testSeed(`crash test of small segments (kill count WAL_CRASH_SMALL_KILLS=${SMALL_KILLS})`));
  }, 180_000);
});
