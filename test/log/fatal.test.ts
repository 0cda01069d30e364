// A real disk failure under a real node (the faultfs library fails the WAL's
// fdatasync): open always settles, a running node stops visibly, and the same
// process can close and reopen the directory with every acknowledged record.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runWithFaults } from '../fault/run-with-faults.js';
import { RespClient } from '../kv/resp-client.js';

const CHILD = new URL('./fatal-child.ts', import.meta.url).pathname;
const temps: string[] = [];
afterEach(() => {
  for (const t of temps.splice(0)) rmSync(t, { recursive: true, force: true });
});

async function run(rules: Parameters<typeof runWithFaults>[2]['rules'], appends: number, snapshotEvery?: number): Promise<Record<string, unknown>> {
  const root = mkdtempSync(join(tmpdir(), 'raftlog-fatal-'));
  temps.push(root);
  const r = await runWithFaults(CHILD, [join(root, 'data'), String(appends), ...(snapshotEvery === undefined ? [] : [String(snapshotEvery)])], {
    root,
    rules,
    log: join(root, 'ops.log'),
  });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

describe('a node on a failing disk', () => {
  it('an open whose first fdatasync fails rejects with a code (it never hangs)', async () => {
    // Segment 1's header, synced as the WAL directory is made (under a temporary name).
    expect(await run([{ op: 'fdatasync', glob: '*.wal', errno: 'EIO', times: 0 }], 5)).toEqual({ open: 'WAL_IO' });
    // The node's first write, made in the open (a node alone campaigns before open returns).
    expect(await run([{ op: 'fdatasync', glob: '*/wal/*.wal', errno: 'EIO', times: 0 }], 5)).toEqual({ open: 'LOG_FATAL' });
  });

  it('an fdatasync that fails later stops the node: LOG_FATAL, role fatal; close and reopen keep every acknowledged record', async () => {
    const out = await run([{ op: 'fdatasync', glob: '*.wal', after: 8, times: 1, errno: 'EIO' }], 40);
    expect(out).toMatchObject({ open: 'ok', failure: 'LOG_FATAL', role: 'fatal', fatal: 'LOG_FATAL', reopened: true });
    expect(out['acked']).toBeGreaterThan(0);
  });

  it('a snapshot the disk has no room for stops the node: LOG_FATAL, role fatal; close and reopen keep every acknowledged record', async () => {
    for (const rule of [
      { op: 'write', glob: '*/snapshots/*.tmp', after: 1, times: 1, errno: 'ENOSPC' },
      { op: 'fsync', glob: '*/snapshots/*.tmp', after: 1, times: 1, errno: 'EIO' },
      { op: 'rename', glob: '*/snapshots/*.tmp', after: 1, times: 1, errno: 'EIO' },
    ] as const) {
      const out = await run([rule], 40, 5);
      expect(out, rule.op).toMatchObject({ open: 'ok', role: 'fatal', fatal: 'LOG_FATAL', reopened: true });
      // The snapshot is written while later records apply: it may fail after the last append was acknowledged.
      expect([undefined, 'LOG_FATAL'], rule.op).toContain(out['failure']);
      expect(out['acked'], rule.op).toBeGreaterThan(5);
    }
  });

  it('raftlog serve exits 1 when its node stops, so a supervisor restarts it', async () => {
    const root = mkdtempSync(join(tmpdir(), 'raftlog-fatal-'));
    temps.push(root);
    const main = new URL('../../src/cli/main.ts', import.meta.url).pathname;
    // The client connects once the node says it is up, at the port it names (port 0: one that
    // no other process can take between a check and the bind). Polling the port for a while
    // instead gave a start slowed by a loaded machine (up to 14 s seen) a deadline.
    let up: (port: number) => void = () => undefined;
    const upAt = new Promise<number>((resolve) => (up = resolve));
    const running = runWithFaults(main, ['serve', '--id', '1', '--data', join(root, 'data'), '--resp', '127.0.0.1:0'], {
      root,
      rules: [{ op: 'fdatasync', glob: '*.wal', after: 10, times: 0, errno: 'EIO' }],
      log: join(root, 'ops.log'),
      onStdout: (out) => {
        const m = /^node 1 up: .*, resp 127\.0\.0\.1:(\d+)$/m.exec(out);
        if (m !== null) up(Number(m[1]));
      },
      // Killed before the test's own timeout: a node that never stops is then reported with
      // what it printed and what the client saw, not as a bare timeout.
      timeoutMs: 45_000,
    });
    // What the test saw, and when, for the failure message.
    const started = Date.now();
    const seen: string[] = [];
    const saw = (what: string): void => void seen.push(`${Date.now() - started} ms: ${what}`);
    const port = await Promise.race([upAt, running.then(() => undefined)]);
    saw(port === undefined ? 'exited without saying it was up' : `up, resp port ${port}`);
    const client = port === undefined ? undefined : await RespClient.connect(port).catch((e: Error) => void saw(`connect failed: ${e.message}`));
    // Writes until the node stops answering (its disk fails after a few syncs).
    for (let i = 0; client !== undefined && i < 100; i++) {
      const reply = await Promise.race([client.call('SET', `k${i}`, 'v').catch((e: Error) => e), running.then(() => 'exited')]);
      if (reply === 'exited' || reply instanceof Error) {
        saw(`SET ${i}: ${reply instanceof Error ? reply.message : reply}`);
        break;
      }
      if (i === 99) saw('all 100 SETs answered');
    }
    client?.close();
    const r = await running;
    saw(`exit ${r.code}, signal ${r.signal}`);
    const report = `${seen.join('\n')}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
    expect(r.code, report).toBe(1);
    expect(r.stderr, report).toMatch(/node 1 stopped: LOG_FATAL/);
  });
});
