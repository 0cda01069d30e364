import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readAll, type LogEntry, type StateMachine } from '../../src/log/state-machine.js';

export function tempDir(prefix = 'raftlog-log-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Remembers every record it applies, so tests can compare what each node saw. */
export class RecordingMachine implements StateMachine<number> {
  applied: Array<{ index: number; data: string }> = [];
  restoredFrom: number | null = null;

  apply(e: LogEntry): number {
    this.applied.push({ index: e.index, data: Buffer.from(e.data).toString() });
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

export { freePorts } from '../../src/cli/ports.js';

/** Polls `cond` every 20 ms until it holds, or fails after `ms`. */
export async function waitFor(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
