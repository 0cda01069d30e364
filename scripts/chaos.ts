// `npm run chaos`: a three-process cluster under a concurrent read/write load
// while a nemesis kills (SIGKILL) and restarts nodes, pauses them (SIGSTOP) and
// partitions them (through an in-process fault proxy on every peer link). At
// the end every key's history must be linearizable (reads are `GET`s, which
// wait on a barrier), and the longest stretch without a successful operation
// is reported. On demand, not in CI; exits 1 on a violation, and on a run that
// vouches for nothing: a node that exited unbidden (one that could not start
// included), no completed read or write, or no fault injected.
// Usage: npm run chaos -- [--minutes 2] [--clients 12] [--keys 4] [--seed N] [--logs DIR]
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { freePorts } from '../src/cli/ports.js';
import { RespClient, type RespValue } from '../test/kv/resp-client.js';
import { FaultProxy } from '../test/fault/proxy.js';
import { checkRegisters, describeHistory, type RegisterOp } from '../test/lin/checker.js';
import { seeded } from '../test/random.js';
import { UsageError, decimalArg, intArg, strArg, wholeNumber } from '../src/cli/args.js';
import { scriptFlags } from './flags.js';
import { serveNode, writeClusterSecret } from './serve-node.js';

const USAGE = `usage: npm run chaos -- [--minutes 2] [--clients 12] [--keys 4] [--seed N] [--logs DIR]
--logs DIR: each node's log goes to DIR/node<id>.log (appended across restarts), to read beside the events`;

// A write refused with one of these certainly did not happen; anything else may have.
const CERTAIN_FAILURES = /^ERR (APPEND_NOT_COMMITTED|NO_LEADER|OVERLOADED|RECORD_TOO_LARGE|LOG_CLOSED|NOT_LEADER)\b/;

interface Options {
  minutes: number;
  clients: number;
  keys: number;
  seed: number;
  logs: string | undefined;
}

function options(): Options {
  const known = { minutes: 'string', clients: 'string', keys: 'string', seed: 'string', logs: 'string' } as const;
  const o = scriptFlags('chaos', USAGE, known, (opts) => {
    const env = process.env.TEST_SEED;
    const seed = env === undefined ? Math.floor(Math.random() * 2 ** 31) : wholeNumber(env, 0);
    if (seed === undefined) throw new UsageError(`TEST_SEED must be a non-negative integer, got '${env}'`);
    return {
      minutes: decimalArg(opts, 'minutes', 2),
      clients: intArg(opts, 'clients', 12, 1),
      keys: intArg(opts, 'keys', 4, 1),
      seed: intArg(opts, 'seed', seed, 0),
      logs: opts.has('logs') ? strArg(opts, 'logs') : undefined,
    };
  });
  if (o.logs !== undefined) mkdirSync(o.logs, { recursive: true });
  return o;
}

/** A call that gives up after `ms`: a paused or killed node must not stall a client forever. */
async function call(c: RespClient, ms: number, ...args: string[]): Promise<RespValue | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)));
  try {
    return await Promise.race([c.call(...args), t]);
  } finally {
    clearTimeout(timer);
  }
}

async function chaos(o: Options): Promise<{
  history: RegisterOp[];
  longestStallMs: number;
  longestStallFromMs: number;
  harnessLongestHoldMs: number;
  events: string[];
  faults: Record<'kill' | 'pause' | 'isolate' | 'cut', number>;
  unbidden: string[];
}> {
  // One stream each for the nemesis, the proxy and every client: the clients' draws interleave as
  // their replies happen to arrive, and must not change the nemesis's schedule for the same seed.
  const random = seeded(o.seed);
  const stream = (n: number): (() => number) => seeded((o.seed + 7919 * n) % 2 ** 31);
  const work = mkdtempSync(join(tmpdir(), 'raftlog-chaos-'));
  const ports = await freePorts(6);
  const ids = [1, 2, 3];
  const proxy = await FaultProxy.start({ nodes: Object.fromEntries(ids.map((id) => [id, `127.0.0.1:${ports[id - 1]}`])), random: stream(1) });
  // Each node reaches the others through the proxy's link from it to them.
  const peersOf = (id: number): string =>
    Object.entries(proxy.peersFor(id))
      .map(([k, a]) => `${k}=${a}`)
      .join(',');
  const secretFile = writeClusterSecret(work);
  const procs = new Map<number, ChildProcess>();
  // Exits the nemesis or the end of the run asked for; any other (a node that could not start,
  // its port taken, say, or one that crashed) leaves a run that tested less than it claims.
  const bidden = new Set<ChildProcess>();
  const unbidden: string[] = [];
  const start = (id: number): void => {
    const logFile = o.logs === undefined ? undefined : join(o.logs, `node${id}.log`);
    const p = serveNode({ id, work, listen: `127.0.0.1:${ports[id - 1]}`, peers: peersOf(id), secretFile, resp: `127.0.0.1:${ports[id + 2]}`, logFile }, true);
    p.on('exit', (code, signal) => {
      if (bidden.has(p)) return;
      const e = `${Math.round(now())} node ${id} exited unbidden (${signal ?? code})`;
      events.push(e);
      unbidden.push(e);
    });
    procs.set(id, p);
  };

  // Monotonic and finer than a millisecond: with Date.now(), a write that returned and a read that
  // began within one millisecond counted as concurrent, and a stale read there could pass.
  const t0 = performance.now();
  const now = (): number => performance.now() - t0;
  ids.forEach(start);
  const history: RegisterOp[] = [];
  // The events' clock starts here; node logs (--logs) carry wall-clock times.
  const events: string[] = [`0 clock zero at ${new Date().toISOString()}`];
  const end = o.minutes * 60_000;
  const faults = { kill: 0, pause: 0, isolate: 0, cut: 0 };
  let running = true;

  const client = async (n: number): Promise<void> => {
    let c: RespClient | null = null;
    let seq = 0;
    const random = stream(2 + n);
    while (running) {
      if (c === null) {
        try {
          c = await RespClient.connect(ports[3 + Math.floor(random() * 3)]!);
        } catch {
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
      }
      const key = `k${Math.floor(random() * o.keys)}`;
      const write = random() < 0.5;
      const value = write ? `c${n}-${seq++}` : null;
      const op: RegisterOp = { client: n, kind: write ? 'write' : 'read', key, value, invoke: now(), complete: null };
      const reply = await call(c, 5_000, ...(write ? ['SET', key, value!] : ['GET', key]));
      if (reply === 'timeout' || (reply instanceof Error && !CERTAIN_FAILURES.test(reply.message))) {
        // Outcome unknown: a write may still take effect; a read observed nothing (the checker drops it).
        c.close();
        c = null; // a new connection, perhaps to another node
      } else if (reply instanceof Error) {
        // Certainly not done: not part of the history. A node that knows no leader says to try
        // another, as a client should; without that, one cut off from the rest kept its clients.
        if (/^ERR (NO_LEADER|NOT_LEADER)\b/.test(reply.message)) {
          c.close();
          c = null;
        }
        continue;
      } else {
        op.complete = now();
        if (!write) op.value = reply === null ? null : String(reply);
      }
      history.push(op);
    }
    c?.close();
  };

  const nemesis = async (): Promise<void> => {
    while (now() < end - 10_000) {
      await new Promise((r) => setTimeout(r, 2_000 + random() * 3_000));
      const id = ids[Math.floor(random() * 3)]!;
      const p = procs.get(id)!;
      const roll = random();
      if (roll < 0.35) {
        events.push(`${Math.round(now())} kill -9 node ${id}`);
        bidden.add(p);
        if (p.kill('SIGKILL')) faults.kill++;
        await new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.once('exit', r)));
        await new Promise((r) => setTimeout(r, 1_000 + random() * 2_000));
        events.push(`${Math.round(now())} restart node ${id}`);
        start(id);
      } else if (roll < 0.65) {
        events.push(`${Math.round(now())} pause node ${id}`);
        if (p.kill('SIGSTOP')) faults.pause++;
        await new Promise((r) => setTimeout(r, 1_000 + random() * 3_000));
        events.push(`${Math.round(now())} resume node ${id}`);
        p.kill('SIGCONT');
      } else {
        const mode = random() < 0.5 ? 'hold' : 'reset';
        if (random() < 0.5) {
          events.push(`${Math.round(now())} isolate node ${id} (${mode})`);
          proxy.isolate(id, mode);
          faults.isolate++;
        } else {
          const other = ids.find((x) => x !== id)!;
          events.push(`${Math.round(now())} one-way cut ${id} -> ${other} (${mode})`);
          proxy.cut(id, other, mode);
          faults.cut++;
        }
        await new Promise((r) => setTimeout(r, 1_000 + random() * 4_000));
        events.push(`${Math.round(now())} heal`);
        proxy.heal();
      }
    }
  };

  // The proxy and the clients share this process: a stall of its own event loop (a long garbage
  // collection of the growing history, say) stalls every link and client at once. Say when it happens.
  let lastBeat = Date.now();
  let harnessLongestHoldMs = 0;
  const beat = setInterval(() => {
    const gap = Date.now() - lastBeat - 50;
    lastBeat = Date.now();
    harnessLongestHoldMs = Math.max(harnessLongestHoldMs, gap);
    if (gap > 250) events.push(`${Math.round(now() - gap)} this process (proxy and clients) held for ${gap} ms`);
  }, 50);
  const clients = Array.from({ length: o.clients }, (_, n) => client(n));
  await nemesis();
  await new Promise((r) => setTimeout(r, Math.max(0, end - now())));
  running = false;
  await Promise.all(clients);
  for (const p of procs.values()) {
    bidden.add(p);
    p.kill('SIGCONT');
    p.kill('SIGTERM');
  }
  await Promise.all([...procs.values()].map((p) => (p.exitCode !== null || p.signalCode !== null ? null : new Promise((r) => p.once('exit', r)))));
  await proxy.close();
  rmSync(work, { recursive: true, force: true });

  // The longest stretch in which no operation succeeded, and when it began (to read against the
  // events), from the first success on: the cluster's start-up is not a stall.
  const done = history.flatMap((h) => (h.complete === null ? [] : [h.complete])).sort((a, b) => a - b);
  let longestStallMs = 0;
  let longestStallFromMs = 0;
  let prev = done[0] ?? 0;
  for (const t of done) {
    if (t - prev > longestStallMs) [longestStallMs, longestStallFromMs] = [t - prev, prev];
    prev = t;
  }
  clearInterval(beat);
  events.sort((a, b) => parseInt(a, 10) - parseInt(b, 10)); // a hold is logged when it ends, dated when it began
  return {
    history,
    longestStallMs: Math.round(longestStallMs),
    longestStallFromMs: Math.round(longestStallFromMs),
    harnessLongestHoldMs,
    events,
    faults,
    unbidden,
  };
}

const o = options();
console.log(`chaos: 3 nodes, ${o.clients} clients on ${o.keys} keys for ${o.minutes} min, seed ${o.seed} (replay: npm run chaos -- --seed ${o.seed})`);
const { history, longestStallMs, longestStallFromMs, harnessLongestHoldMs, events, faults, unbidden } = await chaos(o);
for (const e of events) console.log(`  ${e}`);
const verdict = checkRegisters(history);
const succeeded = history.filter((h) => h.complete !== null).length;
const injected = faults.kill + faults.pause + faults.isolate + faults.cut;
console.log(`faults injected: ${faults.kill} kills, ${faults.pause} pauses, ${faults.isolate} isolations, ${faults.cut} one-way cuts`);
// A run that checked nothing must not read as a pass.
const hollow = [
  ...unbidden,
  ...(['write', 'read'] as const).flatMap((kind) => (history.some((h) => h.kind === kind && h.complete !== null) ? [] : [`no ${kind} completed`])),
  ...(injected === 0 ? ['no fault injected (the nemesis starts 2 s in and stops 10 s before the end: give more --minutes)'] : []),
];
console.log(
  `${history.length} operations (${succeeded} completed, ${history.length - succeeded} with unknown outcome), longest stretch without a completed operation: ${longestStallMs} ms, from ${longestStallFromMs} ms on the events' clock; this process's own event loop held at most ${harnessLongestHoldMs} ms`,
);
const out = new URL('../bench/results/chaos.json', import.meta.url).pathname;
writeFileSync(
  out,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      options: { minutes: o.minutes, clients: o.clients, keys: o.keys, seed: o.seed },
      operations: history.length,
      completed: succeeded,
      longestStallMs,
      longestStallFromMs,
      harnessLongestHoldMs,
      linearizable: verdict.ok,
      faults,
      hollow,
      events,
    },
    null,
    2,
  ),
);
if (!verdict.ok) {
  console.error(`NOT LINEARIZABLE: key ${verdict.key} (seed ${o.seed})\n${describeHistory(verdict.history ?? [])}`);
  process.exitCode = 1;
} else {
  console.log(`linearizable: ${verdict.keys} keys, ${verdict.ops} operations checked; written to ${out}`);
}
if (hollow.length > 0) {
  console.error(`chaos: this run vouches for nothing (rerun with --logs DIR to see the nodes' side):\n  ${hollow.join('\n  ')}`);
  process.exitCode = 1;
}
