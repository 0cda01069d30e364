// A worker thread that ends with WAL appends in flight must not take the
// process down. The workers run in a child process, so that an abort shows up
// as its exit code instead of killing the test runner.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanTempDirs, tempDir } from './helpers.js';

afterEach(cleanTempDirs);

/** Runs a host script of workers in a child process; how it ended and what it printed. */
async function host(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string }> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // 'close', not 'exit': what the child printed last may still be in the pipe when it exits.
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  return { code, signal, stderr, stdout };
}

describe('WAL in worker threads', () => {
  it('survives 30 workers ending by terminate(), process.exit() and an uncaught throw with appends in flight', async () => {
    const r = await host(['--import', 'tsx', join('test', 'wal', 'worker-host.ts'), tempDir(), '30']);
    expect(r).toEqual({ code: 0, signal: null, stderr: '', stdout: 'survived 30\n' });
  }, 150_000);

  // TAIL is written while appends are in flight. Through fs/promises, a worker terminated in the
  // middle of the write aborted the process (SIGABRT, a failed assertion in Node's fs binding) in
  // each of three runs of 300 terminations.
  it('survives 300 workers terminated in the middle of writing a sealed file (TAIL, OWNER)', async () => {
    const r = await host([join('test', 'wal', 'sealed-teardown-host.mjs'), tempDir(), '300']);
    expect(r).toEqual({ code: 0, signal: null, stderr: '', stdout: 'survived 300\n' });
  }, 150_000);
});
