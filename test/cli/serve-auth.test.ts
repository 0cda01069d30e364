// `raftlog serve` with peers must be told how they authenticate, and says so as a usage error.
import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, expect, it } from 'vitest';
import { tempDir } from '../log/helpers.js';

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
