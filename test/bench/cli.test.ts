// The benchmark commands' flags: both list --profile in their help, reject what they
// do not know, and `raftlog bench --profile` writes a profile of the system it measured;
// how `raftlog bench` takes turns between systems.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { main as bench, settled } from '../../src/cli/bench.js';
import { processStat } from '../../src/cli/process-cpu.js';
import { analyzeProfile, type CpuProfile } from '../../src/cli/profile.js';
import type { ReplicatedLog } from '../../src/log/replicated-log.js';
import { tempDir } from '../log/helpers.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const MAIN = join(ROOT, 'src/cli/main.ts');
const RUN = join(ROOT, 'bench/run.ts');

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function tsx(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', ...args], { encoding: 'utf8', timeout: 120_000, cwd: ROOT }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

it('raftlog bench --help and npm run bench -- --help list --profile', async () => {
  const cli = await tsx([MAIN, 'bench', '--help']);
  expect(cli.code).toBe(0);
  expect(cli.stdout).toContain('--profile');
  expect(cli.stdout).toContain('--profile-dir DIR');
  const suites = await tsx([RUN, '--help']);
  expect(suites.code).toBe(0);
  expect(suites.stdout).toContain('--profile');
  expect(suites.stdout).toContain('micro');
  expect(suites.stdout).toContain('report');
});

it('npm run bench refuses an unknown option or suite with its usage', async () => {
  const option = await tsx([RUN, 'micro', '--profiel']);
  expect(option.code).toBe(2);
  expect(option.stderr).toContain('unknown option --profiel');
  const suite = await tsx([RUN, 'nosuch']);
  expect(suite.code).toBe(2);
  expect(suite.stderr).toContain('unknown suite nosuch');
  // An option of another suite: its value is no suite.
  const other = await tsx([RUN, 'cluster', '--rounds', '2']);
  expect(other.code).toBe(2);
  expect(other.stderr.split('\n')[0]).toBe('npm run bench: unknown option --rounds');
});

it('raftlog bench refuses a bad --sync, an unknown system and an --out or --profile-dir that is a file or lies under one before it measures anything', async () => {
  const t = tempDir('raftlog-bench-flags-');
  cleanups.push(t.cleanup);
  const file = join(t.dir, 'file');
  writeFileSync(file, '');
  const profiles = join(t.dir, 'profiles');
  const quick = ['--seconds', '0.1', '--sizes', '100', '--clients', '1'];
  for (const [args, message] of [
    [['--sync', 'sometimes', '--systems', 'embedded', '--out', t.dir], "--sync must be 'always' or 'none'"],
    // Profiled, the systems run one after the other: embedded would be measured and its profile written first.
    [['--systems', 'embedded,nosuch', '--out', t.dir, '--profile', '--profile-dir', profiles], "unknown system 'nosuch' (cluster, embedded, sqlite)"],
    [['--systems', 'embedded', '--out', file], `--out: ${file} is not a directory`],
    [['--systems', 'embedded', '--out', t.dir, '--profile-dir', file], `--profile-dir: ${file} is not a directory`],
    [['--systems', 'embedded', '--out', join(file, 'results')], `--out: ${file} is not a directory`],
    [['--systems', 'embedded', '--out', t.dir, '--profile-dir', join(file, 'a', 'b')], `--profile-dir: ${file} is not a directory`],
  ] as const) {
    const r = await tsx([MAIN, 'bench', ...quick, ...args]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(`raftlog bench: ${message}`);
    expect(r.stdout, args.join(' ')).toBe('');
    expect(existsSync(profiles)).toBe(false);
    expect(existsSync(join(t.dir, 'cluster.json'))).toBe(false);
  }
});

it('raftlog bench refuses a number flag given a list, a fraction, an exponent or junk, a list naming a case twice and a record larger than the log takes, before it measures anything', async () => {
  const t = tempDir('raftlog-bench-numbers-');
  cleanups.push(t.cleanup);
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  const defaults: Record<string, string> = { '--seconds': '0.1', '--runs': '1', '--sizes': '100', '--clients': '1' };
  try {
    for (const [flag, value, message] of [
      ['--runs', '2,3', "--runs must be a positive integer, got '2,3'"],
      ['--runs', '1.5', "--runs must be a positive integer, got '1.5'"],
      ['--runs', '-1', "--runs must be a positive integer, got '-1'"],
      ['--runs', '0', "--runs must be a positive integer, got '0'"],
      ['--clients', '1,x', "--clients must be positive integers separated by commas, got '1,x'"],
      ['--sizes', '1e3', "--sizes must be positive integers separated by commas, got '1e3'"],
      ['--sizes', '0x10', "--sizes must be positive integers separated by commas, got '0x10'"],
      ['--seconds', '1e3', "--seconds must be a positive number (like 3 or 0.5), got '1e3'"],
      ['--seconds', 'Infinity', "--seconds must be a positive number (like 3 or 0.5), got 'Infinity'"],
      ['--seconds', '1,2', "--seconds must be a positive number (like 3 or 0.5), got '1,2'"],
      ['--sizes', '100,1024,100', '--sizes names 100 twice'],
      ['--clients', '1,16,1', '--clients names 1 twice'],
      ['--sizes', '4194305', '--sizes: 4194305 is larger than a record may be (4194304 bytes)'],
    ] as const) {
      const args = Object.entries({ ...defaults, [flag]: value }).flat();
      err.mockClear();
      expect(await bench([...args, '--systems', 'embedded', '--out', t.dir]), `${flag} ${value}`).toBe(2);
      expect(String(err.mock.calls[0]?.[0]).split('\n')[0]).toBe(`raftlog bench: ${message}`);
      expect(log).not.toHaveBeenCalled(); // the machine's header, the first thing a run prints
      expect(existsSync(join(t.dir, 'cluster.json'))).toBe(false);
    }
    err.mockClear();
    expect(await bench([...Object.entries(defaults).flat(), '--systems', 'embedded,embedded', '--out', t.dir])).toBe(2);
    expect(String(err.mock.calls[0]?.[0]).split('\n')[0]).toBe('raftlog bench: --systems names embedded twice');
    expect(log).not.toHaveBeenCalled();
  } finally {
    vi.restoreAllMocks();
  }
});

it('raftlog bench ends a failure after it has started with one coded line and exit 1, not a stack trace', async () => {
  const t = tempDir('raftlog-bench-fails-');
  cleanups.push(t.cleanup);
  // Each system's work directory is made under the temporary directory: a missing one fails the first.
  const before = process.env.TMPDIR;
  process.env.TMPDIR = join(t.dir, 'missing');
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  try {
    expect(await bench(['--systems', 'embedded', '--seconds', '0.1', '--sizes', '100', '--clients', '1', '--out', t.dir])).toBe(1);
    expect(err.mock.calls).toHaveLength(1);
    expect(String(err.mock.calls[0]?.[0])).toMatch(/^raftlog bench: ENOENT: [^\n]*mkdtemp/);
  } finally {
    vi.restoreAllMocks();
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
  }
});

it('raftlog bench --profile writes one profile per system and prints its summary', async () => {
  const t = tempDir('raftlog-bench-cli-');
  cleanups.push(t.cleanup);
  const profiles = join(t.dir, 'profiles');
  const r = await tsx([
    MAIN,
    'bench',
    '--seconds',
    '0.2',
    '--sizes',
    '100',
    '--clients',
    '2',
    '--systems',
    'embedded',
    '--out',
    t.dir,
    '--profile',
    '--profile-dir',
    profiles,
  ]);
  expect(r.code, r.stderr).toBe(0);
  const file = join(profiles, 'bench-embedded.cpuprofile');
  expect(existsSync(file)).toBe(true);
  const summary = analyzeProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile);
  expect(summary.samples).toBeGreaterThan(0);
  expect(r.stdout).toMatch(/embedded \(1 node\) \(.*bench-embedded\.cpuprofile\): \d+ ms sampled .* idle [\d.]+%, GC [\d.]+%, program [\d.]+%/);
  expect(r.stdout).toContain('| self ms | share | function | location |');
  const results = JSON.parse(readFileSync(join(t.dir, 'cluster.json'), 'utf8')) as {
    machine: { cores: number; loadStart: number[]; loadEnd: number[] };
    profiled: boolean;
  };
  // The goals are not judged from a profiled run: the systems ran apart, slowed.
  expect(results.profiled).toBe(true);
  expect(results.machine.cores).toBeGreaterThan(0);
  expect(results.machine.loadStart).toHaveLength(3);
  expect(results.machine.loadEnd).toHaveLength(3);
});

it('raftlog bench --runs takes turns between the systems within each case and reports medians with CPU and GC', async () => {
  const t = tempDir('raftlog-bench-runs-');
  cleanups.push(t.cleanup);
  const r = await tsx([MAIN, 'bench', '--seconds', '0.2', '--runs', '3', '--sizes', '100', '--clients', '2', '--systems', 'embedded,sqlite', '--out', t.dir]);
  expect(r.code, r.stderr).toBe(0);
  // The progress lines show the order the runs took: every other run reversed, so that neither always goes first.
  const order = [...r.stdout.matchAll(/\] (embedded \(1 node\)|better-sqlite3) 100 B x 2 clients run (\d)\/3/g)].map((m) => `${m[1]} ${m[2]}`);
  expect(order).toEqual(['embedded (1 node) 1', 'better-sqlite3 1', 'better-sqlite3 2', 'embedded (1 node) 2', 'embedded (1 node) 3', 'better-sqlite3 3']);
  const measured = [...r.stdout.matchAll(/\] (embedded \(1 node\)|better-sqlite3) 100 B x 2 clients run \d\/3 \.\.\. ([\d,]+) rec\/s/g)].map((m) => ({
    system: m[1]!,
    rate: Number(m[2]!.replace(/,/g, '')),
  }));
  const results = JSON.parse(readFileSync(join(t.dir, 'cluster.json'), 'utf8')) as {
    runs: number;
    profiled: boolean;
    rows: Array<{ system: string; runs: number; recordsPerSec: number; cpuUsPerRecord: number; gcShare: number }>;
  };
  expect(results.runs).toBe(3);
  expect(results.profiled).toBe(false);
  expect(results.rows.map((x) => x.system)).toEqual(['embedded (1 node)', 'better-sqlite3']);
  for (const row of results.rows) {
    const rates = measured.filter((m) => m.system === row.system).map((m) => m.rate);
    const median = [...rates].sort((a, b) => a - b)[1]!;
    expect(row.runs).toBe(3);
    expect(Math.abs(Math.round(row.recordsPerSec) - median)).toBeLessThanOrEqual(1); // printed rounded
    expect(row.cpuUsPerRecord).toBeGreaterThan(0);
    expect(row.gcShare).toBeGreaterThanOrEqual(0);
    expect(row.gcShare).toBeLessThan(1);
  }
  expect(r.stdout).toMatch(/\| embedded \(1 node\) \| 100 B \| 2 \| [\d,]+ \| [\d.]+x \|/);
});

it('raftlog bench without --systems leaves the sqlite baseline out, saying so, where better-sqlite3 cannot be loaded', async () => {
  const t = tempDir('raftlog-bench-no-sqlite-');
  cleanups.push(t.cleanup);
  // An installed raftlog has no better-sqlite3 (a development dependency) unless its user added it.
  const hide = join(t.dir, 'no-sqlite.cjs');
  writeFileSync(
    hide,
    `const M = require('node:module');
const resolve = M._resolveFilename;
M._resolveFilename = function (request, ...rest) {
  if (request === 'better-sqlite3') throw Object.assign(new Error("Cannot find module 'better-sqlite3'"), { code: 'MODULE_NOT_FOUND' });
  return resolve.call(this, request, ...rest);
};
`,
  );
  const out = join(t.dir, 'out');
  const r = await tsx(['--require', hide, MAIN, 'bench', '--seconds', '0.1', '--sizes', '100', '--clients', '1', '--out', out]);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toContain('better-sqlite3 is not installed: the sqlite baseline is left out');
  const results = JSON.parse(readFileSync(join(out, 'cluster.json'), 'utf8')) as { rows: Array<{ system: string }> };
  expect(results.rows.map((x) => x.system)).toEqual(['cluster (3 nodes)', 'embedded (1 node)']);
});

it("a cluster's turn ends once every follower holds every entry and their processes are idle", async () => {
  let match = 5;
  const log = { status: () => ({ lastIndex: 10, progress: { 1: { match: 10 }, 2: { match: 10 }, 3: { match } } }) } as unknown as Pick<ReplicatedLog, 'status'>;
  let caughtUp = false;
  const waiting = settled(log, []).then(() => (caughtUp = true));
  await new Promise((r) => setTimeout(r, 600));
  expect(caughtUp).toBe(false); // node 3 trails
  match = 10;
  await waiting;

  // A follower busy for 1.5 s (say, catching up) holds the turn until it is done.
  const busy = spawn(process.execPath, ['-e', 'const t = Date.now(); while (Date.now() - t < 1500); setTimeout(() => {}, 20000);']);
  cleanups.push(() => busy.kill());
  const started = Date.now();
  await settled(log, [busy.pid!]);
  expect(Date.now() - started).toBeGreaterThanOrEqual(1200);
});

it("a cluster's turn waits for a trailing follower whatever the wall clock does", async () => {
  let match = 5;
  const log = { status: () => ({ lastIndex: 10, progress: { 1: { match: 10 }, 2: { match: 10 }, 3: { match } } }) } as unknown as Pick<ReplicatedLog, 'status'>;
  // Stepped an hour forward at every reading (an NTP step, made extreme): the 30 s the turn may wait are not up.
  const wall = Date.now;
  let stepped = 0;
  Date.now = () => wall() + ++stepped * 3_600_000;
  let caughtUp = false;
  try {
    const waiting = settled(log, []).then(() => (caughtUp = true));
    await new Promise((r) => setTimeout(r, 600));
    expect(caughtUp).toBe(false); // node 3 trails
    match = 10;
    await waiting;
  } finally {
    Date.now = wall;
  }
});

it("reads another process's CPU time and state: a spinning one runs (R), a waiting one sleeps (S)", async () => {
  const spin = spawn(process.execPath, ['-e', 'for (;;);']);
  const sleep = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)']);
  cleanups.push(
    () => spin.kill(),
    () => sleep.kill(),
  );
  // Once started (a loaded machine may take seconds), the waiting one sleeps for good.
  let waiting = '';
  for (const deadline = Date.now() + 20_000; Date.now() < deadline && waiting !== 'S';) {
    await new Promise((r) => setTimeout(r, 100));
    waiting = processStat(sleep.pid!).state;
  }
  expect(waiting).toBe('S');
  const s = processStat(spin.pid!);
  expect(s.state).toBe('R');
  expect(s.cpuSeconds).toBeGreaterThan(0);
});

it('a cluster node that exits during a run ends the bench with a coded error naming it', async () => {
  const gone = spawn(process.execPath, ['-e', '']);
  await new Promise((r) => gone.once('exit', r));
  const log = { status: () => ({ lastIndex: 1, progress: {} }) } as unknown as Pick<ReplicatedLog, 'status'>;
  await expect(settled(log, [gone.pid!])).rejects.toMatchObject({ code: 'BENCH_NODE_EXITED', message: expect.stringContaining(`pid ${gone.pid}`) });
});

it('raftlog bench interrupted mid-run removes its work directories and its cluster nodes stop', async () => {
  const t = tempDir('raftlog-bench-interrupt-');
  cleanups.push(t.cleanup);
  const tmp = join(t.dir, 'tmp');
  mkdirSync(tmp);
  const args = ['--systems', 'cluster,embedded', '--seconds', '600', '--sizes', '100', '--clients', '1', '--out', t.dir];
  const proc = spawn(process.execPath, ['--import', 'tsx', MAIN, 'bench', ...args], { cwd: ROOT, env: { ...process.env, TMPDIR: tmp } });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.resume();
  const nodes: number[] = [];
  cleanups.push(() => {
    for (const pid of [proc.pid!, ...nodes]) if (existsSync(`/proc/${pid}`)) process.kill(pid, 'SIGKILL');
  });
  // Both systems are open once the first case is under way.
  await vi.waitFor(() => expect(out).toContain('[1/2]'), { timeout: 120_000, interval: 100 });
  // Nodes 2 and 3, told from the other children of the process (tsx's compiler) by their command.
  for (const line of execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(proc.pid)], { encoding: 'utf8' }).split('\n'))
    if (/ serve --id [23] /.test(line)) nodes.push(Number(line.trim().split(' ')[0]));
  expect(nodes).toHaveLength(2);
  expect(readdirSync(tmp).filter((f) => f.startsWith('raftlog-bench-'))).toHaveLength(2);
  process.kill(proc.pid!, 'SIGINT');
  expect(await exited).toBe(130);
  expect(readdirSync(tmp).filter((f) => f.startsWith('raftlog-bench-'))).toEqual([]);
  await vi.waitFor(() => expect(nodes.filter((pid) => existsSync(`/proc/${pid}`))).toEqual([]), { timeout: 60_000, interval: 200 });
}, 240_000);

it('npm run bench -- wal interrupted removes its work directory, with the 1 GiB file the raw disk is overwritten in', async () => {
  const t = tempDir('raftlog-walbench-interrupt-');
  cleanups.push(t.cleanup);
  const proc = spawn(process.execPath, ['--import', 'tsx', RUN, 'wal', '--quick'], { cwd: ROOT, env: { ...process.env, TMPDIR: t.dir } });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  cleanups.push(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.resume();
  await vi.waitFor(() => expect(out).toContain('wal bench:'), { timeout: 120_000, interval: 100 });
  expect(readdirSync(t.dir).filter((f) => f.startsWith('raftlog-walbench-'))).toHaveLength(1);
  process.kill(proc.pid!, 'SIGINT');
  expect(await exited).toBe(130);
  expect(readdirSync(t.dir).filter((f) => f.startsWith('raftlog-walbench-'))).toEqual([]);
}, 240_000);
