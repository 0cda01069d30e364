// How `raftlog serve` stops its parts: the RESP port first, the log whole, the admin endpoint
// last, so that a node going down says why on /health until its log is closed.
import { afterEach, expect, it, vi } from 'vitest';
import { serveAdmin } from '../../src/admin/server.js';
import { main, stopNode } from '../../src/cli/serve.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { KvStateMachine, encodeCommand } from '../../src/kv/index.js';
import { RecordingMachine, enc, tempDir, waitFor } from '../log/helpers.js';
import { within } from '../transport/helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('a node stopped by LOG_FATAL answers /health 503 with the reason while its log closes, then closes the admin endpoint', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const sm = new RecordingMachine();
  const log = await ReplicatedLog.open<number>({ dataDir: t.dir, stateMachine: sm });
  cleanups.push(() => log.close());
  const admin = await serveAdmin({ log: log as ReplicatedLog<unknown>, address: '127.0.0.1:0' });
  cleanups.push(() => admin.close());
  sm.apply = () => {
    throw new Error('the disk under the state machine is gone');
  };
  await log.append(enc('x')).catch(() => undefined);
  await waitFor('the node to stop', () => log.status().role === 'fatal');

  const order: string[] = [];
  let letLogClose = (): void => undefined;
  const held = new Promise<void>((r) => (letLogClose = r));
  const stopping = stopNode({
    resp: { close: async () => void order.push('resp') },
    log: {
      close: async () => {
        order.push('log');
        await held;
        await log.close();
      },
    },
    admin: {
      close: async () => {
        order.push('admin');
        await admin.close();
      },
    },
  });
  await waitFor('the log to be closing', () => order.includes('log'));
  const res = await fetch(`http://${admin.address}/health`);
  expect(res.status).toBe(503);
  expect(await res.json()).toMatchObject({ health: false, reason: 'LOG_FATAL', message: expect.stringMatching(/the disk under the state machine is gone/) });
  letLogClose();
  await stopping;
  expect(order).toEqual(['resp', 'log', 'admin']);
  await expect(fetch(`http://${admin.address}/health`)).rejects.toThrow();
});

it('the admin endpoint closes even when closing the log fails', async () => {
  const closed: string[] = [];
  const failure = new Error('close failed');
  await expect(
    stopNode({
      resp: null,
      log: { close: () => Promise.reject(failure) },
      admin: { close: async () => void closed.push('admin') },
    }),
  ).rejects.toBe(failure);
  expect(closed).toEqual(['admin']);
});

it('raftlog serve keeps its SIGHUP, SIGINT and SIGTERM handlers while its log closes: a second signal does not cut the close short', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const signals = (): number[] => [process.listenerCount('SIGHUP'), process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')];
  const before = signals();
  // A signal with no handler meets the default action, which kills the process mid-close.
  let duringClose: number[] | undefined;
  const close = ReplicatedLog.prototype.close;
  const spy = vi.spyOn(ReplicatedLog.prototype, 'close').mockImplementation(function (this: ReplicatedLog<unknown>) {
    duringClose ??= signals();
    return close.call(this);
  });
  cleanups.push(() => spy.mockRestore());
  const said = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  cleanups.push(() => said.mockRestore());
  const running = main(['--id', '1', '--data', t.dir, '--log-level', 'silent']);
  await waitFor('the node to be up', () => said.mock.calls.some((c) => /^node 1 up/.test(String(c[0]))), 60_000);
  process.emit('SIGTERM');
  expect(await running).toBe(0);
  expect(duringClose).toEqual(before.map((n) => n + 1));
  expect(signals()).toEqual(before);
}, 90_000);

it('a SIGTERM while the node opens (its state machine restoring a snapshot) aborts the open: serve releases the directory and exits 0', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  await withSnapshot(t.dir);
  // A restore that does not end (a large state machine's takes minutes): only a signal ends this start.
  let restoring = false;
  const restore = vi.spyOn(KvStateMachine.prototype, 'restore').mockImplementation(() => {
    restoring = true;
    return new Promise<void>(() => undefined);
  });
  cleanups.push(() => restore.mockRestore());
  const said = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  cleanups.push(() => said.mockRestore());
  const running = main(['--id', '1', '--data', t.dir, '--log-level', 'silent']);
  running.catch(() => undefined);
  await waitFor('the open to restore the snapshot', () => restoring, 60_000);
  // Unhandled here, the signal's default action ended the process, its log not closed.
  process.emit('SIGTERM');
  expect(await within('serve to end after the SIGTERM', running, 60_000)).toBe(0);
  expect(said.mock.calls.map((c) => String(c[0]))).toEqual(['node 1 stopped before it was up']);
  restore.mockRestore();
  // The directory's lock was released: the node opens again, with the snapshot's state.
  const kv = new KvStateMachine();
  const again = await ReplicatedLog.open<unknown>({ dataDir: t.dir, stateMachine: kv as never });
  await again.close();
  expect(kv.get(Buffer.from('k0'))?.toString()).toBe('v');
}, 240_000);

it('a SIGHUP while the node opens does not end it: it is answered once the node is up', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  await withSnapshot(t.dir);
  // The restore waits for the signal to have been sent.
  let restoring = false;
  let release: () => void = () => undefined;
  const released = new Promise<void>((r) => (release = r));
  const kvRestore = KvStateMachine.prototype.restore;
  const restore = vi.spyOn(KvStateMachine.prototype, 'restore').mockImplementation(async function (this: KvStateMachine, data) {
    restoring = true;
    await released;
    return kvRestore.call(this, data);
  });
  cleanups.push(() => restore.mockRestore());
  const said = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  cleanups.push(() => said.mockRestore());
  const logged: string[] = [];
  const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => logged.push(String(chunk)) > 0);
  cleanups.push(() => stderr.mockRestore());
  const running = main(['--id', '1', '--data', t.dir, '--log-level', 'warn']);
  running.catch(() => undefined);
  await waitFor('the open to restore the snapshot', () => restoring, 60_000);
  // Unhandled here, the signal's default action ended the process mid-open.
  process.emit('SIGHUP');
  release();
  await waitFor('the node to be up', () => said.mock.calls.some((c) => /^node 1 up/.test(String(c[0]))), 60_000);
  await waitFor('the SIGHUP to be answered', () => logged.some((l) => l.includes('SIGHUP: this node has no secret or certificate files to re-read')), 60_000);
  process.emit('SIGTERM');
  expect(await within('serve to end after the SIGTERM', running, 60_000)).toBe(0);
}, 240_000);

/** Makes `dir` a node's data directory holding a snapshot of the KV, which its next open restores into the state machine. */
async function withSnapshot(dir: string): Promise<void> {
  const first = await ReplicatedLog.open<unknown>({ dataDir: dir, stateMachine: new KvStateMachine() as never, snapshotEvery: 2 });
  for (let i = 0; i < 5; i++) await first.append(encodeCommand(['SET', Buffer.from(`k${i}`), Buffer.from('v')]));
  await waitFor('a snapshot', () => first.status().snapshotIndex > 0, 60_000);
  await first.close();
}
