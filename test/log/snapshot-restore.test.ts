// The order in which a received snapshot reaches the state machine: restored when the
// storage reaches its install, before the storage records it, with the entries committed
// after it held until then; and never once the node has stopped.
import { describe, expect, it } from 'vitest';
import type { Entry, Snapshot } from '../../src/raft/types.js';
import { SnapshotRestore } from '../../src/log/snapshot-restore.js';

const snap = (index: number): Snapshot => ({ meta: { index, term: 1, conf: { voters: [1], learners: [] } }, data: Buffer.from(`spool-${index}`) });
const entry = (index: number): Entry => ({ index, term: 1, type: 0, data: new Uint8Array(0) }) as Entry;

function harness() {
  const calls: string[] = [];
  let installed = snap(0);
  let stopped = false;
  const failed: unknown[] = [];
  const r = new SnapshotRestore({
    installedSnapshot: () => installed,
    restore: async (s) => {
      calls.push(`restore ${s.meta.index}`);
      return () => calls.push(`restored ${s.meta.index}`);
    },
    applyEntries: (es) => calls.push(`apply ${es.map((e) => e.index).join(',')}`),
    stopped: () => stopped,
    stopReason: () => new Error('closed'),
    onDrained: () => calls.push('drained'),
    fail: (err) => failed.push(err),
  });
  /** What the storage does with a received snapshot: asks first, then installs it. */
  const install = async (s: Snapshot): Promise<void> => {
    await r.beforeInstall(s);
    installed = s;
  };
  return { r, calls, failed, install, stop: () => (stopped = true) };
}

/** `s` handed over as a Ready hands it: its install starts once `go()` lets the storage get there. */
function handedOver(s: Snapshot) {
  const h = harness();
  let go = (): void => undefined;
  const installed = new Promise<void>((resolve) => (go = resolve)).then(() => h.install(s));
  installed.catch(() => undefined); // asserted by the tests that expect it to fail
  h.r.add(s, installed);
  return { h, go, installed };
}

const turns = async (n = 10): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

describe('SnapshotRestore', () => {
  it('restores a snapshot when the storage reaches its install, and applies the entries held behind it after it', async () => {
    const { h, go, installed } = handedOver(snap(10));
    expect(h.r.holds([entry(11)])).toBe(true);
    await turns();
    expect(h.calls).toEqual([]); // nothing before the storage gets there
    go();
    await installed;
    await turns();
    expect(h.calls).toEqual(['restore 10', 'restored 10', 'apply 11', 'drained']);
    expect(h.failed).toEqual([]);
  });

  it('a node stopped before the storage reaches the install: the install is refused and the state machine is not called', async () => {
    const { h, go, installed } = handedOver(snap(10));
    await turns();
    h.stop();
    go();
    await expect(installed).rejects.toThrow('closed');
    await turns();
    expect(h.calls.filter((c) => c.startsWith('restore'))).toEqual([]);
  });
});
