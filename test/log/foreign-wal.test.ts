// A WAL belongs to its data directory: its OWNER names the directory's instance id. Another
// directory's wal/ put in place of this one's would vote and answer with that directory's log
// under this one's id, which its peers trust: the open refuses it before anything changes.
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync, renameSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { readOwner } from '../../src/wal/owner.js';
import { RecordingMachine, enc, fdsUnder, tempDir } from './helpers.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

/** A single node's data directory that ran and appended `n` records; its instance id. */
async function node(n: number): Promise<{ dir: string; instance: string }> {
  const t = tempDir('raftlog-owner-');
  cleanups.push(t.cleanup);
  const log = await ReplicatedLog.open({ dataDir: t.dir, stateMachine: new RecordingMachine() });
  for (let i = 0; i < n; i++) await log.append(enc(`r${i}`));
  await log.close();
  return { dir: t.dir, instance: readFileSync(join(t.dir, 'instance'), 'latin1').trim() };
}

async function open(dir: string): Promise<{ applied: number } | { code?: string; message: string }> {
  const machine = new RecordingMachine();
  try {
    const log = await ReplicatedLog.open({ dataDir: dir, stateMachine: machine });
    await log.close();
    return { applied: machine.applied.length };
  } catch (err) {
    return { code: (err as { code?: string }).code, message: (err as Error).message };
  }
}

/** Every file under `dir` with a digest of its bytes. */
function files(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir, { recursive: true, withFileTypes: true }))
    if (name.isFile()) {
      const path = join(name.parentPath, name.name);
      out[path] = createHash('sha256').update(readFileSync(path)).digest('hex');
    }
  return out;
}

it("another directory's wal/ copied in is refused with WAL_FOREIGN naming both ids, before anything changes, and again at the next open", async () => {
  const a = await node(3);
  const b = await node(5);
  expect(a.instance).not.toBe(b.instance);
  renameSync(join(b.dir, 'wal'), join(b.dir, 'own-wal'));
  cpSync(join(a.dir, 'wal'), join(b.dir, 'wal'), { recursive: true });
  const before = files(b.dir);
  for (let k = 0; k < 2; k++) {
    const opened = await open(b.dir);
    expect(opened).toMatchObject({ code: 'WAL_FOREIGN' });
    const { message } = opened as { message: string };
    expect(message).toContain(`belongs to instance ${a.instance}`);
    expect(message).toContain(`whose instance is ${b.instance}`);
    expect(message).toContain("Put this directory's own wal/ back");
    expect(files(b.dir)).toEqual(before);
    expect(fdsUnder(b.dir)).toEqual([]);
  }
  // Its own WAL put back, the node opens with its records.
  rmSync(join(b.dir, 'wal'), { recursive: true });
  renameSync(join(b.dir, 'own-wal'), join(b.dir, 'wal'));
  expect(await open(b.dir)).toEqual({ applied: 5 });
  expect(await open(a.dir)).toEqual({ applied: 3 });
});

it('a WAL written before OWNER existed opens as before, and is given the instance id', async () => {
  const a = await node(4);
  // What an earlier build left: the same WAL, without OWNER.
  rmSync(join(a.dir, 'wal', 'OWNER'));
  expect(await readOwner(join(a.dir, 'wal'))).toBeNull();
  expect(await open(a.dir)).toEqual({ applied: 4 });
  expect(await readOwner(join(a.dir, 'wal'))).toBe(a.instance);
  expect(await open(a.dir)).toEqual({ applied: 4 });
});

it('a new data directory gets an OWNER naming its instance id', async () => {
  const a = await node(1);
  expect(await readOwner(join(a.dir, 'wal'))).toBe(a.instance);
});

it("a WAL naming an instance where the directory's instance file is missing is refused, and opens once the id is put back", async () => {
  const a = await node(2);
  rmSync(join(a.dir, 'instance'));
  const before = files(a.dir);
  const opened = await open(a.dir);
  expect(opened).toMatchObject({ code: 'WAL_FOREIGN', message: expect.stringContaining(`write ${a.instance} to ${join(a.dir, 'instance')}`) });
  expect(files(a.dir)).toEqual(before);
  expect(fdsUnder(a.dir)).toEqual([]);
  writeFileSync(join(a.dir, 'instance'), `${a.instance}\n`);
  expect(await open(a.dir)).toEqual({ applied: 2 });
});

it.each([
  ['junk', (p: string) => writeFileSync(p, 'junk'), 'bytes, not 28'],
  [
    'a flipped bit in the id',
    (p: string) => {
      const b = readFileSync(p);
      b[10]! ^= 1;
      writeFileSync(p, b);
    },
    'checksum mismatch',
  ],
  [
    'a directory',
    (p: string) => {
      rmSync(p);
      mkdirSync(p);
    },
    'not a regular file',
  ],
])('a damaged OWNER (%s) is refused with WAL_CORRUPT naming it, changing nothing', async (_what, damage, why) => {
  const a = await node(2);
  const path = join(a.dir, 'wal', 'OWNER');
  damage(path);
  const before = files(a.dir);
  const opened = await open(a.dir);
  expect(opened).toMatchObject({ code: 'WAL_CORRUPT', message: expect.stringContaining(`${path} is damaged (`) });
  expect((opened as { message: string }).message).toContain(why);
  expect(files(a.dir)).toEqual(before);
  expect(fdsUnder(a.dir)).toEqual([]);
});
