// A backup's index is the point its state describes: never one older than the state the
// state machine holds.
import { describe, expect, it } from 'vitest';
import { takeBackup } from '../../src/admin/backup.js';
import { readAll } from '../../src/log/state-machine.js';
import type { LogStatus } from '../../src/log/status.js';

describe('takeBackup', () => {
  it('waits out a snapshot being installed, whose state the state machine may hold before the log reports it applied', async () => {
    // The leader's snapshot at 10 is restored into the state machine; its install is under way,
    // and the log still reports 5 applied. A barrier answered from before it resolved at once.
    let state = 'state at 10';
    const statuses: Array<Pick<LogStatus, 'applied' | 'snapshotIndex'>> = [
      { applied: 5, snapshotIndex: 10 },
      { applied: 10, snapshotIndex: 10 },
    ];
    let barriers = 0;
    const log = {
      barrier: async (): Promise<void> => {
        barriers++;
      },
      status: () => statuses[Math.min(barriers, statuses.length) - 1] as LogStatus,
    };
    const sm = {
      apply: () => undefined,
      snapshot: () => Buffer.from(state),
      restore: async () => undefined,
    };
    const backup = await takeBackup(log, sm);
    state = 'changed since';
    expect(backup.index).toBe(10);
    expect(Buffer.from(await readAll(backup.chunks, 1024)).toString()).toBe('state at 10');
    expect(barriers).toBe(2);
  });
});
