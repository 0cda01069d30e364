// `raftlog bench`: committed records/s and latency of a 3-process cluster on
// loopback, of one embedded node, and of better-sqlite3 (WAL, synchronous=FULL)
// under the same workload: C clients, each appending one record at a time.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PerformanceObserver, createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { DEFAULTS } from '../log/options.js';
import { ReplicatedLog } from '../log/replicated-log.js';
import { UsageError, decimalArg, intArg, intListArg, parseArgs, strArg } from './args.js';
import { barChartSvg } from './chart.js';
import { machineAtStart, type Machine } from './machine.js';
import { onInterrupt } from './on-interrupt.js';
import { Payloads } from './payloads.js';
import { freePorts } from './ports.js';
import { CliError, runCommand } from './failure.js';
import { processStat } from './process-cpu.js';
import {
  CpuProfiler,
  DEFAULT_PROFILE_DIR,
  analyzeProfile,
  formatProfileSummary,
  profileFileName,
  saveProfile,
  sourceMapLocate,
  type CpuProfile,
} from './profile.js';

const USAGE = `usage: raftlog bench [--seconds 3] [--runs 1] [--sizes 100,1024] [--clients 1,16,256] [--systems cluster,embedded,sqlite]
                     [--sync always|none] [--preallocate zeros|fallocate|none] [--out DIR]
                     [--profile] [--profile-dir DIR]
Each system runs every (record size, clients) pair for --seconds after a short warm-up,
--runs times, the systems taking turns within each pair; the table shows medians, the
ratio to better-sqlite3, and this process's CPU time per record and GC share. Results
go to DIR/cluster.json and charts to DIR/cluster-*.svg (--out, default bench/results).
--profile measures one system at a time (no turns) and records a CPU profile of this
process per system while it is measured (in the
cluster: node 1, the leader, and the clients), writes it to --profile-dir (default
${DEFAULT_PROFILE_DIR}) as bench-<system>.cpuprofile, and prints the functions with the
most self time and the idle, GC and program shares. The cluster's nodes 2 and 3 run
under node --cpu-prof: their profiles cover their whole life.`;

const SYSTEMS = ['cluster', 'embedded', 'sqlite'];

type Append = (data: Uint8Array) => Promise<unknown>;

interface System {
  name: string;
  append: Append;
  close(): Promise<void>;
  /** Profiles the system's other processes write when they exit (node --cpu-prof), by title. */
  childProfiles?: Array<{ title: string; path: string }>;
  /** The system's processes besides this one (the cluster's nodes 2 and 3). */
  otherPids?: number[];
  /**
   * Resolves once the work the appends left behind is done (the cluster: a follower catching
   * up, its snapshot), so that it is counted to this system and falls on no other system's turn.
   */
  settle?(): Promise<void>;
}

export interface BenchRow {
  system: string;
  recordBytes: number;
  clients: number;
  records: number;
  seconds: number;
  recordsPerSec: number;
  mbPerSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  /**
   * CPU time (user + system, every thread) of this process per record: the clients and,
   * but for the cluster's other two nodes, the whole system. Steadier than records/s on
   * a shared machine.
   */
  cpuUsPerRecord: number;
  /**
   * CPU time of every process of the system per record: this process and, for the
   * cluster, nodes 2 and 3 (from /proc, at its clock-tick resolution).
   */
  systemCpuUsPerRecord: number;
  /** Share of the measured time this process spent in garbage collection. */
  gcShare: number;
  /** Runs the figures are medians of. */
  runs: number;
}

export async function main(args: string[]): Promise<number> {
  return runCommand('bench', USAGE, args, async (a) => {
    const opts = parseArgs(a, {
      seconds: 'string',
      runs: 'string',
      sizes: 'string',
      clients: 'string',
      systems: 'string',
      sync: 'string',
      preallocate: 'string',
      out: 'string',
      profile: 'boolean',
      'profile-dir': 'string',
    });
    const rows = await run({
      seconds: decimalArg(opts, 'seconds', 3),
      runs: intArg(opts, 'runs', 1, 1),
      sizes: intListArg(opts, 'sizes', '100,1024'),
      clients: intListArg(opts, 'clients', '1,16,256'),
      systems: (opts.has('systems') ? strArg(opts, 'systems') : defaultSystems()).split(','),
      sync: syncArg(strArg(opts, 'sync', 'always')),
      preallocate: preallocateArg(strArg(opts, 'preallocate', DEFAULTS.preallocate)),
      out: strArg(opts, 'out', 'bench/results'),
      profileDir: opts.has('profile') || opts.has('profile-dir') ? strArg(opts, 'profile-dir', DEFAULT_PROFILE_DIR) : undefined,
    });
    return rows.length > 0 ? 0 : 1;
  });
}

/**
 * better-sqlite3 is a development dependency: an installed raftlog has it only where its user
 * added it, and a default that needs it would fail every plain `raftlog bench` there.
 */
function defaultSystems(): string {
  try {
    createRequire(import.meta.url).resolve('better-sqlite3');
    return 'cluster,embedded,sqlite';
  } catch {
    console.log('better-sqlite3 is not installed: the sqlite baseline is left out (npm install better-sqlite3 to compare)');
    return 'cluster,embedded';
  }
}

type Preallocate = 'zeros' | 'fallocate' | 'none';

function syncArg(s: string): 'always' | 'none' {
  if (s !== 'always' && s !== 'none') throw new UsageError(`--sync must be 'always' or 'none'`);
  return s;
}

function preallocateArg(s: string): Preallocate {
  if (s !== 'zeros' && s !== 'fallocate' && s !== 'none') throw new UsageError(`--preallocate must be zeros, fallocate or none`);
  return s;
}

export interface BenchOptions {
  seconds: number;
  sizes: number[];
  clients: number[];
  systems: string[];
  sync: 'always' | 'none';
  preallocate?: Preallocate;
  out: string;
  /** Runs of every case per system, taken in turns; the figures are medians. Default 1. */
  runs?: number;
  /** Set: profile each system while it is measured and write the profiles here. */
  profileDir?: string | undefined;
}

export async function run(o: BenchOptions): Promise<BenchRow[]> {
  // Interrupted, runCases' `finally` does not run: its work directories go first.
  const works: string[] = [];
  const stop = onInterrupt(() => {
    for (const work of works) rmSync(work, { recursive: true, force: true, maxRetries: 5 });
  });
  try {
    return await runCases(o, works);
  } finally {
    stop();
  }
}

/** Measures every case; each system's work directory is added to `works` as it is made. */
async function runCases(o: BenchOptions, works: string[]): Promise<BenchRow[]> {
  if (!(o.seconds > 0)) throw new UsageError('--seconds must be a positive number');
  // Checked before anything is measured: found at its turn, or at the end, it cost the runs before it.
  for (const name of o.systems) if (!SYSTEMS.includes(name)) throw new UsageError(`unknown system '${name}' (${SYSTEMS.join(', ')})`);
  // Named twice, a case was measured twice and its rows were saved twice, the first taken for every ratio.
  for (const [flag, list] of [
    ['systems', o.systems],
    ['sizes', o.sizes],
    ['clients', o.clients],
  ] as Array<[string, ReadonlyArray<string | number>]>) {
    const twice = list.find((v, i) => list.indexOf(v) !== i);
    if (twice !== undefined) throw new UsageError(`--${flag} names ${twice} twice`);
  }
  // Larger, the first append of the case failed after every system had started.
  const tooLarge = o.sizes.find((size) => size > DEFAULTS.maxRecordBytes);
  if (tooLarge !== undefined) throw new UsageError(`--sizes: ${tooLarge} is larger than a record may be (${DEFAULTS.maxRecordBytes} bytes)`);
  for (const [flag, dir] of [
    ['out', o.out],
    ['profile-dir', o.profileDir],
  ] as const) {
    if (dir === undefined) continue;
    // Made only once the runs are done: under a file, it failed after all of them.
    let d = resolve(dir);
    while (!existsSync(d)) d = dirname(d);
    if (!statSync(d).isDirectory()) throw new UsageError(`--${flag}: ${d === resolve(dir) ? dir : d} is not a directory`);
  }
  const runs = o.runs ?? 1;
  const machine = machineAtStart();
  console.log(machine.header());
  const rows: BenchRow[] = [];
  const profiles: string[] = [];
  // Systems that run side by side take turns within each case, so a change in the
  // machine's load falls on all of them; a profile needs a system measured alone.
  const groups = o.profileDir === undefined ? [o.systems] : o.systems.map((name) => [name]);
  const total = o.systems.length * o.sizes.length * o.clients.length;
  for (const group of groups) {
    const opened: Array<{ system: System; work: string }> = [];
    let profiler: CpuProfiler | null = null;
    try {
      for (const name of group) {
        const work = mkdtempSync(join(tmpdir(), `raftlog-bench-${name}-`));
        works.push(work);
        process.stdout.write(`[${name}] starting...\n`);
        try {
          opened.push({ system: await open(name, work, o.sync, o.preallocate ?? DEFAULTS.preallocate, o.profileDir), work });
        } catch (err) {
          rmSync(work, { recursive: true, force: true });
          throw err;
        }
      }
      // Started after the system is up, so that start-up is not in the profile.
      profiler = o.profileDir === undefined ? null : await CpuProfiler.start();
      for (const size of o.sizes) {
        for (const clients of o.clients) {
          const samples = opened.map((): BenchRow[] => []);
          for (let r = 0; r < runs; r++) {
            // Every other run in reverse order, so that no system always follows the same one
            // (what a system leaves behind, the disk's writeback, its caches, falls on others in turn).
            for (let i = 0; i < opened.length; i++) {
              const k = r % 2 === 0 ? i : opened.length - 1 - i;
              const { system } = opened[k]!;
              const label = runs > 1 ? ` run ${r + 1}/${runs}` : '';
              process.stdout.write(`[${rows.length + k + 1}/${total}] ${system.name} ${size} B x ${clients} clients${label} ... `);
              const row = await measure(system, size, clients, o.seconds);
              samples[k]!.push(row);
              process.stdout.write(
                `${Math.round(row.recordsPerSec).toLocaleString('en-US')} rec/s, p50 ${row.p50Ms.toFixed(2)} ms, p99 ${row.p99Ms.toFixed(2)} ms, ${row.cpuUsPerRecord.toFixed(1)} CPU us/record, GC ${(100 * row.gcShare).toFixed(0)}%\n`,
              );
            }
          }
          rows.push(...samples.map(medianRow));
        }
      }
      if (profiler !== null) {
        const profile = await profiler.stop();
        const path = saveProfile(o.profileDir!, profileFileName('bench', group[0]!), profile);
        profiles.push(`${formatProfileSummary(`${opened[0]!.system.name} (${path})`, analyzeProfile(profile, { locate: sourceMapLocate }))}`);
      }
    } finally {
      profiler?.dispose(); // after a failure: no profile, but the session ends
      for (const { system, work } of opened) {
        await system.close();
        rmSync(work, { recursive: true, force: true });
      }
    }
    for (const child of opened.flatMap(({ system }) => system.childProfiles ?? [])) {
      if (!existsSync(child.path)) {
        profiles.push(`${child.title}: no profile at ${child.path} (the process did not exit cleanly)`);
        continue;
      }
      const profile = JSON.parse(readFileSync(child.path, 'utf8')) as CpuProfile;
      // The children run the same code as this process, so its source maps place their positions too.
      profiles.push(formatProfileSummary(`${child.title} (${child.path})`, analyzeProfile(profile, { locate: sourceMapLocate })));
    }
  }
  // Printed and saved system by system (in the order named), whatever order they ran in.
  const order = [...new Set(rows.map((r) => r.system))];
  rows.sort((a, b) => order.indexOf(a.system) - order.indexOf(b.system));
  machine.finish();
  console.log(`\n${machine.header()}`);
  printTable(rows, runs);
  for (const p of profiles) console.log(`\n${p}`);
  save(rows, { ...o, runs }, machine.machine);
  return rows;
}

/** Each figure is its own median over the runs (the runs of one case, one system). */
export function medianRow(runs: BenchRow[]): BenchRow {
  const med = (pick: (r: BenchRow) => number): number => {
    const v = runs.map(pick).sort((a, b) => a - b);
    const m = v.length >> 1;
    return v.length % 2 === 1 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
  };
  const first = runs[0]!;
  return {
    system: first.system,
    recordBytes: first.recordBytes,
    clients: first.clients,
    records: med((r) => r.records),
    seconds: med((r) => r.seconds),
    recordsPerSec: med((r) => r.recordsPerSec),
    mbPerSec: med((r) => r.mbPerSec),
    p50Ms: med((r) => r.p50Ms),
    p99Ms: med((r) => r.p99Ms),
    p999Ms: med((r) => r.p999Ms),
    cpuUsPerRecord: med((r) => r.cpuUsPerRecord),
    systemCpuUsPerRecord: med((r) => r.systemCpuUsPerRecord),
    gcShare: med((r) => r.gcShare),
    runs: runs.length,
  };
}

async function measure(system: System, size: number, clients: number, seconds: number): Promise<BenchRow> {
  const payloads = new Payloads(size);
  const drive = async (ms: number, latencies: RecordableHistogram | null): Promise<{ count: number; elapsed: number }> => {
    let stop = false;
    let count = 0;
    const start = performance.now();
    const timer = setTimeout(() => (stop = true), ms);
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (!stop) {
          const t = performance.now();
          await system.append(payloads.next());
          latencies?.record(Math.max(1, Math.round((performance.now() - t) * 1e6)));
          count++;
        }
      }),
    );
    clearTimeout(timer);
    return { count, elapsed: (performance.now() - start) / 1000 };
  };
  await drive(Math.min(500, seconds * 250), null);
  await system.settle?.();
  // A histogram (3 significant digits), not the samples: sorting a million of them held this
  // process's event loop, and with it the cluster's leader, for longer than an election timeout.
  const lat = createHistogram({ lowest: 1, highest: 3_600e9, figures: 3 });
  let gcMs = 0;
  const gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcMs += e.duration;
  });
  gc.observe({ entryTypes: ['gc'] });
  const others = system.otherPids ?? [];
  const othersBefore = others.map(nodeCpuSeconds);
  const cpu = process.cpuUsage();
  const { count, elapsed } = await drive(seconds * 1000, lat);
  await system.settle?.();
  const used = process.cpuUsage(cpu);
  const othersUs = others.reduce((sum, pid, i) => sum + (nodeCpuSeconds(pid) - othersBefore[i]!) * 1e6, 0);
  // Entries not yet delivered to the callback (it runs later, in batches) would be lost with the observer.
  for (const e of gc.takeRecords()) gcMs += e.duration;
  gc.disconnect();
  const q = (p: number): number => (lat.count === 0 ? 0 : lat.percentile(p * 100) / 1e6);
  return {
    system: system.name,
    recordBytes: size,
    clients,
    records: count,
    seconds: elapsed,
    recordsPerSec: count / elapsed,
    mbPerSec: (count * size) / elapsed / 1e6,
    p50Ms: q(0.5),
    p99Ms: q(0.99),
    p999Ms: q(0.999),
    cpuUsPerRecord: count === 0 ? 0 : (used.user + used.system) / count,
    systemCpuUsPerRecord: count === 0 ? 0 : (used.user + used.system + othersUs) / count,
    gcShare: gcMs / (elapsed * 1000),
    runs: 1,
  };
}

async function open(name: string, work: string, sync: 'always' | 'none', preallocate: Preallocate, profileDir: string | undefined): Promise<System> {
  switch (name) {
    case 'cluster':
      return openCluster(work, sync, preallocate, profileDir);
    case 'embedded': {
      const log = await ReplicatedLog.open({ dataDir: join(work, 'node'), sync, preallocate });
      return { name: 'embedded (1 node)', append: (d) => log.append(d), close: () => log.close() };
    }
    case 'sqlite':
      return openSqlite(work, sync);
    default:
      throw new UsageError(`unknown system '${name}' (${SYSTEMS.join(', ')})`);
  }
}

/**
 * Node 1 runs in this process (the clients embed it); nodes 2 and 3 are `raftlog serve` processes.
 * With a profile directory they run under node --cpu-prof, which covers their whole life (start-up
 * and teardown included) and writes the profile when they exit.
 */
async function openCluster(work: string, sync: 'always' | 'none', preallocate: Preallocate, profileDir: string | undefined): Promise<System> {
  const ports = await freePorts(3);
  const peers: Record<number, string> = { 1: `127.0.0.1:${ports[0]}`, 2: `127.0.0.1:${ports[1]}`, 3: `127.0.0.1:${ports[2]}` };
  const peerArg = Object.entries(peers)
    .map(([id, a]) => `${id}=${a}`)
    .join(',');
  const here = fileURLToPath(import.meta.url);
  const entry = join(dirname(here), here.endsWith('.ts') ? 'main.ts' : 'main.js');
  const secret = randomBytes(32).toString('base64url');
  const secretFile = join(work, 'cluster-secret');
  writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
  const children: ChildProcess[] = [2, 3].map((id) =>
    spawn(
      process.execPath,
      [
        ...process.execArgv,
        ...(profileDir === undefined
          ? []
          : ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-name', childProfileName(id), '--cpu-prof-interval', '500']),
        entry,
        'serve',
        '--id',
        String(id),
        '--data',
        join(work, `node${id}`),
        '--peers',
        peerArg,
        '--cluster-secret-file',
        secretFile,
        '--state-machine',
        'none',
        '--cluster-id',
        'bench',
        '--sync',
        sync,
        '--preallocate',
        preallocate,
      ],
      // The IPC channel makes a node stop when this process dies, however it dies.
      { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
    ),
  );
  const log = await ReplicatedLog.open({
    dataDir: join(work, 'node1'),
    id: 1,
    peers,
    clusterSecret: [secret],
    clusterId: 'bench',
    sync,
    preallocate,
    electionTicks: 6,
  });
  const stopChildren = async (): Promise<void> => {
    await Promise.all(
      children.map((c) =>
        c.exitCode !== null
          ? null
          : new Promise((r) => {
              c.once('exit', r);
              c.kill('SIGTERM');
            }),
      ),
    );
  };
  try {
    // The clients embed node 1, so node 1 should lead.
    const deadline = performance.now() + 20_000;
    while (log.status().role !== 'leader') {
      if (performance.now() > deadline) throw new Error('the bench cluster elected no leader in node 1 within 20 s');
      const s = log.status();
      if (s.lead !== 0 && s.lead !== 1) await log.transferLeadership(1).catch(() => undefined);
      else await new Promise((r) => setTimeout(r, 50));
    }
  } catch (err) {
    await log.close();
    await stopChildren();
    throw err;
  }
  const otherPids = children.map((c) => c.pid).filter((pid): pid is number => pid !== undefined);
  return {
    name: 'cluster (3 nodes)',
    childProfiles:
      profileDir === undefined
        ? []
        : [2, 3].map((id) => ({ title: `cluster node ${id} (raftlog serve, whole process life)`, path: join(profileDir, childProfileName(id)) })),
    otherPids,
    settle: () => settled(log, otherPids),
    append: (d) => log.append(d),
    close: async () => {
      await log.close();
      await stopChildren();
    },
  };
}

/**
 * The leader's followers hold every entry and their processes are idle (under 10% of a core over
 * 200 ms: applying, snapshotting and compacting are done). The leader commits with one follower; the
 * other may trail by seconds of work at 1,024 clients, which would otherwise run during the next
 * system's turn. Gives up after 30 s: a figure then is still a figure, its tail uncounted.
 */
export async function settled(log: Pick<ReplicatedLog, 'status'>, pids: number[]): Promise<void> {
  const deadline = performance.now() + 30_000;
  let before = pids.map(nodeStat);
  while (performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    const s = log.status();
    const now = pids.map(nodeStat);
    // One waiting for a core (state R) or for the disk (D) is busy however little CPU it got:
    // on a loaded machine, a node with work to do can be starved below the threshold.
    const idle = now.every((n, i) => n.cpuSeconds - before[i]!.cpuSeconds < 0.02 && n.state !== 'R' && n.state !== 'D');
    before = now;
    if (idle && Object.values(s.progress ?? {}).every((p) => p.match >= s.lastIndex)) return;
  }
}

/** A cluster node's CPU seconds so far; a node that is gone ends the bench, which would otherwise measure two nodes. */
export function nodeCpuSeconds(pid: number): number {
  return nodeStat(pid).cpuSeconds;
}

function nodeStat(pid: number): { cpuSeconds: number; state: string } {
  try {
    return processStat(pid);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    throw new CliError('BENCH_NODE_EXITED', `a cluster node (pid ${pid}) exited during the run; its error output, if any, is above`);
  }
}

const childProfileName = (id: number): string => profileFileName('bench', `cluster-node${id}`);

interface SqliteDb {
  pragma(s: string): unknown;
  exec(s: string): unknown;
  prepare(s: string): { run(...a: unknown[]): unknown };
  transaction(fn: () => void): () => void;
  close(): void;
}

/** What a Node user would otherwise reach for: one transaction per batch of the appends made in one turn. */
async function openSqlite(work: string, sync: 'always' | 'none'): Promise<System> {
  let Database: new (file: string) => SqliteDb;
  try {
    Database = createRequire(import.meta.url)('better-sqlite3') as typeof Database;
  } catch (err) {
    throw new UsageError(
      `the sqlite baseline needs better-sqlite3 (npm install better-sqlite3), or leave it out with --systems cluster,embedded: ${(err as Error).message.split('\n')[0]}`,
    );
  }
  mkdirSync(work, { recursive: true });
  const db = new Database(join(work, 'bench.db'));
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${sync === 'always' ? 'FULL' : 'OFF'}`);
  db.exec('CREATE TABLE log (id INTEGER PRIMARY KEY, data BLOB NOT NULL)');
  const insert = db.prepare('INSERT INTO log (data) VALUES (?)');
  let batch: Array<{ data: Uint8Array; done: () => void }> = [];
  const commit = db.transaction(() => {
    for (const b of batch) insert.run(b.data);
  });
  return {
    name: 'better-sqlite3',
    append: (data) =>
      new Promise<void>((resolve) => {
        if (batch.length === 0) {
          setImmediate(() => {
            commit();
            const done = batch;
            batch = [];
            for (const b of done) b.done();
          });
        }
        batch.push({ data, done: resolve });
      }),
    close: async () => db.close(),
  };
}

function printTable(rows: BenchRow[], runs: number): void {
  if (runs > 1) console.log(`\nmedians of ${runs} runs per case, the systems taking turns`);
  console.log('\n| system | record | clients | records/s | vs sqlite | MB/s | p50 ms | p99 ms | p99.9 ms | CPU us/record | all processes | GC |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const sqlite = rows.find((x) => x.system === 'better-sqlite3' && x.recordBytes === r.recordBytes && x.clients === r.clients);
    const ratio = sqlite === undefined || sqlite === r ? '' : `${(r.recordsPerSec / sqlite.recordsPerSec).toFixed(2)}x`;
    console.log(
      `| ${r.system} | ${r.recordBytes} B | ${r.clients} | ${Math.round(r.recordsPerSec).toLocaleString('en-US')} | ${ratio} | ${r.mbPerSec.toFixed(1)} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.p999Ms.toFixed(2)} | ${r.cpuUsPerRecord.toFixed(1)} | ${r.systemCpuUsPerRecord.toFixed(1)} | ${(100 * r.gcShare).toFixed(0)}% |`,
    );
  }
}

function save(rows: BenchRow[], o: { out: string; seconds: number; sync: string; runs: number; profileDir?: string | undefined }, machine: Machine): void {
  mkdirSync(o.out, { recursive: true });
  // Profiled, the systems ran one after the other, slowed: the goals are not judged from such a run.
  const profiled = o.profileDir !== undefined;
  writeFileSync(
    join(o.out, 'cluster.json'),
    JSON.stringify({ date: new Date().toISOString(), machine, seconds: o.seconds, runs: o.runs, sync: o.sync, profiled, rows }, null, 2) + '\n',
  );
  const systems = [...new Set(rows.map((r) => r.system))];
  const groups = [...new Set(rows.map((r) => `${r.recordBytes} B x ${r.clients}`))];
  const series = (pick: (r: BenchRow) => number) =>
    systems.map((name) => ({
      name,
      values: groups.map((g) => {
        const r = rows.find((x) => x.system === name && `${x.recordBytes} B x ${x.clients}` === g);
        return r ? pick(r) : null;
      }),
    }));
  writeFileSync(
    join(o.out, 'cluster-throughput.svg'),
    barChartSvg({
      title: 'Committed records per second (record size x clients)',
      yLabel: 'records/s',
      groups,
      series: series((r) => r.recordsPerSec),
      log: true,
    }),
  );
  writeFileSync(
    join(o.out, 'cluster-latency.svg'),
    barChartSvg({ title: 'p99 append latency (record size x clients)', yLabel: 'ms', groups, series: series((r) => r.p99Ms), log: true }),
  );
  console.log(`\nresults: ${join(o.out, 'cluster.json')}, charts: ${join(o.out, 'cluster-throughput.svg')}, ${join(o.out, 'cluster-latency.svg')}`);
}
