// `raftlog cluster` owns its nodes: they stop when it dies, however it dies.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, expect, it } from 'vitest';
import { freePortRun, tempDir, waitFor } from '../log/helpers.js';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

function alive(pid: number): boolean {
  try {
    // A zombie is dead too: it only waits for its parent to collect it.
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

it('a SIGKILLed cluster leaves no node running', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  // Node i listens on raft + i - 1 and resp + i - 1: one run of four free ports, so the two ranges cannot meet.
  const raft = await freePortRun(4);
  const resp = raft + 2;
  const parent = spawn(
    process.execPath,
    ['--import', 'tsx', MAIN, 'cluster', '--nodes', '2', '--data', t.dir, '--raft-port', String(raft), '--resp-port', String(resp), '--sync', 'none'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  parent.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  parent.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  let nodes: number[] = [];
  cleanups.push(() => {
    for (const pid of [parent.pid!, ...nodes]) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  await waitFor('a leader', () => /leader: node \d/.test(out), 30_000);
  nodes = childrenOf(parent.pid!);
  expect(nodes).toHaveLength(2);
  expect(out).toMatch(/remove it with: rm -rf /);
  parent.kill('SIGKILL');
  await waitFor('every node to stop', () => nodes.every((pid) => !alive(pid)), 20_000);
});
