// Every program in examples/ runs as written (importing 'raftlog', which resolves
// to this package through its exports map) and prints what it promises.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const exec = promisify(execFile);
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const temps: string[] = [];
afterEach(() => {
  for (const t of temps.splice(0)) rmSync(t, { recursive: true, force: true });
});

async function run(example: string, dir: string): Promise<string> {
  return (await exec(process.execPath, ['--import', 'tsx', join(ROOT, 'examples', example), dir], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })).stdout;
}

describe('examples', () => {
  it('counter: the total survives a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'raftlog-example-'));
    temps.push(dir);
    expect((await run('counter.ts', dir)).trim()).toBe('total was 0, now 5');
    expect((await run('counter.ts', dir)).trim()).toBe('total was 5, now 10');
  });

  it('snapshots: a reopen restores the latest snapshot and replays the rest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'raftlog-example-'));
    temps.push(dir);
    const out = (await run('snapshots.ts', dir)).trim();
    const m = /^keys 49, key49=v249, restored from a snapshot at (\d+), WAL from (\d+)$/.exec(out);
    expect(m, out).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(200);
    expect(Number(m![2])).toBeGreaterThan(1); // the WAL below the snapshot was released
  });

  it('three nodes: appends on the leader and on a follower are applied everywhere in one order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'raftlog-example-'));
    temps.push(dir);
    expect((await run('three-nodes.ts', dir)).trim()).toMatch(/^leader [123]; every node applied: true; hello from node 1, hello from node 3$/);
  });
});
