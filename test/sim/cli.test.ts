// The command line as a developer uses it: a passing replay exits 0 with a
// summary; a failing seed exits 1 and prints the command that replays it.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const cli = fileURLToPath(new URL('./cli.ts', import.meta.url));

/** Asynchronous: a synchronous spawn would block the worker's event loop for as long as the child runs. */
function sim(...args: string[]): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', cli, ...args], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      // A non-zero exit is an outcome under test; the child being killed (timeout) leaves code null.
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ status: code, out: `${stdout}${stderr}` });
    });
  });
}

describe('npm run sim', () => {
  it('replays one seed and summarises the run', async () => {
    const r = await sim('--nodes', '3', '--seed', '1234', '--steps', '800');
    expect(r.out).toMatch(/seed 1234, 3 nodes: \d+ steps, .*commit \d+/);
    expect(r.status).toBe(0);
  });

  it('a failing seed exits 1 with its replay command', async () => {
    const r = await sim('--nodes', '5', '--seeds', '2', '--steps', '800', '--mutation', 'ack-before-persist');
    expect(r.status).toBe(1);
    expect(r.out).toContain('seed 1 (5 nodes) failed at step');
    expect(r.out).toContain('replay: npm run sim -- --nodes 5 --seed 1 --steps 800 --mutation ack-before-persist');
  });

  it('rejects a bad option with usage', async () => {
    const r = await sim('--steps', 'many');
    expect(r.status).toBe(2);
    expect(r.out).toContain('--steps needs a non-negative integer');
    expect(r.out).toContain('usage: npm run sim');
  });
});
