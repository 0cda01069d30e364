// `raftlog snapshot save` and `restore` in-process: what they leave when they fail, and what restore takes.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { main as snapshot } from '../../src/cli/snapshot.js';
import { KvStateMachine, encodeCommand } from '../../src/kv/index.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { snapshotChunks } from '../../src/log/state-machine.js';
import { MAX_INDEX } from '../../src/raft/types.js';
import { FileSnapshotStore } from '../../src/storage/snapshot-store.js';
import { Wal, crc32c } from '../../src/wal/index.js';
import { readOwner, writeOwner } from '../../src/wal/owner.js';
import { runWithFaults } from '../fault/run-with-faults.js';
import { killBefore, killSteps, reached } from '../fault/kill-steps.js';
import { tempDir, waitFor } from '../log/helpers.js';
import { listening } from './listening.js';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A backup as `snapshot save` writes it: term 0, no members, the state machine's bytes. */
async function backup(dir: string): Promise<string> {
  const kv = new KvStateMachine();
  kv.apply({ index: 1, term: 1, offset: 0, data: encodeCommand(['SET', Buffer.from('k'), Buffer.from('v')]) });
  const store = await FileSnapshotStore.open(join(dir, 'backup'));
  await store.save({ meta: { index: 7, term: 0, conf: { voters: [], learners: [] } }, data: snapshotChunks(kv.snapshot()) });
  return join(dir, 'backup', 'snap-0000000000000007-0.snap');
}

it('a restore that fails halfway takes back what it made, so the retry succeeds', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const file = await backup(t.dir);
  const data = join(t.dir, 'data');
  mkdirSync(data);
  writeFileSync(join(data, 'snapshots'), 'in the way'); // fails the restore after its WAL is made
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  expect(await snapshot(['restore', file, '--data', data, '--id', '1'])).toBe(1);
  expect(existsSync(join(data, 'wal'))).toBe(false);

  rmSync(join(data, 'snapshots'));
  expect(await snapshot(['restore', file, '--data', data, '--id', '1']), String(err.mock.calls.at(-1)?.[0])).toBe(0);
  vi.restoreAllMocks();
  const kv = new KvStateMachine();
  const log = await ReplicatedLog.open<unknown>({ dataDir: data, stateMachine: kv as never });
  cleanups.push(() => log.close());
  expect(kv.get(Buffer.from('k'))?.toString()).toBe('v');
});

it('a restore that fails halfway into an empty wal/ that was there empties it again, and removes nothing that was there', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const file = await backup(t.dir);
  const data = join(t.dir, 'data');
  mkdirSync(join(data, 'wal'), { recursive: true });
  writeFileSync(join(data, 'notes'), 'the operator keeps this');
  writeFileSync(join(data, 'snapshots'), 'in the way'); // fails the restore after its WAL is made
  const before = readdirSync(data, { recursive: true }).sort();
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  expect(await snapshot(['restore', file, '--data', data, '--id', '1'])).toBe(1);
  expect(readdirSync(data, { recursive: true }).sort()).toEqual(before);

  rmSync(join(data, 'snapshots'));
  expect(await snapshot(['restore', file, '--data', data, '--id', '1']), String(err.mock.calls.at(-1)?.[0])).toBe(0);
});

it('a restore into a missing nested directory that fails halfway removes every directory it made, not only the last', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const file = await backup(t.dir);
  const before = readdirSync(t.dir, { recursive: true }).sort();
  const data = join(t.dir, 'x', 'a', 'b', 'c');
  // The disk fills once the WAL is made: the snapshot store cannot be opened.
  vi.spyOn(FileSnapshotStore, 'open').mockRejectedValueOnce(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }));
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  expect(await snapshot(['restore', file, '--data', data, '--id', '1'])).toBe(1);
  // A system call's message begins with its code: printed once.
  expect(String(err.mock.calls[0]?.[0])).toMatch(/^raftlog snapshot: ENOSPC: no space left on device \(the file system is full/);
  expect(readdirSync(t.dir, { recursive: true }).sort()).toEqual(before);

  expect(await snapshot(['restore', file, '--data', data, '--id', '1']), String(err.mock.calls.at(-1)?.[0])).toBe(0);
  expect(existsSync(join(data, 'wal'))).toBe(true);
});

it("a restore that finds the WAL it was to make taken by another process (a second restore of the same directory) leaves that process's files", async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const file = await backup(t.dir);
  const data = join(t.dir, 'data');
  // The other restore makes the WAL, and holds it, between this one's look at the directory and its own open.
  const open = Wal.open.bind(Wal);
  let other: Wal | undefined;
  vi.spyOn(Wal, 'open').mockImplementationOnce(async (dir, options) => {
    other = await open(dir, options);
    return open(dir, options);
  });
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  expect(await snapshot(['restore', file, '--data', data, '--id', '1'])).toBe(1);
  expect(String(err.mock.calls.at(-1)?.[0])).toMatch(/^raftlog snapshot: WAL_LOCKED: /);
  expect(readdirSync(join(data, 'wal')).some((n) => n.endsWith('.wal'))).toBe(true);
  expect(existsSync(join(data, 'restore-incomplete'))).toBe(true);
  await other!.close();
});

/** A restore of a backup into a new data directory with `args` (after FILE --data DIR): exit 2, `said` on stderr, nothing created. */
async function restoreRefuses(args: string[], said: RegExp): Promise<void> {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const file = await backup(t.dir);
  const data = join(t.dir, 'data');
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  expect(await snapshot(['restore', file, '--data', data, ...args])).toBe(2);
  expect(String(err.mock.calls[0]?.[0])).toMatch(said);
  expect(existsSync(data)).toBe(false);
}

/** A fake admin endpoint that answers every backup with 4 KiB and its checksum. */
function backupEndpoint(): Promise<string> {
  const body = Buffer.alloc(4096, 3);
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-raftlog-index': '7', trailer: 'x-raftlog-crc32c' });
    res.write(body);
    res.addTrailers({ 'x-raftlog-crc32c': String(crc32c(body)) });
    res.end();
  });
  return listening(server, cleanups);
}

/** A fake admin endpoint that sends 2 MiB of a backup (past the first chunk the store gathers) and stalls. */
function stallingEndpoint(): Promise<string> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-raftlog-index': '7', trailer: 'x-raftlog-crc32c' });
    res.write(Buffer.alloc(2 << 20, 1));
  });
  return listening(server, cleanups);
}

/** Fake admin endpoints that answer every request 503 NO_LEADER, and how many requests they were asked in all. */
async function noLeaderEndpoints(n: number): Promise<{ endpoints: string[]; asked(): number }> {
  let asked = 0;
  const endpoints: string[] = [];
  for (let i = 0; i < n; i++) {
    const server = createServer((_req, res) => {
      asked++;
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"code":"NO_LEADER","message":"no leader"}');
    });
    endpoints.push(await listening(server, cleanups));
  }
  return { endpoints, asked: () => asked };
}

it('refuses --peers with an address that is not HOST:PORT before creating anything', async () => {
  await restoreRefuses(['--id', '1', '--peers', '1=127.0.0.1:7101,2=127.0.0.1:70000'], /bad peer '2=127.0.0.1:70000'/);
});

it('refuses an --id that is not decimal digits before creating anything', async () => {
  await restoreRefuses(['--id', '1.0'], /^raftlog snapshot: --id must be a positive integer, got '1\.0'/);
});

it('refuses a --data that is a file, or lies under one, before creating anything, naming the file', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const file = await backup(t.dir);
  const plain = join(t.dir, 'plain');
  writeFileSync(plain, 'not a directory');
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  for (const data of [plain, join(plain, 'a', 'b')]) {
    expect(await snapshot(['restore', file, '--data', data, '--id', '1'])).toBe(2);
    expect(String(err.mock.calls.at(-1)?.[0])).toMatch(new RegExp(`^raftlog snapshot: --data ${data}: ${plain} is not a directory\n`));
  }
  expect(readdirSync(t.dir).sort()).toEqual(['backup', 'plain']);
});

it('refuses an empty --data rather than restoring into the current directory', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const file = await backup(t.dir);
  const cwd = process.cwd();
  process.chdir(t.dir);
  cleanups.push(() => process.chdir(cwd));
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  for (const data of [['--data='], ['--data', '']]) {
    expect(await snapshot(['restore', file, ...data, '--id', '1'])).toBe(2);
    expect(String(err.mock.calls.at(-1)?.[0])).toMatch(/^raftlog snapshot: --data needs a value\n/);
    expect(readdirSync(t.dir)).toEqual(['backup']);
  }
});

it("restores from a node's own snapshot file as from a backup", async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const old = await ReplicatedLog.open<unknown>({ dataDir: join(t.dir, 'old'), stateMachine: new KvStateMachine() as never, snapshotEvery: 5 });
  for (let i = 0; i < 12; i++) await old.append(encodeCommand(['SET', Buffer.from(`k${i}`), Buffer.from(`v${i}`)]));
  await old.close();
  const held = readdirSync(join(t.dir, 'old', 'snapshots')).filter((n) => n.endsWith('.snap'));
  expect(held).toHaveLength(1);

  const data = join(t.dir, 'data');
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  expect(await snapshot(['restore', join(t.dir, 'old', 'snapshots', held[0]!), '--data', data, '--id', '1']), String(err.mock.calls[0]?.[0])).toBe(0);
  vi.restoreAllMocks();
  // Restore makes a WAL that names no instance: the first open gives it the one it makes.
  expect(await readOwner(join(data, 'wal'))).toBeNull();
  const kv = new KvStateMachine();
  const log = await ReplicatedLog.open<unknown>({ dataDir: data, stateMachine: kv as never });
  cleanups.push(() => log.close());
  expect(kv.get(Buffer.from('k0'))?.toString()).toBe('v0');
  expect(await readOwner(join(data, 'wal'))).toBe(readFileSync(join(data, 'instance'), 'utf8').trim());
});

it('a backup file at index 0 is refused with SNAPSHOT_CORRUPT and the directory left as it was, rather than restored into a node that opens without its state', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const kv = new KvStateMachine();
  kv.apply({ index: 1, term: 1, offset: 0, data: encodeCommand(['SET', Buffer.from('k'), Buffer.from('v')]) });
  const store = await FileSnapshotStore.open(join(t.dir, 'backup'));
  await store.save({ meta: { index: 0, term: 0, conf: { voters: [], learners: [] } }, data: snapshotChunks(kv.snapshot()) });
  const file = join(t.dir, 'backup', 'snap-0000000000000000-0.snap');
  const data = join(t.dir, 'data');
  mkdirSync(data);
  writeFileSync(join(data, 'notes'), "the operator's");
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  expect(await snapshot(['restore', file, '--data', data, '--id', '1'])).toBe(1);
  expect(err.mock.calls).toHaveLength(1);
  expect(String(err.mock.calls[0]?.[0])).toMatch(/^raftlog snapshot: SNAPSHOT_CORRUPT: .* index 0/);
  expect(readdirSync(data)).toEqual(['notes']);
});

it.each([
  ['the backup', 200],
  ['an error answer', 503],
])('a save whose connection drops mid-transfer (%s) fails with ADMIN_CONNECTION_LOST on one line and leaves no file', async (_what, status) => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  // An endpoint that sends its headers and part of its body, then drops the connection.
  const server = createServer((_req, res) => {
    res.writeHead(status, { 'x-raftlog-index': '7', trailer: 'x-raftlog-crc32c' });
    res.write(Buffer.alloc(64 * 1024, 1), () => res.socket?.destroy());
  });
  const endpoint = await listening(server, cleanups);
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  expect(await snapshot(['save', join(t.dir, 'backup.snap'), '--admin', endpoint])).toBe(1);
  expect(err.mock.calls).toHaveLength(1);
  const line = String(err.mock.calls[0]?.[0]);
  expect(line).toMatch(new RegExp(`^raftlog snapshot: ADMIN_CONNECTION_LOST: ${endpoint}: `));
  expect(line).not.toContain('\n');
  expect(readdirSync(t.dir)).toEqual([]);
});

it("a save to a FILE whose directory is missing is NO_BACKUP_DIR, exit 1, one line naming it; one that is a directory, or '-', is a usage error; the node is not asked", async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const {
    endpoints: [endpoint],
    asked,
  } = await noLeaderEndpoints(1);
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  const missing = join(t.dir, 'missing', 'backup.snap');
  expect(await snapshot(['save', missing, '--admin', endpoint])).toBe(1);
  const line = String(err.mock.calls[0]?.[0]);
  expect(line.split('\n')).toHaveLength(1);
  expect(line.startsWith(`raftlog snapshot: NO_BACKUP_DIR: ${join(t.dir, 'missing')} does not exist (`), line).toBe(true);
  expect(await snapshot(['save', t.dir, '--admin', endpoint])).toBe(2);
  expect(String(err.mock.calls[1]?.[0])).toMatch(new RegExp(`^raftlog snapshot: ${t.dir} is a directory`));
  expect(await snapshot(['save', '-', '--admin', endpoint])).toBe(2);
  expect(String(err.mock.calls[2]?.[0])).toMatch(/^raftlog snapshot: snapshot save takes a file, not standard output/);
  expect(asked()).toBe(0);
  expect(readdirSync(t.dir)).toEqual([]);
});

it('a save into a directory behind a loop of symbolic links is refused before the node is asked, saying ELOOP, not only that it is no directory', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const {
    endpoints: [endpoint],
    asked,
  } = await noLeaderEndpoints(1);
  symlinkSync('b', join(t.dir, 'a'));
  symlinkSync('a', join(t.dir, 'b'));
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  expect(await snapshot(['save', join(t.dir, 'a', 'backup.snap'), '--admin', endpoint])).toBe(1);
  expect(String(err.mock.calls[0]?.[0])).toMatch(new RegExp(`^raftlog snapshot: NO_BACKUP_DIR: ${join(t.dir, 'a')} cannot be reached \\(ELOOP\\)`));
  expect(asked()).toBe(0);
});

it('a save that meets a full disk fails with ENOSPC and what to do, and leaves nothing beside FILE', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const endpoint = await backupEndpoint();
  const dir = join(t.dir, 'backups');
  mkdirSync(dir);
  const r = await runWithFaults(MAIN, ['snapshot', 'save', join(dir, 'backup.snap'), '--admin', endpoint], {
    root: dir,
    log: join(t.dir, 'ops.log'),
    rules: [{ op: 'write', glob: '*', errno: 'ENOSPC' }],
  });
  expect(r.code, r.stderr).toBe(1);
  expect(r.stderr.trim()).toMatch(
    /^raftlog snapshot: ENOSPC: no space left on device, write \(the file system is full: free space on it, or write elsewhere, then retry\)$/,
  );
  expect(readdirSync(dir)).toEqual([]);
});

it('a save given several --admin endpoints is refused before any is asked, rather than saving from the first and ignoring the rest', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const {
    endpoints: [first, second],
    asked,
  } = await noLeaderEndpoints(2);
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  expect(await snapshot(['save', join(t.dir, 'backup.snap'), '--admin', `${first},${second}`])).toBe(2);
  expect(String(err.mock.calls[0]?.[0]).split('\n')[0]).toBe(
    `raftlog snapshot: --admin: snapshot save backs up one node: give one HOST:PORT (a follower's spares the leader), not ${first},${second}`,
  );
  expect(asked()).toBe(0);
  expect(readdirSync(t.dir)).toEqual([]);
});

it('a save answered an error that carries no code fails with HTTP_<status> on one line, whatever the body', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  for (const [status, type, body] of [
    [500, 'application/json', 'null'],
    [502, 'text/html', '<html>Bad Gateway</html>'],
    [503, 'application/json', '{"code":["NO_LEADER"]}'],
  ] as const) {
    const server = createServer((_req, res) => res.writeHead(status, { 'content-type': type }).end(body));
    const endpoint = await listening(server, cleanups);
    const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    vi.spyOn(console, 'log').mockImplementation(() => undefined);
    expect(await snapshot(['save', join(t.dir, 'backup.snap'), '--admin', endpoint]), body).toBe(1);
    expect(String(err.mock.calls.at(-1)?.[0])).toBe(`raftlog snapshot: HTTP_${status}: ${endpoint}: HTTP ${status}`);
    expect(readdirSync(t.dir)).toEqual([]);
  }
});

it.each([
  ['sent as fast as it goes', 0],
  ['trickled', 100],
])(
  'a save answered an error whose body never ends (%s) fails with its code in bounded time and memory',
  async (_what, every) => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    let sent = 0;
    let closed = false;
    const server = createServer((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.write('{"code":"NO_LEADER","message":"no leader"}');
      res.on('close', () => (closed = true));
      const chunk = Buffer.alloc(every === 0 ? 1 << 20 : 16, 0x20);
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk) && every === 0) sent += chunk.length;
      };
      res.on('drain', pump);
      const drip = every === 0 ? undefined : setInterval(pump, every);
      res.on('close', () => clearInterval(drip));
      pump();
    });
    const endpoint = await listening(server, cleanups);
    const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const started = Date.now();
    const code = await Promise.race([
      snapshot(['save', join(t.dir, 'backup.snap'), '--admin', endpoint]),
      new Promise((r) => setTimeout(() => r('hung'), 25_000)),
    ]);
    expect(code).toBe(1);
    expect(Date.now() - started).toBeLessThan(20_000);
    // What came is JSON followed by spaces, which JSON takes: the endpoint's own code, on one line.
    expect(String(err.mock.calls.at(-1)?.[0])).toMatch(new RegExp(`^raftlog snapshot: NO_LEADER: ${endpoint}: no leader [^\\n]+$`));
    await waitFor('the connection to close', () => closed);
    expect(sent).toBeLessThan(64 << 20);
    expect(readdirSync(t.dir)).toEqual([]);
  },
  40_000,
);

it('a save answered 200 by something that is not the admin API (no index) fails with ADMIN_BAD_REPLY, not SNAPSHOT_CORRUPT', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  for (const headers of [{ 'content-type': 'text/html' }, { 'content-type': 'application/octet-stream', 'x-raftlog-index': 'seven' }]) {
    const server = createServer((_req, res) => res.writeHead(200, headers).end('<html>a captive portal</html>'));
    const endpoint = await listening(server, cleanups);
    const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    vi.spyOn(console, 'log').mockImplementation(() => undefined);
    expect(await snapshot(['save', join(t.dir, 'backup.snap'), '--admin', endpoint])).toBe(1);
    expect(String(err.mock.calls.at(-1)?.[0])).toMatch(
      new RegExp(`^raftlog snapshot: ADMIN_BAD_REPLY: ${endpoint} answered 200 without a valid x-raftlog-index`),
    );
    expect(readdirSync(t.dir)).toEqual([]);
  }
});

it('a save answered a whole, checksummed backup at an index restore refuses (0, or past MAX_INDEX) fails with ADMIN_BAD_REPLY and writes no file', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const body = Buffer.from('RLKV1\n');
  for (const index of ['0', String(MAX_INDEX + 1)]) {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-raftlog-index': index, trailer: 'x-raftlog-crc32c' });
      res.write(body);
      res.addTrailers({ 'x-raftlog-crc32c': String(crc32c(body)) });
      res.end();
    });
    const endpoint = await listening(server, cleanups);
    const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    vi.spyOn(console, 'log').mockImplementation(() => undefined);
    expect(await snapshot(['save', join(t.dir, 'backup.snap'), '--admin', endpoint]), index).toBe(1);
    expect(String(err.mock.calls.at(-1)?.[0])).toMatch(
      new RegExp(`^raftlog snapshot: ADMIN_BAD_REPLY: ${endpoint} answered 200 without a valid x-raftlog-index`),
    );
    expect(readdirSync(t.dir)).toEqual([]);
    vi.restoreAllMocks();
  }
});

it('a save whose endpoint answers something that is not HTTP (the RESP port) fails with ADMIN_BAD_REPLY, exit 1', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const server = createNetServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', () => socket.end("-ERR unknown command 'GET'\r\n"));
  });
  const endpoint = await listening(server, cleanups);
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  expect(await snapshot(['save', join(t.dir, 'backup.snap'), '--admin', endpoint])).toBe(1);
  expect(String(err.mock.calls.at(-1)?.[0])).toMatch(new RegExp(`^raftlog snapshot: ADMIN_BAD_REPLY: ${endpoint} answered something that is not HTTP`));
  expect(readdirSync(t.dir)).toEqual([]);
});

it('a save stopped midway (Ctrl-C) leaves nothing beside FILE', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const endpoint = await stallingEndpoint();
  const dir = join(t.dir, 'backups');
  mkdirSync(dir);
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'snapshot', 'save', join(dir, 'backup.snap'), '--admin', endpoint], { stdio: 'ignore' });
  cleanups.push(() => void child.kill('SIGKILL'));
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (code, signal) => resolve([code, signal])));
  // The partial file is being written beside FILE.
  await waitFor('the partial backup', () => readdirSync(dir, { recursive: true }).some((n) => String(n).endsWith('.tmp')), 30_000);
  child.kill('SIGINT');
  const [code, signal] = await exited;
  expect(code === 130 || signal === 'SIGINT', `exit ${code} ${signal}`).toBe(true);
  expect(readdirSync(dir)).toEqual([]);
}, 60_000);

it('a save refused 401 closes the connection, whatever the body that follows', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  let closed = false;
  // A 401 whose body goes on: unread, it kept the connection, and so the command's process, alive.
  const server = createServer((_req, res) => {
    res.writeHead(401, { 'content-type': 'application/json' });
    res.write('{"code":"UNAUTHORIZED"');
    res.on('close', () => (closed = true));
    const drip = setInterval(() => res.write(' '), 100);
    res.on('close', () => clearInterval(drip));
  });
  const endpoint = await listening(server, cleanups);
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  expect(await snapshot(['save', join(t.dir, 'backup.snap'), '--admin', endpoint])).toBe(1);
  expect(String(err.mock.calls.at(-1)?.[0])).toMatch(/^raftlog snapshot: UNAUTHORIZED: /);
  await waitFor('the connection to close', () => closed, 3_000);
});

it('a save makes the name FILE durable: the directory it is renamed into is fsynced after the rename', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const endpoint = await backupEndpoint();
  const dir = join(t.dir, 'backups');
  mkdirSync(dir);
  const file = join(dir, 'backup.snap');
  const r = await runWithFaults(MAIN, ['snapshot', 'save', file, '--admin', endpoint], { root: dir, log: join(t.dir, 'ops.log') });
  expect(r.code, r.stderr).toBe(0);
  const renamed = r.ops.findIndex((o) => o.op === 'rename' && o.to === file && o.ret === 0);
  expect(renamed, 'the rename to FILE').toBeGreaterThanOrEqual(0);
  expect(r.ops.slice(renamed + 1).some((o) => o.op === 'fsync' && o.path === dir && o.ret === 0)).toBe(true);
});

it('a restore that was killed before its WAL recorded the snapshot is retried over what it left; a WAL that holds anything is DATA_EXISTS', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const file = await backup(t.dir);
  const data = join(t.dir, 'data');
  // What a restore killed between its snapshot and the WAL's marker leaves: a WAL with nothing
  // in it, and the snapshot (or its temporary file) beside it.
  await (await Wal.open(join(data, 'wal'))).close();
  const store = await FileSnapshotStore.open(join(data, 'snapshots'));
  await store.save({ meta: { index: 7, term: 1, conf: { voters: [1], learners: [] } }, data: Buffer.from('half a restore') });
  writeFileSync(join(data, 'snapshots', 'snap-0000000000000007-1.snap.tmp'), 'half');
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  expect(await snapshot(['restore', file, '--data', data, '--id', '1']), String(err.mock.calls.at(-1)?.[0])).toBe(0);
  // Restored, the WAL holds the snapshot's marker: a second restore would replace the node's state.
  expect(await snapshot(['restore', file, '--data', data, '--id', '1'])).toBe(1);
  expect(String(err.mock.calls.at(-1)?.[0])).toMatch(/DATA_EXISTS/);
  vi.restoreAllMocks();
  const kv = new KvStateMachine();
  const log = await ReplicatedLog.open<unknown>({ dataDir: data, stateMachine: kv as never });
  cleanups.push(() => log.close());
  expect(kv.get(Buffer.from('k'))?.toString()).toBe('v');
});

it('a restore into a directory that holds another snapshot (a lost WAL, an earlier restore of another backup) is DATA_EXISTS, and nothing is removed', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const file = await backup(t.dir);
  const data = join(t.dir, 'data');
  const store = await FileSnapshotStore.open(join(data, 'snapshots'));
  await store.save({ meta: { index: 9, term: 3, conf: { voters: [1], learners: [] } }, data: Buffer.from('a lost node') });
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  expect(await snapshot(['restore', file, '--data', data, '--id', '1'])).toBe(1);
  expect(String(err.mock.calls.at(-1)?.[0])).toMatch(/DATA_EXISTS: .*snap-0000000000000009-3\.snap/);
  expect(readdirSync(data)).toEqual(['snapshots']);
  expect(readdirSync(join(data, 'snapshots'))).toEqual(['snap-0000000000000009-3.snap']);
});

it("a restore into a directory that holds a node's instance id or its record of its peers' is DATA_EXISTS, and nothing is made", async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const file = await backup(t.dir);
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  // What a node's directory keeps when only wal/ and snapshots/ are deleted: restored there, the
  // node would meet the new cluster as the old instance, and refuse its new members as replaced.
  for (const [name, text] of [
    ['instance', `${'a'.repeat(32)}\n`],
    ['peer-instances', `2 ${'b'.repeat(32)} 5\n`],
  ]) {
    const data = join(t.dir, `data-${name}`);
    mkdirSync(data);
    writeFileSync(join(data, name), text);
    expect(await snapshot(['restore', file, '--data', data, '--id', '1'])).toBe(1);
    expect(String(err.mock.calls.at(-1)?.[0])).toMatch(new RegExp(`DATA_EXISTS: .*${name}`));
    expect(readdirSync(data)).toEqual([name]);
  }
  // A wal/ a node opened names its instance: restored into, it would name one the directory lacks.
  const data = join(t.dir, 'data-owner');
  mkdirSync(join(data, 'wal'), { recursive: true });
  await writeOwner(join(data, 'wal'), 'a'.repeat(32));
  expect(await snapshot(['restore', file, '--data', data, '--id', '1'])).toBe(1);
  expect(String(err.mock.calls.at(-1)?.[0])).toMatch(/DATA_EXISTS: .*wal\/OWNER/);
  expect(readdirSync(data, { recursive: true })).toEqual(['wal', join('wal', 'OWNER')]);
});

it('a restore killed at any step is never opened as a node: open refuses it with RESTORE_INCOMPLETE, and running it again completes it', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const file = await backup(t.dir);
  const restoreInto = (data: string, log: string, rules: Parameters<typeof runWithFaults>[2]['rules'] = []) =>
    runWithFaults(MAIN, ['snapshot', 'restore', file, '--data', data, '--id', '1'], { root: data, rules, log });
  // Every step a restore takes, from a run that finishes; the parts of names drawn at random become '*'.
  const reference = await restoreInto(join(t.dir, 'ref'), join(t.dir, 'ref.log'));
  expect(reference.code, reference.stderr).toBe(0);
  const steps = killSteps(reference.ops, join(t.dir, 'ref'));
  expect(steps.length).toBeGreaterThan(10);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  const outcomes = new Set<string>();
  for (const [k, step] of steps.entries()) {
    const data = join(t.dir, `data-${k}`);
    const killed = await restoreInto(data, join(t.dir, `ops-${k}.log`), [killBefore(step, data)]);
    if (killed.signal !== 'SIGKILL') {
      expect({ code: killed.code, reached: reached(step, killed.ops, data) }, `not killed before ${step.what}: ${killed.stderr}`).toEqual({
        code: 0,
        reached: false,
      });
    }
    // Before it made anything, the restore left nothing a node would take for its own; after it
    // finished, the node holds the backup's state. Anything between is refused.
    let finished = false;
    let outcome = 'nothing made';
    if (existsSync(data) && readdirSync(data, { recursive: true }).length > 0) {
      const kv = new KvStateMachine();
      const opened = await ReplicatedLog.open<unknown>({ dataDir: data, stateMachine: kv as never }).then(
        (log) => log,
        (e: unknown) => e as Error & { code: string },
      );
      if (opened instanceof ReplicatedLog) {
        await opened.close();
        expect(kv.get(Buffer.from('k'))?.toString(), `opened as a node after a kill before ${step.what}`).toBe('v');
        finished = true;
        outcome = 'finished';
      } else {
        outcome = 'refused';
        expect(opened.code, `killed before ${step.what}: ${opened.message}`).toBe('RESTORE_INCOMPLETE');
        expect(opened.message).toMatch(/a restore did not finish.*run it again/);
      }
    }
    if (!finished)
      expect(await snapshot(['restore', file, '--data', data, '--id', '1']), `after a kill before ${step.what}: ${String(err.mock.calls.at(-1)?.[0])}`).toBe(0);
    const kv = new KvStateMachine();
    const log = await ReplicatedLog.open<unknown>({ dataDir: data, stateMachine: kv as never });
    await log.close();
    expect(kv.get(Buffer.from('k'))?.toString(), `after a kill before ${step.what}`).toBe('v');
    outcomes.add(outcome);
  }
  expect([...outcomes].sort()).toEqual(['finished', 'nothing made', 'refused']);
}, 300_000);

it("a save killed midway leaves a temporary that the next save of FILE removes; a running save's, or one holding what a save never writes, is left", async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const endpoint = await backupEndpoint();
  const stalled = await stallingEndpoint();
  const dir = join(t.dir, 'backups');
  mkdirSync(dir);
  const file = join(dir, 'backup.snap');
  const temporaries = (): string[] => readdirSync(dir).filter((n) => n.startsWith('.backup.snap.'));
  for (const k of [1, 2]) {
    const killed = await runWithFaults(MAIN, ['snapshot', 'save', file, '--admin', endpoint], {
      root: dir,
      rules: [{ op: 'write', glob: `${dir}/.backup.snap.*/*.tmp`, errno: 'KILL' }],
      log: join(t.dir, `killed-${k}.log`),
    });
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    // Each kill leaves its own, and the save after it removes the one before (nothing did: a rerun added another).
    expect(temporaries()).toHaveLength(1);
  }
  const stale = temporaries();
  // Under a stale one's name but holding a file no save writes: not provably a save's, so kept.
  const foreign = `${stale[0]!.slice(0, -6)}zzzzzz`;
  mkdirSync(join(dir, foreign));
  writeFileSync(join(dir, foreign, 'notes'), 'the operator keeps this');
  // A save of the same FILE that is still running.
  const running = spawn(process.execPath, ['--import', 'tsx', MAIN, 'snapshot', 'save', file, '--admin', stalled], { stdio: 'ignore' });
  cleanups.push(() => void running.kill('SIGKILL'));
  await waitFor(
    'the running save to write',
    () => readdirSync(dir, { recursive: true }).some((n) => String(n).endsWith('.tmp') && !stale.some((s) => String(n).startsWith(s))),
    30_000,
  );
  const mine = temporaries().find((n) => n !== foreign && !stale.includes(n))!;

  const ok = await runWithFaults(MAIN, ['snapshot', 'save', file, '--admin', endpoint], { root: dir, log: join(t.dir, 'ok.log') });
  expect(ok.code, ok.stderr).toBe(0);
  expect(readdirSync(dir).sort()).toEqual(['backup.snap', foreign, mine].sort());
  expect(readdirSync(join(dir, foreign))).toEqual(['notes']);
}, 60_000);

it('two saves of FILE at once, over the temporaries that killed saves left, both succeed: neither fails on one the other removed', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const endpoint = await backupEndpoint();
  const file = join(t.dir, 'backup.snap');
  // A pid no process has: one that has exited.
  const gone = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise((resolve) => gone.once('exit', resolve));
  const prefix = `.backup.snap.${hostname()}.${gone.pid}.`;
  for (let i = 0; i < 64; i++) {
    const stale = join(t.dir, `${prefix}${String(i).padStart(6, 'a')}`);
    mkdirSync(stale);
    writeFileSync(join(stale, `snap-${i + 1}-0.snap.tmp`), 'cut short');
  }
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  const codes = await Promise.all([snapshot(['save', file, '--admin', endpoint]), snapshot(['save', file, '--admin', endpoint])]);
  expect(codes, String(err.mock.calls.at(-1)?.[0])).toEqual([0, 0]);
  expect(readdirSync(t.dir)).toEqual(['backup.snap']);
});

it('save from an endpoint that sends its answer a byte at a time ends once the time for it is up, with a coded line and no file', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const sockets: Socket[] = [];
  let sent = 0;
  // Each byte well within the socket's idle timeout, the head never whole.
  const trickle = createNetServer((socket) => {
    socket.on('error', () => undefined);
    sockets.push(socket);
    const head = `HTTP/1.1 200 OK\r\nX-Slow: ${'a'.repeat(10_000)}`;
    const timer = setInterval(() => {
      if (socket.destroyed) return clearInterval(timer);
      socket.write(head[sent++]!);
    }, 20);
    socket.on('close', () => clearInterval(timer));
  });
  const ep = await listening(trickle, cleanups);
  cleanups.push(() => sockets.forEach((s) => s.destroy()));
  // Only the command's own timers are made to run ahead; the endpoint's interval and the socket's idle timer keep real time.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  cleanups.push(() => void vi.useRealTimers());
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  const file = join(t.dir, 'backup.snap');
  const saving = snapshot(['save', file, '--admin', ep]);
  // setTimeout is fake now: waited for by turns of the event loop.
  while (sent <= 20) await new Promise((resolve) => setImmediate(resolve));
  await vi.advanceTimersByTimeAsync(120_000);
  // Without the deadline it waited for as long as the bytes came: the test's own timeout.
  expect(await saving).toBe(3);
  expect(String(err.mock.calls.at(-1)?.[0])).toMatch(new RegExp(`^raftlog snapshot: ADMIN_UNREACHABLE: ${ep}: no answer in 120000 ms`));
  expect(existsSync(file)).toBe(false);
});

it('a restore of a FILE that is missing, a directory, under a file or behind a loop of links is NO_BACKUP, exit 1, one line naming it, and nothing is made', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const plain = join(t.dir, 'plain');
  writeFileSync(plain, 'not a directory');
  const loop = join(t.dir, 'loop');
  symlinkSync(loop, loop);
  const data = join(t.dir, 'data');
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  for (const [file, why] of [
    [join(t.dir, 'missing'), 'does not exist'],
    [t.dir, "is a directory: give the backup's file name"],
    [join(plain, 'x'), 'cannot be read (ENOTDIR)'],
    [loop, 'cannot be read (ELOOP)'],
  ] as const) {
    err.mockClear();
    expect(await snapshot(['restore', file, '--data', data, '--id', '1']), file).toBe(1);
    expect(err.mock.calls).toHaveLength(1);
    const line = String(err.mock.calls[0]?.[0]);
    expect(line.split('\n')).toHaveLength(1);
    expect(line.startsWith(`raftlog snapshot: NO_BACKUP: ${file} ${why} (`), line).toBe(true);
    expect(existsSync(data)).toBe(false);
  }
});
