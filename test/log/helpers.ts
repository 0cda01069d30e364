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
