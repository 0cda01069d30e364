// `raftlog serve` failing to start ends with one coded line on stderr and exit 1
// (2 for bad flags), never a stack trace; and a node with no ports runs until stopped.
import { execFile, spawn } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { main as snapshot } from '../../src/cli/snapshot.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { FileSnapshotStore } from '../../src/storage/snapshot-store.js';
import { Wal } from '../../src/wal/index.js';
import { freePorts, tempDir, waitFor } from '../log/helpers.js';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function serve(args: string[], level = 'silent'): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', MAIN, 'serve', '--log-level', level, ...args],
      { encoding: 'utf8', timeout: 60_000 },
      (err, _out, stderr) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stderr });
      },
    );
  });
}

/** A loopback port something else listens on, until the test ends. */
async function takenPort(): Promise<number> {
  const [port] = await freePorts(1);
  const busy: Server = createServer();
  await new Promise<void>((r) => busy.listen(port, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => busy.close(() => r())));
  return port!;
}

function oneLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.trim().split('\n');
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
}

it('bad flags, a data directory that is a file or is locked, ports in use: one line each', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const busyPort = await takenPort();

  const notMember = await serve(['--id', '5', '--data', join(t.dir, 'a'), '--peers', '1=127.0.0.1:1,2=127.0.0.1:2', '--insecure']);
  expect(notMember.code).toBe(2);
  expect(notMember.stderr).toMatch(/--peers must include this node's id 5/);
  const badLevel = await serve(['--id', '1', '--data', join(t.dir, 'a')], 'loud');
  expect(badLevel.code).toBe(2);
  const tokenFile = join(t.dir, 'token');
  writeFileSync(tokenFile, 'euro-\u20ac\n');
  const badToken = await serve(['--id', '1', '--data', join(t.dir, 'a'), '--admin', '127.0.0.1:0', '--admin-token-file', tokenFile]);
  expect(badToken.code).toBe(2);
  expect(badToken.stderr).toMatch(/--admin-token-file: the token holds a character a request cannot carry/);
  expect(existsSync(join(t.dir, 'a'))).toBe(false);

  const file = join(t.dir, 'file');
  writeFileSync(file, 'not a directory');
  const onFile = await serve(['--id', '1', '--data', file]);
  expect(onFile.code).toBe(1);
  oneLine(
    onFile.stderr,
    /^raftlog serve: DATA_DIR_UNUSABLE: data directory .*file is not a directory \(check that --data is a directory this user can read and write/i,
  );

  const locked = join(t.dir, 'locked');
  const wal = await Wal.open(join(locked, 'wal'));
  cleanups.push(() => wal.close());
  const onLocked = await serve(['--id', '1', '--data', locked]);
  expect(onLocked.code).toBe(1);
  oneLine(onLocked.stderr, /^raftlog serve: WAL_LOCKED: /);

  // Each address a node listens on is tried before its data directory is made, and the flag named.
  const resp = await serve(['--id', '1', '--data', join(t.dir, 'r'), '--resp', `127.0.0.1:${busyPort}`]);
  expect(resp.code).toBe(1);
  oneLine(resp.stderr, /^raftlog serve: EADDRINUSE: --resp: cannot listen on 127\.0\.0\.1:\d+: .*\(the port is in use/);
  expect(existsSync(join(t.dir, 'r'))).toBe(false);
  const admin = await serve(['--id', '1', '--data', join(t.dir, 'd'), '--admin', `127.0.0.1:${busyPort}`]);
  expect(admin.code).toBe(1);
  oneLine(admin.stderr, /^raftlog serve: EADDRINUSE: --admin: /);
  expect(existsSync(join(t.dir, 'd'))).toBe(false);
  const peer = await serve(['--id', '1', '--data', join(t.dir, 'p'), '--peers', `1=127.0.0.1:${busyPort},2=127.0.0.1:1`, '--insecure']);
  expect(peer.code).toBe(1);
  oneLine(peer.stderr, /^raftlog serve: EADDRINUSE: --peers: /);
  expect(existsSync(join(t.dir, 'p'))).toBe(false);
  // 192.0.2.1 is a documentation address (RFC 5737): no machine's own.
  const away = await serve(['--id', '1', '--data', join(t.dir, 'l'), '--listen', '192.0.2.1:7101', '--insecure']);
  expect(away.code).toBe(1);
  oneLine(away.stderr, /^raftlog serve: EADDRNOTAVAIL: --listen: cannot listen on 192\.0\.2\.1:7101: .*\(the address is not one of this machine's/);
  expect(existsSync(join(t.dir, 'l'))).toBe(false);
  // .invalid never resolves (RFC 6761): the system's ENOTFOUND (or EAI_AGAIN offline) has no row of its own.
  const unresolved = await serve(['--id', '1', '--data', join(t.dir, 'u'), '--resp', 'nowhere.invalid:6379']);
  expect(unresolved.code).toBe(1);
  oneLine(unresolved.stderr, /^raftlog serve: LISTEN_FAILED: --resp: cannot listen on nowhere\.invalid:6379: .*\(give one of this machine's IP addresses/);
  expect(existsSync(join(t.dir, 'u'))).toBe(false);
  const [free] = await freePorts(1);
  const twice = await serve(['--id', '1', '--data', join(t.dir, 't'), '--resp', `127.0.0.1:${free}`, '--admin', `127.0.0.1:${free}`]);
  expect(twice.code).toBe(2);
  expect(twice.stderr.split('\n')[0]).toBe(`raftlog serve: --resp and --admin are both 127.0.0.1:${free}: give each its own port`);
  expect(existsSync(join(t.dir, 't'))).toBe(false);
  // One port under two spellings: the node's own flags clash, nothing else holds it.
  for (const [args, message] of [
    [['--resp', `0.0.0.0:${free}`, '--admin', `127.0.0.1:${free}`], `--resp 0.0.0.0:${free} and --admin 127.0.0.1:${free}`],
    [['--listen', `0.0.0.0:${free}`, '--insecure', '--resp', `127.0.0.1:${free}`], `--listen 0.0.0.0:${free} and --resp 127.0.0.1:${free}`],
  ] as const) {
    const spelt = await serve(['--id', '1', '--data', join(t.dir, 't'), ...args]);
    expect(spelt.code, args.join(' ')).toBe(2);
    expect(spelt.stderr.split('\n')[0]).toBe(`raftlog serve: ${message} cannot both listen on port ${free}: give each its own port`);
    expect(existsSync(join(t.dir, 't'))).toBe(false);
  }
}, 180_000);

it("a node's own damaged snapshot, or its lost WAL or snapshot, says to restore the node from its peers, not to take another backup", async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  // The WAL records a snapshot at 5: with no file for it, with a damaged one, and the file without the WAL.
  const missing = join(t.dir, 'missing');
  const wal = await Wal.open(join(missing, 'wal'));
  await wal.saveSnapshot({ index: 5, term: 1 });
  await wal.close();
  mkdirSync(join(missing, 'snapshots'));
  const damaged = join(t.dir, 'damaged');
  cpSync(missing, damaged, { recursive: true });
  writeFileSync(join(damaged, 'snapshots', 'snap-0000000000000005-1.snap'), Buffer.alloc(64, 7));
  const lost = join(t.dir, 'lost');
  mkdirSync(lost);
  cpSync(join(damaged, 'snapshots'), join(lost, 'snapshots'), { recursive: true });
  for (const [dir, code] of [
    [missing, 'SNAPSHOT_MISSING'],
    [damaged, 'SNAPSHOT_CORRUPT'],
    [lost, 'STATE_CORRUPT'],
  ]) {
    const r = await serve(['--id', '1', '--data', dir!]);
    expect(r.code, code).toBe(1);
    oneLine(r.stderr, new RegExp(`^raftlog serve: ${code}: .*\\(.*restore the node from its peers`));
    expect(r.stderr, code).not.toMatch(/take another backup/);
  }
}, 180_000);

/** `raftlog serve` started on a data directory restored from a whole, checksummed snapshot holding `data`. */
async function serveOnSnapshot(data: Buffer): Promise<{ code: number; stderr: string }> {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const store = await FileSnapshotStore.open(join(t.dir, 'backup'));
  await store.save({ meta: { index: 7, term: 0, conf: { voters: [], learners: [] } }, data });
  const dir = join(t.dir, 'data');
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  expect(await snapshot(['restore', join(t.dir, 'backup', 'snap-0000000000000007-0.snap'), '--data', dir, '--id', '1'])).toBe(0);
  vi.restoreAllMocks();
  return serve(['--id', '1', '--data', dir]);
}

it("a node whose snapshot a later release's key-value store wrote says to run that release, not to check the disk", async () => {
  const r = await serveOnSnapshot(Buffer.from('RLKV2\nof a later format'));
  expect(r.code).toBe(1);
  oneLine(
    r.stderr,
    /^raftlog serve: LOG_FATAL: .*"RLKV2\\n" by another version of raftlog.* \(the snapshot was written by another version of raftlog: run that version/,
  );
  expect(r.stderr).not.toMatch(/check the disk/);
}, 180_000);

it('a node whose snapshot holds what is not a key-value store says to restore the node from its peers, not to check the disk', async () => {
  // Only the key-value store's decoder can tell: the snapshot file is whole and checksummed.
  const r = await serveOnSnapshot(Buffer.from('RLKV1\n\xc1 not msgpack'));
  expect(r.code).toBe(1);
  oneLine(r.stderr, /^raftlog serve: LOG_FATAL: .*KV snapshot: .* \(the snapshot holds what is not a key-value store: restore the node from its peers/);
  expect(r.stderr).not.toMatch(/check the disk/);
}, 180_000);

it("a failure naming a file of the data directory reaches the terminal with the name's control characters written out", async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const data = join(t.dir, 'data');
  const wal = await Wal.open(join(data, 'wal'));
  await wal.close();
  writeFileSync(join(data, 'wal', 'x\x1b]0;owned\x07\n.txt'), '');
  const r = await serve(['--id', '1', '--data', data]);
  expect(r.code).toBe(1);
  oneLine(r.stderr, /^raftlog serve: WAL_CORRUPT: unexpected file x\\x1b]0;owned\\x07\\x0a\.txt /);
  expect(r.stderr.trimEnd()).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
});

it('a single node with no ports runs until told to stop, then stops cleanly', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const p = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', '--id', '1', '--data', t.dir, '--log-format', 'json'], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  cleanups.push(() => void (p.exitCode === null && p.signalCode === null && p.kill('SIGKILL')));
  let out = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
  // Any term: on a loaded machine the first election's write may outlast an election timeout.
  await waitFor('the node to lead', () => /"msg":"leader 1 term \d+"/.test(out), 150_000);
  // Still running: it stops only when told to below (an idle node once exited by itself).
  // Told as `raftlog cluster` tells its nodes: its IPC channel closes.
  expect(p.exitCode).toBeNull();
  p.disconnect();
  expect(await exited).toBe(0);
  expect(out).toMatch(/"msg":"node 1 stopped"/);
}, 240_000);

it('--resp with --state-machine none, and a flag for a port not given, are usage errors, not a node without the port', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const [port] = await freePorts(1);
  const r = await serve(['--id', '1', '--data', join(t.dir, 'a'), '--state-machine', 'none', '--resp', `127.0.0.1:${port}`]);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/--resp serves the key-value store: it needs --state-machine kv/);
  expect(existsSync(join(t.dir, 'a'))).toBe(false);
  // A flag that qualifies a port not given is refused too, before anything is created.
  for (const [flag, value, needs] of [
    ['--admin-token-file', join(t.dir, 'token'), '--admin'],
    ['--requirepass-file', join(t.dir, 'pass'), '--resp'],
    ['--max-clients', '10', '--resp'],
  ]) {
    const alone = await serve(['--id', '1', '--data', join(t.dir, 'a'), flag!, value!]);
    expect(alone.code, flag).toBe(2);
    expect(alone.stderr).toContain(`${flag} applies to ${needs}, which is not given`);
    expect(existsSync(join(t.dir, 'a'))).toBe(false);
  }
  // So are peer credentials and a cluster id for a node with no peer port. With the RESP port
  // taken, one that is taken shows as exit 1 once the log opened.
  const secret = join(t.dir, 'secret');
  writeFileSync(secret, 'a cluster secret of the test\n', { mode: 0o600 });
  const busy = `127.0.0.1:${await takenPort()}`;
  for (const flags of [
    ['--cluster-secret-file', secret],
    ['--insecure'],
    ['--cluster-id', 'c1'],
    ['--tls-cert', secret, '--tls-key', secret, '--tls-ca', secret],
  ]) {
    const alone = await serve(['--id', '1', '--data', join(t.dir, 'a'), '--resp', busy, ...flags]);
    expect(alone.code, flags[0]).toBe(2);
    expect(alone.stderr.split('\n')[0]).toBe(`raftlog serve: ${flags[0]} applies to --peers or --listen, neither of which is given`);
    expect(existsSync(join(t.dir, 'a'))).toBe(false);
  }
}, 120_000);

it('a --cluster-id that is blank, holds a control character or is over 256 bytes is a usage error, and nothing is created', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const data = join(t.dir, 'a');
  // Blank or with a pasted tab or line end, a node started and refused its peers as of another
  // cluster; over 256 bytes it failed once started, as INVALID_ARGUMENT (exit 1).
  for (const id of [' ', '\u00a0', 'prod\t', 'prod\n', 'x'.repeat(257)]) {
    const r = await serve(['--id', '1', '--data', data, '--listen', '127.0.0.1:0', '--insecure', '--cluster-id', id]);
    expect(r.code, JSON.stringify(id)).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(
      'raftlog serve: --cluster-id must be a non-empty string of at most 256 UTF-8 bytes, not blank and without control characters',
    );
    expect(existsSync(data)).toBe(false);
  }
}, 120_000);

it('an address that is not HOST:PORT (--listen, --peers, --resp, --admin) is a usage error, and nothing is created', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const data = join(t.dir, 'a');
  for (const args of [
    ['--listen', '127.0.0.1:99999', '--insecure'],
    ['--peers', '1=127.0.0.1:7101,2=127.0.0.1:65536', '--insecure'],
    ['--resp', '127.0.0.1:99999'],
    ['--admin', '127.0.0.1:99999'],
  ]) {
    const r = await serve(['--id', '1', '--data', data, ...args]);
    expect(r.code, args[0]).toBe(2);
    expect(r.stderr.split('\n')[0]).toMatch(
      args[0] === '--peers' ? /bad peer '2=127.0.0.1:65536'/ : new RegExp(`${args[0]}: '127.0.0.1:99999' is not HOST:PORT`),
    );
    expect(existsSync(data), args[0]).toBe(false);
  }
}, 300_000);

it('warns of a secret file other users may read, and starts as before', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const busyPort = await takenPort();
  const pass = join(t.dir, 'pass');
  writeFileSync(pass, 'a password\n');
  // The RESP port is taken, so the node stops once it has read its flags: exit 1 either way.
  const args = ['--id', '1', '--data', join(t.dir, 'a'), '--resp', `127.0.0.1:${busyPort}`, '--requirepass-file', pass];
  chmodSync(pass, 0o644);
  const shared = await serve(args, 'warn');
  expect(shared.code).toBe(1);
  expect(shared.stderr).toMatch(/--requirepass-file .*pass may be read by other users \(mode 0644\): chmod 600 it/);
  chmodSync(pass, 0o600);
  const own = await serve(args, 'warn');
  expect(own.code).toBe(1);
  expect(own.stderr).not.toMatch(/may be read by other users/);
}, 120_000);

it('a bad id, address or number flag is a usage error before anything is created, not a failure after the log opened', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const data = join(t.dir, 'a');
  for (const [flags, message] of [
    [['--id', '0'], "--id must be a positive integer, got '0'"],
    [['--id', '1', '--snapshot-every', '0'], "--snapshot-every must be a positive integer, got '0'"],
    [['--id', '1', '--resp', 'nope'], "--resp: 'nope' is not HOST:PORT (a port up to 65535)"],
    [['--id', '1', '--admin', '127.0.0.1:99999'], "--admin: '127.0.0.1:99999' is not HOST:PORT (a port up to 65535)"],
    [
      ['--id', '1', '--admin', '127.0.0.1:6000'],
      "--admin: port 6000 is one Node's fetch refuses to connect to (the Fetch standard's bad ports): raftlog status and the other operator commands could not reach the node; serve it on another port",
    ],
    [['--id', '1', '--listen', '127.0.0.1:x', '--insecure'], "--listen: '127.0.0.1:x' is not HOST:PORT (a port up to 65535)"],
    [['--id', '1', '--peers', '1=127.0.0.1:70000', '--insecure'], "bad peer '1=127.0.0.1:70000' (want ID=HOST:PORT, a port up to 65535)"],
    // Port 0 is a new port at every start: the members of a cluster could not find the node, at once or after its restart.
    [
      ['--id', '1', '--peers', '1=127.0.0.1:7101,2=127.0.0.1:0', '--insecure'],
      '--peers: node 2 at 127.0.0.1:0 has no port of its own (port 0 is a new free port at every start): its peers could not reach it',
    ],
    [
      ['--id', '1', '--peers', '1=127.0.0.1:0,2=127.0.0.1:7102', '--insecure'],
      '--peers: node 1 at 127.0.0.1:0 has no port of its own (port 0 is a new free port at every start): its peers could not reach it',
    ],
    [
      ['--id', '1', '--listen', '127.0.0.1:0', '--peers', '1=127.0.0.1:7101,2=127.0.0.1:7102', '--insecure'],
      '--listen: 127.0.0.1:0 is a new free port at every start, not the 127.0.0.1:7101 its peers reach it at: listen on that port',
    ],
  ] as const) {
    const r = await serve(['--data', data, ...flags]);
    expect(r.code, `${flags.join(' ')}: ${r.stderr}`).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(`raftlog serve: ${message}`);
    expect(existsSync(data), flags.join(' ')).toBe(false);
  }
}, 180_000);

it('a node that listened alone on port 0 and has been given members since is refused at its restart on port 0, its log closed', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const data = join(t.dir, 'a');
  const first = await ReplicatedLog.open<unknown>({ dataDir: data, listen: '127.0.0.1:0', insecure: true });
  await first.barrier();
  await first.addLearner(2, '127.0.0.1:9');
  await first.close();
  const r = await serve(['--id', '1', '--data', data, '--listen', '127.0.0.1:0', '--insecure']);
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr.split('\n')[0]).toBe(
    'raftlog serve: --listen: 127.0.0.1:0 is a new free port at every start, and this node has 1 other member(s), who know it at the port it had: listen on that port (raftlog status on a member shows it)',
  );
  // Closed: the directory opens again.
  await (await ReplicatedLog.open<unknown>({ dataDir: data, listen: '127.0.0.1:0', insecure: true })).close();
}, 120_000);

it('reads --requirepass-file, --admin-token-file and --cluster-secret-file one way: a line with whitespace at an end is refused, a CRLF ending is not part of it', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const busy = `127.0.0.1:${await takenPort()}`;
  const file = (name: string, text: string): string => {
    const path = join(t.dir, name);
    writeFileSync(path, text, { mode: 0o600 });
    return path;
  };
  const data = join(t.dir, 'a');
  for (const [args, message] of [
    // The password kept its trailing space, while the token lost its own.
    [['--resp', busy, '--requirepass-file', file('pass', 'a password \n')], '--requirepass-file: line 1 (the password) begins or ends with whitespace'],
    [['--resp', busy, '--requirepass-file', file('pass-cr', 'a password\r')], '--requirepass-file: line 1 (the password) begins or ends with whitespace'],
    [['--admin', busy, '--admin-token-file', file('token', 'an admin token \n')], '--admin-token-file: line 1 (the token) begins or ends with whitespace'],
    [
      ['--listen', busy, '--cluster-secret-file', file('secret', 'a cluster secret of the test\n \n')],
      '--cluster-secret-file: line 2 (a secret) begins or ends with whitespace',
    ],
  ] as const) {
    const r = await serve(['--id', '1', '--data', data, ...args]);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
    expect(r.stderr.split('\n')[0]!.startsWith(`raftlog serve: ${message} (a space, a tab, a CR)`), r.stderr).toBe(true);
    expect(existsSync(data)).toBe(false);
  }
  // A CRLF file is taken: the node goes on to its port, which is taken.
  const crlf = await serve(['--id', '1', '--data', data, '--resp', busy, '--requirepass-file', file('pass-crlf', 'a password\r\n')]);
  expect(crlf.code, crlf.stderr).toBe(1);
  oneLine(crlf.stderr, /^raftlog serve: EADDRINUSE: /);
}, 180_000);

it('a number flag written any way but decimal digits is a usage error, not read as another number', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  // With the RESP port taken, a flag that was taken shows as exit 1 once the log opened.
  const busy = `127.0.0.1:${await takenPort()}`;
  const data = join(t.dir, 'a');
  for (const [flags, message] of [
    [['--id', '1e0'], "--id must be a positive integer, got '1e0'"],
    [['--id', '1', '--snapshot-every', '0x10'], "--snapshot-every must be a positive integer, got '0x10'"],
    [['--id', '1', '--max-clients', '10.0'], "--max-clients must be a positive integer, got '10.0'"],
  ] as const) {
    const r = await serve(['--data', data, '--resp', busy, ...flags]);
    expect(r.code, `${flags.join(' ')}: ${r.stderr}`).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(`raftlog serve: ${message}`);
    expect(existsSync(data), flags.join(' ')).toBe(false);
  }
}, 180_000);
