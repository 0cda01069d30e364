// What `raftlog serve` says when it is up: every port it listens on, as its clients and peers reach it.
import { createConnection } from 'node:net';
import { afterEach, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/serve.js';
import { tempDir, waitFor } from '../log/helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('the up line names the peer port the node got, with --listen on port 0, and that port accepts', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const said = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  cleanups.push(() => said.mockRestore());
  const running = main(['--id', '1', '--data', t.dir, '--listen', '127.0.0.1:0', '--insecure', '--log-level', 'silent']);
  const upLine = (): string | undefined => said.mock.calls.map((c) => String(c[0])).find((l) => /^node 1 up/.test(l));
  await waitFor('the node to be up', () => upLine() !== undefined, 60_000);
  const m = /, peers 127\.0\.0\.1:(\d+)/.exec(upLine()!);
  expect(m, upLine()).not.toBeNull();
  const port = Number(m![1]);
  expect(port).toBeGreaterThan(0);
  await new Promise<void>((resolve, reject) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve();
    });
    s.on('error', reject);
  });
  process.emit('SIGTERM');
  expect(await running).toBe(0);
}, 90_000);

it('a node with no peer port names none', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const said = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  cleanups.push(() => said.mockRestore());
  const running = main(['--id', '1', '--data', t.dir, '--log-level', 'silent']);
  const upLine = (): string | undefined => said.mock.calls.map((c) => String(c[0])).find((l) => /^node 1 up/.test(l));
  await waitFor('the node to be up', () => upLine() !== undefined, 60_000);
  expect(upLine()).toBe(`node 1 up: data ${t.dir}`);
  process.emit('SIGTERM');
  expect(await running).toBe(0);
}, 90_000);
