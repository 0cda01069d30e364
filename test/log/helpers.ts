import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addon } from '../../src/wal/addon.js';
import { readAll, type LogEntry, type StateMachine } from '../../src/log/state-machine.js';

export function tempDir(prefix = 'raftlog-log-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Remembers every record it applies, so tests can compare what each node saw. */
export class RecordingMachine implements StateMachine<number> {
  applied: Array<{ index: number; offset: number; data: string }> = [];
  restoredFrom: number | null = null;

  apply(e: LogEntry): number {
    this.applied.push({ index: e.index, offset: e.offset, data: Buffer.from(e.data).toString() });
    return this.applied.length;
  }

  snapshot(): Uint8Array {
    return Buffer.from(JSON.stringify(this.applied));
  }

  async restore(data: AsyncIterable<Uint8Array>, meta: { index: number }): Promise<void> {
    this.applied = JSON.parse(Buffer.from(await readAll(data)).toString()) as RecordingMachine['applied'];
    this.restoredFrom = meta.index;
  }
}

export const enc = (s: string): Uint8Array => Buffer.from(s);

/** The descriptors this process holds on files under `dir` (Linux; [] elsewhere). */
export function fdsUnder(dir: string): string[] {
  if (!existsSync('/proc/self/fd')) return [];
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir)) out.push(target);
    } catch {
      // closed while listed (the listing's own descriptor)
    }
  }
  return out;
}

/**
 * Appends `n` records one event-loop turn apart, so that each becomes an entry of its
 * own (the appends of one turn share one), and waits for them all.
 */
export async function appendInTurns<T>(log: { append(data: Uint8Array): Promise<T> }, prefix: string, n: number): Promise<T[]> {
  const acks: Array<Promise<T>> = [];
  for (let i = 0; i < n; i++) {
    acks.push(log.append(enc(`${prefix}${i}`)));
    await new Promise((r) => setImmediate(r));
  }
  return Promise.all(acks);
}

/** A record's position (index, offset) as a map key. */
export const pos = (r: { index: number; offset: number }): string => `${r.index}.${r.offset}`;

import { freePortRun, freePorts } from '../../src/cli/ports.js';
export { freePortRun, freePorts };

/** Polls `cond` every 20 ms until it holds, or fails after `ms`. */
export async function waitFor(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Appends through whichever node leads, again if leadership changes under the append:
 * for tests that need the cluster to commit something, not a particular attempt to succeed.
 */
export async function appendSurely<R>(
  logs: ReadonlyArray<{ status(): { role: string }; append(data: Uint8Array): Promise<{ index: number; result: R }> }>,
  data: Uint8Array,
  attempts = 10,
): Promise<{ index: number; result: R }> {
  for (let attempt = 1; ; attempt++) {
    await waitFor('a leader', () => logs.some((l) => l.status().role === 'leader'), 15_000);
    try {
      return await logs.find((l) => l.status().role === 'leader')!.append(data);
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (attempt >= attempts || !['APPEND_OUTCOME_UNKNOWN', 'APPEND_NOT_COMMITTED', 'NO_LEADER', 'TIMEOUT', 'NOT_LEADER'].includes(code)) throw err;
    }
  }
}

/** Waits for one of `members` to lead, and returns it. */
export async function leaderAmong<M extends { log: { status(): { role: string } } | null }>(members: Iterable<M>): Promise<M> {
  const all = [...members];
  let found: M | undefined;
  await waitFor('a leader', () => {
    found = all.find((m) => m.log?.status().role === 'leader');
    return found !== undefined;
  });
  return found!;
}

/** Runs a TypeScript file of this folder in a child Node (through tsx) to its end: its exit code and output. */
export async function runChild(file: string, args: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL(file, import.meta.url).pathname, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  return { code, stdout, stderr };
}

/** Every file under `dir`, with a digest of its bytes. */
export function digests(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of readdirSync(dir, { recursive: true }) as string[])
    if (statSync(join(dir, n)).isFile())
      out[n] = createHash('sha256')
        .update(readFileSync(join(dir, n)))
        .digest('hex');
  return out;
}

/** A write cut short past the WAL's last record, which the WAL's open cuts off. */
export function tornTail(dir: string): void {
  const walDir = join(dir, 'wal');
  const last = addon().scan(walDir).segments.at(-1)!;
  const fd = openSync(join(walDir, last.name), 'r+');
  writeSync(fd, Buffer.alloc(40, 0x5a), 0, 40, last.end);
  closeSync(fd);
}
