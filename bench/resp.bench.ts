// `npm run bench -- resp`: the KV example as a Redis client sees it. A 3-process
// cluster of `raftlog serve --resp --sync always` (the KV state machine, its
// default snapshots) on loopback, driven through real sockets by a closed-loop
// client (bench/resp-load.ts: C connections, one SET of 100 B at a time each),
// beside redis-server with appendonly yes / appendfsync always, the single-node
// durable baseline, when it is installed. For each concurrency the cluster and
// Redis take turns, --runs times; the table shows medians. With redis-benchmark
// installed, its own figure for both is reported too.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { machineAtStart } from '../src/cli/machine.js';
import { onInterrupt } from '../src/cli/on-interrupt.js';
import { freePorts } from '../src/cli/ports.js';
import { clockTicksPerSecond, cpuSeconds } from '../src/cli/process-cpu.js';
import { analyzeProfile, formatProfileSummary, profileFileName, sourceMapLocate, type CpuProfile } from '../src/cli/profile.js';
import { RespLoad, call, quantile, type WindowResult } from './resp-load.js';
import { normalizeArgs, positiveInteger, positiveIntegers, positiveNumber, profileDirOf, median, writeResults, type SuiteOption } from './suite.js';

/** --profile: every node runs under node --cpu-prof; the leader's profile is summarized. */
export const profiles = true;

export const options: Record<string, SuiteOption> = {
  '--seconds': positiveNumber.option('N  measured seconds per case (default 5, --quick 1)'),
  '--clients': positiveIntegers.option('C,...  concurrency levels (default 1,16,256)'),
  '--runs': positiveInteger.option('N  runs of each case, cluster and Redis in turn; medians reported (default 3, --quick 1)'),
};

const VALUE_BYTES = 100;
/** --snapshot-every for the cluster that measures what snapshots cost: never, in a bench. */
const NO_SNAPSHOTS = 1_000_000_000;
const KEYSPACE = 100_000;
const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.ts');
const onPath = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A child process we started, its last output lines kept for the error that needs them. */
class Child {
  readonly tail: string[] = [];
  readonly exited: Promise<number | null>;
  private exitCode: number | null | undefined;

  constructor(
    readonly title: string,
    readonly proc: ChildProcess,
    onLine?: (line: string) => void,
  ) {
    const keep = (line: string): void => {
      this.tail.push(line);
      if (this.tail.length > 40) this.tail.shift();
      onLine?.(line);
    };
    if (proc.stdout !== null) createInterface({ input: proc.stdout }).on('line', keep);
    if (proc.stderr !== null) createInterface({ input: proc.stderr }).on('line', keep);
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve((this.exitCode = code))));
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  get pid(): number {
    return this.proc.pid!;
  }

  describe(): string {
    return `${this.title}${this.running ? '' : ` exited (${this.exitCode})`}; its last output:\n${this.tail.map((l) => `  ${l}`).join('\n')}`;
  }

  /** SIGTERM, then SIGKILL if it is still there after `ms`. */
  async stop(ms = 15_000): Promise<void> {
    if (!this.running) return;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), ms);
    await this.exited;
    clearTimeout(timer);
  }
}

interface Target {
  name: string;
  host: string;
  /** The port to drive, for the cluster its leader's. */
  port(): Promise<number>;
  /** The processes whose CPU is the system's. */
  pids(): number[];
}

interface Cluster extends Target {
  nodes: Child[];
  respPorts: number[];
  leaderId: number;
  profileFiles: string[];
}

/** `snapshotEvery`: passed to every node (default: the product's default). */
async function startCluster(work: string, profileDir: string | null, snapshotEvery?: number): Promise<Cluster> {
  const ports = await freePorts(3);
  const peers = ports.map((p, i) => `${i + 1}=127.0.0.1:${p}`).join(',');
  mkdirSync(work, { recursive: true });
  const secretFile = join(work, 'cluster-secret');
  writeFileSync(secretFile, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
  const respPorts: number[] = [0, 0, 0];
  const profileFiles = [1, 2, 3].map((id) => (profileDir === null ? '' : join(profileDir, profileFileName('resp', `node${id}`))));
  const up: Array<Promise<void>> = [];
  const nodes = [1, 2, 3].map((id) => {
    let ready!: () => void;
    up.push(new Promise((r) => (ready = r)));
    const proc = spawn(
      process.execPath,
      [
        ...process.execArgv,
        ...(profileDir === null
          ? []
          : ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-name', profileFileName('resp', `node${id}`), '--cpu-prof-interval', '500']),
        MAIN,
        'serve',
        '--id',
        String(id),
        '--data',
        join(work, `node${id}`),
        '--listen',
        `127.0.0.1:${ports[id - 1]}`,
        '--peers',
        peers,
        '--resp',
        '127.0.0.1:0',
        '--sync',
        'always',
        '--cluster-secret-file',
        secretFile,
        '--log-level',
        'warn',
        ...(snapshotEvery === undefined ? [] : ['--snapshot-every', String(snapshotEvery)]),
      ],
      // The IPC channel makes a node stop when this process dies, however it dies.
      { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] },
    );
    return new Child(`node ${id}`, proc, (line) => {
      const m = new RegExp(`^node ${id} up: .*resp 127\\.0\\.0\\.1:(\\d+)`).exec(line);
      if (m !== null) {
        respPorts[id - 1] = Number(m[1]);
        ready();
      }
    });
  });
  const cluster: Cluster = {
    name: snapshotEvery === undefined ? 'raftlog cluster (3 nodes)' : `raftlog cluster (3 nodes, snapshot every ${snapshotEvery})`,
    host: '127.0.0.1',
    nodes,
    respPorts,
    leaderId: 0,
    profileFiles,
    pids: () => nodes.map((n) => n.pid),
    port: async () => respPorts[(await findLeader(cluster)) - 1]!,
  };
  try {
    const died = Promise.race(nodes.map((n) => n.exited.then(() => Promise.reject(new Error(`node failed to start: ${n.describe()}`)))));
    const timeout = sleep(60_000).then(() =>
      Promise.reject(new Error(`the nodes did not all start within 60 s:\n${nodes.map((n) => n.describe()).join('\n')}`)),
    );
    died.catch(() => undefined);
    timeout.catch(() => undefined);
    await Promise.race([Promise.all(up), died, timeout]);
    await findLeader(cluster);
  } catch (err) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw err;
  }
  return cluster;
}

/** The id of the node whose INFO says role:leader; waits up to 30 s for one. */
async function findLeader(c: Cluster): Promise<number> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    for (const [i, n] of c.nodes.entries()) {
      if (!n.running) throw new Error(n.describe());
      const info = await call('127.0.0.1', c.respPorts[i]!, ['INFO']).catch(() => null);
      if (info instanceof Buffer && /^role:leader\r?$/m.test(info.toString('utf8'))) return (c.leaderId = i + 1);
    }
    if (Date.now() > deadline) throw new Error('the cluster has no leader after 30 s');
    await sleep(100);
  }
}

async function startRedis(work: string): Promise<{ target: Target; child: Child; version: string }> {
  const [port] = await freePorts(1);
  mkdirSync(work, { recursive: true });
  const version = /v=(\S+)/.exec(execFileSync('redis-server', ['--version'], { encoding: 'utf8' }))?.[1] ?? 'unknown';
  const proc = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--dir', work, '--daemonize', 'no'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const child = new Child('redis-server', proc);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const pong = await call('127.0.0.1', port!, ['PING']).catch(() => null);
    if (pong === 'PONG') break;
    if (!child.running || Date.now() > deadline) {
      await child.stop();
      throw new Error(`redis-server did not answer PING: ${child.describe()}`);
    }
    await sleep(100);
  }
  return { target: { name: `redis ${version} (appendfsync always)`, host: '127.0.0.1', port: async () => port!, pids: () => [child.pid] }, child, version };
}

interface Sample {
  setsPerSec: number;
  sets: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  /** CPU seconds of the system's processes per million SETs answered. */
  cpuSecPerMillion: number;
  /** The same for this process, the client. */
  clientCpuSecPerMillion: number;
}

/** One case: C connections, a warm-up, then the measured window with the CPU read around it. */
async function measure(t: Target, clients: number, seconds: number, warmupSeconds: number): Promise<Sample> {
  const load = await RespLoad.connect({ host: t.host, port: await t.port(), clients, valueBytes: VALUE_BYTES, keyspace: KEYSPACE });
  try {
    await load.run(warmupSeconds * 1000, false);
    const pids = t.pids();
    const before = pids.map(cpuSeconds);
    const client = process.cpuUsage();
    const w: WindowResult = await load.run(seconds * 1000);
    const clientCpu = process.cpuUsage(client);
    const cpu = pids.map(cpuSeconds).reduce((s, x, i) => s + x - before[i]!, 0);
    const perMillion = (s: number): number => (w.sets > 0 ? (s / w.sets) * 1e6 : 0);
    return {
      setsPerSec: w.setsPerSec,
      sets: w.sets,
      seconds: w.seconds,
      p50Ms: quantile(w.latenciesMs, 0.5),
      p99Ms: quantile(w.latenciesMs, 0.99),
      p999Ms: quantile(w.latenciesMs, 0.999),
      cpuSecPerMillion: perMillion(cpu),
      clientCpuSecPerMillion: perMillion((clientCpu.user + clientCpu.system) / 1e6),
    };
  } finally {
    load.close();
  }
}

interface Summary extends Omit<Sample, 'sets' | 'seconds'> {
  system: string;
  runs: Sample[];
}

function summarize(system: string, runs: Sample[]): Summary {
  const m = (k: keyof Sample): number => median(runs.map((r) => r[k]));
  return {
    system,
    setsPerSec: m('setsPerSec'),
    p50Ms: m('p50Ms'),
    p99Ms: m('p99Ms'),
    p999Ms: m('p999Ms'),
    cpuSecPerMillion: m('cpuSecPerMillion'),
    clientCpuSecPerMillion: m('clientCpuSecPerMillion'),
    runs,
  };
}

interface RedisBenchmarkFigure {
  requests: number;
  setsPerSec: number;
  p50Ms: number | null;
  p99Ms: number | null;
}

/** redis-benchmark's own SET figure (-t set -d 100 -r 100000 -c C), from its --csv line. */
async function redisBenchmark(port: number, clients: number, requests: number): Promise<RedisBenchmarkFigure> {
  const args = [
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-t',
    'set',
    '-d',
    String(VALUE_BYTES),
    '-r',
    String(KEYSPACE),
    '-c',
    String(clients),
    '-n',
    String(requests),
    '--csv',
  ];
  const out = await new Promise<string>((resolve, reject) => {
    const proc = spawn('redis-benchmark', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    proc.stdout.on('data', (d: Buffer) => (text += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (text += d.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 300_000);
    proc.once('error', reject);
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(text);
      else reject(new Error(`redis-benchmark ${args.join(' ')} exited (${signal ?? code}):\n${text.slice(-2000)}`));
    });
  });
  const lines = out.split(/\r?\n/).map((l) => l.split(',').map((f) => f.replace(/^"|"$/g, '')));
  const head = lines.find((l) => l[0] === 'test');
  const set = lines.find((l) => l[0] === 'SET');
  if (set === undefined || !(Number(set[1]) > 0)) throw new Error(`redis-benchmark printed no SET figure:\n${out.slice(-2000)}`);
  if (/error/i.test(out)) throw new Error(`redis-benchmark reported errors:\n${out.slice(-2000)}`);
  const col = (name: string): number | null => {
    const i = head?.indexOf(name) ?? -1;
    return i > 0 && Number.isFinite(Number(set[i])) ? Number(set[i]) : null;
  };
  return { requests, setsPerSec: Number(set[1]), p50Ms: col('p50_latency_ms'), p99Ms: col('p99_latency_ms') };
}

const fmt = (x: number, digits = 0): string => x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const lat = (s: Summary | null): string => (s === null ? '-' : `${fmt(s.p50Ms, 2)} / ${fmt(s.p99Ms, 2)} / ${fmt(s.p999Ms, 2)}`);

export default async function resp(rawArgs: string[]): Promise<void> {
  const args = normalizeArgs(rawArgs, options);
  const quick = args.includes('--quick');
  const seconds = positiveNumber.value(args, '--seconds') ?? (quick ? 1 : 5);
  const runs = positiveInteger.value(args, '--runs') ?? (quick ? 1 : 3);
  const concurrency = positiveIntegers.value(args, '--clients') ?? [1, 16, 256];
  const warmupSeconds = Math.min(1, Math.max(0.3, seconds / 4));
  const profileDir = profileDirOf(args);
  const withRedis = onPath('redis-server');
  const withRedisBenchmark = onPath('redis-benchmark');
  if (!withRedis) console.log('redis-server is not on PATH: measuring the cluster alone (apt-get install redis-server for the baseline)');

  const machine = machineAtStart();
  console.log(machine.header());
  const work = mkdtempSync(join(tmpdir(), 'raftlog-bench-resp-'));
  const children: Child[] = [];
  // Interrupted, the `finally` below does not run: what it started is stopped first.
  const stopCleanup = onInterrupt(() => {
    for (const c of children) if (c.running) c.proc.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });
  let cluster: Cluster | null = null;
  let redis: Awaited<ReturnType<typeof startRedis>> | null = null;
  const rows: Array<{
    clients: number;
    cluster: Summary;
    redis: Summary | null;
    ratio: number | null;
    redisBenchmark: { cluster: RedisBenchmarkFigure; redis: RedisBenchmarkFigure | null } | null;
  }> = [];
  const leaders: number[] = [];
  let snapshots = 0;
  let snapshotCost: {
    clients: number;
    snapshotEvery: number;
    withSnapshots: Summary;
    withoutSnapshots: Summary;
    snapshotsTaken: number;
    /** Median of the runs' SET/s with default snapshots over SET/s without. */
    ratio: number;
  } | null = null;
  let leaderProfile: string | null = null;
  try {
    console.log('[cluster] starting 3 raftlog serve processes...');
    cluster = await startCluster(join(work, 'cluster'), profileDir);
    children.push(...cluster.nodes);
    console.log(`[cluster] node ${cluster.leaderId} leads; RESP ports ${cluster.respPorts.join(', ')}`);
    if (withRedis) {
      redis = await startRedis(join(work, 'redis'));
      children.push(redis.child);
      console.log(`[redis] ${redis.target.name} on port ${await redis.target.port()}`);
    }
    const snapshotsTaken = async (): Promise<number> => {
      const info = await call('127.0.0.1', cluster!.respPorts[cluster!.leaderId - 1]!, ['INFO']);
      return info instanceof Buffer ? Number(/^snapshots_taken:(\d+)/m.exec(info.toString())?.[1] ?? 0) : 0;
    };
    for (const clients of concurrency) {
      const ours: Sample[] = [];
      const theirs: Sample[] = [];
      for (let run = 1; run <= runs; run++) {
        const label = `[c=${clients} run ${run}/${runs}]`;
        process.stdout.write(`${label} cluster ... `);
        const leader = await findLeader(cluster);
        const snapsBefore = await snapshotsTaken();
        const s = await measure(cluster, clients, seconds, warmupSeconds);
        // A leader change inside the window would mix two leaders' figures: say so.
        const after = await findLeader(cluster);
        if (after === leader) snapshots += (await snapshotsTaken()) - snapsBefore;
        leaders.push(leader);
        ours.push(s);
        process.stdout.write(
          `${fmt(s.setsPerSec)} SET/s, p50 ${fmt(s.p50Ms, 2)} ms, p99 ${fmt(s.p99Ms, 2)} ms, ${fmt(s.cpuSecPerMillion)} CPU s/M${after === leader ? '' : ` (leader moved ${leader} -> ${after})`}\n`,
        );
        if (redis !== null) {
          process.stdout.write(`${label} redis ... `);
          const r = await measure(redis.target, clients, seconds, warmupSeconds);
          theirs.push(r);
          process.stdout.write(`${fmt(r.setsPerSec)} SET/s, p50 ${fmt(r.p50Ms, 2)} ms, p99 ${fmt(r.p99Ms, 2)} ms, ${fmt(r.cpuSecPerMillion)} CPU s/M\n`);
        }
      }
      const c = summarize(cluster.name, ours);
      const r = redis === null ? null : summarize(redis.target.name, theirs);
      let rb: (typeof rows)[number]['redisBenchmark'] = null;
      if (withRedisBenchmark) {
        const requests = (x: Summary): number => Math.max(1000, Math.min(1_000_000, Math.round(x.setsPerSec * seconds)));
        process.stdout.write(`[c=${clients}] redis-benchmark: cluster ... `);
        const onCluster = await redisBenchmark(await cluster.port(), clients, requests(c));
        process.stdout.write(`${fmt(onCluster.setsPerSec)} SET/s`);
        let onRedis: RedisBenchmarkFigure | null = null;
        if (redis !== null && r !== null) {
          process.stdout.write(', redis ... ');
          onRedis = await redisBenchmark(await redis.target.port(), clients, requests(r));
          process.stdout.write(`${fmt(onRedis.setsPerSec)} SET/s`);
        }
        process.stdout.write('\n');
        rb = { cluster: onCluster, redis: onRedis };
      }
      rows.push({ clients, cluster: c, redis: r, ratio: r === null ? null : c.setsPerSec / r.setsPerSec, redisBenchmark: rb });
    }
    // What the state machine's snapshots cost: the cluster as measured (default
    // snapshotEvery, holding the keys of every case so far) in turns with one that never
    // snapshots, at the largest concurrency.
    {
      const clients = Math.max(...concurrency);
      console.log(`[snapshot cost] starting 3 more raftlog serve processes with --snapshot-every ${NO_SNAPSHOTS}...`);
      const without = await startCluster(join(work, 'cluster-no-snapshots'), null, NO_SNAPSHOTS);
      children.push(...without.nodes);
      const withSamples: Sample[] = [];
      const withoutSamples: Sample[] = [];
      let taken = 0;
      try {
        // Its processes are fresh: one unmeasured case first, as the other cluster had its cases.
        await measure(without, clients, seconds, warmupSeconds);
        for (let run = 1; run <= runs; run++) {
          const label = `[snapshot cost c=${clients} run ${run}/${runs}]`;
          process.stdout.write(`${label} default snapshots ... `);
          const leader = await findLeader(cluster);
          const before = await snapshotsTaken();
          const s = await measure(cluster, clients, seconds, warmupSeconds);
          if ((await findLeader(cluster)) === leader) taken += (await snapshotsTaken()) - before;
          withSamples.push(s);
          process.stdout.write(`${fmt(s.setsPerSec)} SET/s; none ... `);
          const n = await measure(without, clients, seconds, warmupSeconds);
          withoutSamples.push(n);
          process.stdout.write(`${fmt(n.setsPerSec)} SET/s\n`);
        }
      } finally {
        await Promise.all(without.nodes.map((c) => c.stop()));
      }
      const ratios = withSamples.map((w, i) => w.setsPerSec / withoutSamples[i]!.setsPerSec);
      snapshotCost = {
        clients,
        snapshotEvery: NO_SNAPSHOTS,
        withSnapshots: summarize(cluster.name, withSamples),
        withoutSnapshots: summarize(without.name, withoutSamples),
        snapshotsTaken: taken,
        ratio: median(ratios),
      };
    }
    // The node checked last, in a profile that covers its whole life.
    if (profileDir !== null) leaderProfile = cluster.profileFiles[cluster.leaderId - 1]!;
  } finally {
    stopCleanup();
    await Promise.all(children.map((c) => c.stop()));
    rmSync(work, { recursive: true, force: true });
  }

  machine.finish();
  console.log(`\n${machine.header()}`);
  console.log(
    `${seconds} s per case after a ${warmupSeconds} s warm-up, median of ${runs} run${runs > 1 ? 's' : ''}; SET of ${VALUE_BYTES} random bytes to key:<random in 0..${KEYSPACE - 1}>; CPU: utime+stime of the system's processes (the cluster: all three nodes) per million SETs`,
  );
  console.log(
    '\n| clients | cluster SET/s | redis SET/s | cluster / redis | cluster p50 / p99 / p99.9 ms | redis p50 / p99 / p99.9 ms | cluster CPU s per M SETs | redis CPU s per M SETs | redis-benchmark SET/s cluster / redis |',
  );
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const row of rows) {
    const rb = row.redisBenchmark;
    console.log(
      `| ${row.clients} | ${fmt(row.cluster.setsPerSec)} | ${row.redis === null ? '-' : fmt(row.redis.setsPerSec)} | ${row.ratio === null ? '-' : fmt(row.ratio, 2)} | ${lat(row.cluster)} | ${lat(row.redis)} | ${fmt(row.cluster.cpuSecPerMillion)} | ${row.redis === null ? '-' : fmt(row.redis.cpuSecPerMillion)} | ${rb === null ? '-' : `${fmt(rb.cluster.setsPerSec)} / ${rb.redis === null ? '-' : fmt(rb.redis.setsPerSec)}`} |`,
    );
  }
  const moved = new Set(leaders).size > 1;
  console.log(
    `\nleader: node ${[...new Set(leaders)].join(', then node ')}${moved ? ' (leadership moved between cases)' : ''}; ${snapshots} snapshots taken by the leader while measured (the default: one every 100,000 records)`,
  );
  if (snapshotCost !== null) {
    const c = snapshotCost;
    console.log(
      `snapshot cost at ${c.clients} connections, ${runs} run(s) in turns: ${fmt(c.withSnapshots.setsPerSec)} SET/s with the default snapshots (${c.snapshotsTaken} taken while measured), ${fmt(c.withoutSnapshots.setsPerSec)} without; median ratio ${fmt(c.ratio, 2)} (goal: >= 0.90)`,
    );
  }
  if (leaderProfile !== null) {
    if (existsSync(leaderProfile)) {
      // The nodes' modules, loaded here too, register their source maps: positions then name .ts lines.
      await import('../src/cli/serve.js');
      const profile = JSON.parse(readFileSync(leaderProfile, 'utf8')) as CpuProfile;
      console.log(
        `\n${formatProfileSummary(`the leader, node ${cluster!.leaderId} (${leaderProfile}, whole process life)`, analyzeProfile(profile, { locate: sourceMapLocate }))}`,
      );
    } else console.log(`\nno profile at ${leaderProfile} (the leader did not exit cleanly)`);
  }
  writeResults('resp', {
    machine: machine.machine,
    quick,
    profiled: profileDir !== null,
    seconds,
    warmupSeconds,
    runs,
    valueBytes: VALUE_BYTES,
    keyspace: KEYSPACE,
    redisVersion: redis?.version ?? null,
    clockTicksPerSecond: clockTicksPerSecond(),
    leaders,
    snapshotsWhileMeasured: snapshots,
    rows,
    snapshotCost,
  });
}
