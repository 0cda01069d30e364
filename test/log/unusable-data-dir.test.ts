// A data directory, or a file of the node's in it, that this process may not read or write is
// refused at open with DATA_DIR_UNUSABLE naming it, before anything is written there, rather
// than failing later (the record of a peer's instance, written when the node first meets it)
// or without a raftlog code. The tests run as root, which reads and writes whatever the mode:
// the open runs in a child that becomes nobody, in a directory nobody owns.
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { digests, enc, tempDir } from './helpers.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'open-child.ts');
const RECOVER_CHILD = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'recover-child.ts');
const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A node's data directory that has run, owned by the user the child runs as. */
async function nodeDir(): Promise<string> {
  const t = tempDir('raftlog-unusable-');
  cleanups.push(t.cleanup);
  chmodSync(t.dir, 0o755);
  const dataDir = join(t.dir, 'node');
  const log = await ReplicatedLog.open({ dataDir });
  await log.append(enc('x'));
  await log.close();
  writeFileSync(join(dataDir, 'peer-instances'), `2 ${'a'.repeat(32)} 1\n`);
  if (asRoot) chownAll(dataDir);
  return dataDir;
}

function chownAll(dir: string): void {
  chownSync(dir, NOBODY, NOBODY);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) chownAll(join(dir, e.name));
    else chownSync(join(dir, e.name), NOBODY, NOBODY);
  }
}

interface Outcome {
  open: { opened: true } | { code: string; message: string };
  inspect: { exit: number; damage: string[] };
}

async function openAsNobody(dataDir: string): Promise<Outcome> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', CHILD, dataDir, ...(asRoot ? [String(NOBODY)] : [])], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Outcome;
}

it.each(['instance', 'peer-instances'])('%s at mode 000 is DATA_DIR_UNUSABLE naming it, at open and in inspect', async (name) => {
  const dataDir = await nodeDir();
  chmodSync(join(dataDir, name), 0o000);
  const message = `data directory ${dataDir} holds ${name}, which this process cannot read (EACCES)`;
  const got = await openAsNobody(dataDir);
  expect(got.open).toEqual({ code: 'DATA_DIR_UNUSABLE', message });
  expect(got.inspect).toEqual({ exit: 1, damage: [`raftlog inspect: DATA_DIR_UNUSABLE: ${message}`] });
  chmodSync(join(dataDir, name), 0o600);
  expect((await openAsNobody(dataDir)).open).toEqual({ opened: true });
});

it('a data directory at mode 500 is refused at open with DATA_DIR_UNUSABLE naming it, and in inspect', async () => {
  const dataDir = await nodeDir();
  chmodSync(dataDir, 0o500);
  const message = `data directory ${dataDir} cannot be read and written by this process (EACCES)`;
  const got = await openAsNobody(dataDir);
  expect(got.open).toEqual({ code: 'DATA_DIR_UNUSABLE', message });
  expect(got.inspect).toEqual({ exit: 1, damage: [`raftlog inspect: DATA_DIR_UNUSABLE: ${message}`] });
  chmodSync(dataDir, 0o700);
  expect((await openAsNobody(dataDir)).open).toEqual({ opened: true });
});

it('raftlog recover refuses a data directory at mode 500 as the open does, DATA_DIR_UNUSABLE, and changes no byte of it', async () => {
  const dataDir = await nodeDir();
  chmodSync(dataDir, 0o500);
  const before = digests(dataDir);
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', RECOVER_CHILD, dataDir, ...(asRoot ? [String(NOBODY)] : [])], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  const got = JSON.parse(stdout.trim().split('\n').at(-1)!) as { exit: number; stderr: string[] };
  expect(got.exit).toBe(1);
  expect(got.stderr[0]).toMatch(
    new RegExp(`^raftlog recover: DATA_DIR_UNUSABLE: data directory ${dataDir} cannot be read and written by this process \\(EACCES\\)`),
  );
  expect(digests(dataDir)).toEqual(before);
});
