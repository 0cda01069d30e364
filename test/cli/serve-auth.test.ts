// `raftlog serve` with peers must be told how they authenticate, and says so as a usage error.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, expect, it } from 'vitest';
import { freePorts, tempDir } from '../log/helpers.js';
import { until } from '../transport/helpers.js';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const run = promisify(execFile);

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function serve(args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    await run(process.execPath, ['--import', 'tsx', MAIN, 'serve', ...args], { timeout: 30_000 });
    return { code: 0, stderr: '' };
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    return { code: e.code ?? -1, stderr: e.stderr ?? '' };
  }
}

/** A running `raftlog serve --log-format json ...`, and the lines it has written so far. */
function serveJson(args: string[]): { child: ChildProcess; lines: Array<Record<string, unknown>> } {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  cleanups.push(() => child.kill('SIGKILL'));
  const lines: Array<Record<string, unknown>> = [];
  let buffered = '';
  child.stdout!.on('data', (c: Buffer) => {
    buffered += c.toString('utf8');
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      lines.push(JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>);
      buffered = buffered.slice(nl + 1);
    }
  });
  return { child, lines };
}

it('refuses --peers without a secret, TLS or --insecure, and a weak or missing secret file, creating nothing', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const data = join(t.dir, 'data');
  const peers = ['--id', '1', '--data', data, '--peers', '1=127.0.0.1:7101,2=127.0.0.1:7102'];

  const bare = await serve(peers);
  expect(bare.code).toBe(2);
  expect(bare.stderr).toMatch(/--cluster-secret-file/);

  const weak = join(t.dir, 'weak');
  writeFileSync(weak, 'short\n');
  const short = await serve([...peers, '--cluster-secret-file', weak]);
  expect(short.code).toBe(2);
  expect(short.stderr).toMatch(/at least 16 bytes/);

  const missing = await serve([...peers, '--cluster-secret-file', join(t.dir, 'nowhere')]);
  expect(missing.code).toBe(2);
  expect(missing.stderr).toMatch(/--cluster-secret-file: .*ENOENT/);

  const halfTls = await serve([...peers, '--tls-cert', weak]);
  expect(halfTls.code).toBe(2);
  expect(halfTls.stderr).toMatch(/go together/);

  expect(existsSync(data)).toBe(false);
});

it('a SIGHUP whose secret file is now refused logs the error with its code, and the node goes on', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const secret = join(t.dir, 'secret');
  writeFileSync(secret, 'a secret of more than sixteen bytes\n', { mode: 0o600 });
  const [port] = await freePorts(1);
  const data = join(t.dir, 'data');
  const flags = `--id 1 --data ${data} --listen 127.0.0.1:${port} --cluster-secret-file ${secret} --log-format json`;
  const { child, lines } = serveJson(flags.split(' '));
  await until(() => lines.some((l) => /^node 1 up/.test(String(l.msg))), 'the node to start', 30_000);
  writeFileSync(secret, 'short\n');
  child.kill('SIGHUP');
  await until(() => lines.some((l) => /credentials not reloaded/.test(String(l.msg))), 'the refused reload in the log', 10_000);
  expect(lines.find((l) => /credentials not reloaded/.test(String(l.msg)))).toMatchObject({ level: 50, code: 'USAGE' });
  expect(child.exitCode).toBeNull();
  child.kill('SIGTERM');
  expect(await new Promise((r) => child.once('exit', r))).toBe(0);
});

it('a SIGHUP to a node with no secret or certificate files to re-read is logged, and the node goes on, then stops cleanly', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const { child, lines } = serveJson(['--id', '1', '--data', join(t.dir, 'data'), '--log-format', 'json']);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  await until(() => lines.some((l) => /^node 1 up/.test(String(l.msg))), 'the node to start', 120_000);
  child.kill('SIGHUP');
  // The default action of an unhandled SIGHUP ended the node here, its log never closed.
  await until(
    () => child.exitCode !== null || child.signalCode !== null || lines.some((l) => /^SIGHUP: /.test(String(l.msg))),
    'the SIGHUP to be handled',
    120_000,
  );
  expect({ code: child.exitCode, signal: child.signalCode }).toEqual({ code: null, signal: null });
  expect(lines.find((l) => /^SIGHUP: /.test(String(l.msg)))).toMatchObject({
    level: 40,
    msg: 'SIGHUP: this node has no secret or certificate files to re-read; it goes on',
  });
  child.kill('SIGTERM');
  expect(await exited).toEqual({ code: 0, signal: null });
  expect(lines.some((l) => l.msg === 'node 1 stopped')).toBe(true);
}, 300_000);
