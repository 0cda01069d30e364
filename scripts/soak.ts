// `npm run soak`: a long steady load on a three-process cluster, sampling what
// leaks show up in (memory, file descriptors, disk) rather than what is fast.
// On demand, not in CI. Usage: npm run soak -- [--minutes 10] [--clients 16]
//   [--value-bytes 100] [--sample-seconds 5] [--snapshot-every 10000]
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from '../src/cli/ports.js';
import { CONNECTION_CLOSED, RespClient } from '../test/kv/resp-client.js';
import { decimalArg, intArg } from '../src/cli/args.js';
import { scriptFlags } from './flags.js';
import { serveNode, writeClusterSecret } from './serve-node.js';
import { diskBytes } from '../bench/disk-bytes.js';

const USAGE = 'usage: npm run soak -- [--minutes 10] [--clients 16] [--value-bytes 100] [--sample-seconds 5] [--snapshot-every 10000]';

interface Sample {
  atSeconds: number;
  opsPerSecond: number;
  errors: number;
  nodes: Array<{ id: number; rssMiB: number; fds: number; diskMiB: number }>;
}

function parse(): { minutes: number; clients: number; valueBytes: number; sampleSeconds: number; snapshotEvery: number } {
  const known = { minutes: 'string', clients: 'string', 'value-bytes': 'string', 'sample-seconds': 'string', 'snapshot-every': 'string' } as const;
  return scriptFlags('soak', USAGE, known, (opts) => ({
    minutes: decimalArg(opts, 'minutes', 10),
    clients: intArg(opts, 'clients', 16, 1),
    valueBytes: intArg(opts, 'value-bytes', 100, 1),
    sampleSeconds: decimalArg(opts, 'sample-seconds', 5),
    snapshotEvery: intArg(opts, 'snapshot-every', 10_000, 1),
  }));
}

const rssMiB = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
};
const fds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]!;
};

async function main(): Promise<number> {
  const o = parse();
  const work = mkdtempSync(join(tmpdir(), 'raftlog-soak-'));
  const ports = await freePorts(6);
  const ids = [1, 2, 3];
  const peers = ids.map((id) => `${id}=127.0.0.1:${ports[id - 1]}`).join(',');
  const secretFile = writeClusterSecret(work);
  const procs: ChildProcess[] = ids.map((id) => {
    const p = serveNode({
      id,
      work,
      listen: `127.0.0.1:${ports[id - 1]}`,
      peers,
      secretFile,
      resp: `127.0.0.1:${ports[id + 2]}`,
      extra: ['--snapshot-every', String(o.snapshotEvery)],
    });
    return p;
  });
  let died: string | null = null;
  let stopping = false;
  procs.forEach((p, i) => p.on('exit', (code, sig) => (died ??= stopping ? null : `node ${i + 1} exited (${sig ?? code})`)));
  console.log(`soak: 3 nodes in ${work}, ${o.clients} clients, ${o.valueBytes} B values, ${o.minutes} min, a sample every ${o.sampleSeconds} s`);

  // Clients connect once the nodes listen; a write through a follower is forwarded to the leader.
  const clients: RespClient[] = [];
  const deadline = Date.now() + 30_000;
  for (let i = 0; i < o.clients; i++) {
    for (;;) {
      try {
        clients.push(await RespClient.connect(ports[3 + (i % 3)]!));
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`the nodes did not accept clients within 30 s: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
  let ops = 0;
  let errors = 0;
  let running = true;
  const value = Buffer.alloc(o.valueBytes, 0x61);
  const loops = clients.map(async (c, i) => {
    let n = 0;
    while (running) {
      const reply = await c.call('SET', `k${i}:${n++ % 1000}`, value);
      if (reply instanceof Error) errors++;
      else ops++;
      // A closed connection answers at once, without I/O: calling on, the loop starved the event
      // loop, and a node that died hung the run rather than end it (its exit never handled).
      if (reply instanceof Error && reply.message === CONNECTION_CLOSED) break;
    }
  });

  const samples: Sample[] = [];
  const start = Date.now();
  let lastOps = 0;
  const end = start + o.minutes * 60_000;
  console.log('   time   ops/s  errors  ' + ids.map((id) => `n${id} rss MiB  fds  disk MiB`).join('  '));
  while (Date.now() < end && died === null) {
    await new Promise((r) => setTimeout(r, o.sampleSeconds * 1000));
    if (died !== null) break;
    const s: Sample = {
      atSeconds: Math.round((Date.now() - start) / 1000),
      opsPerSecond: (ops - lastOps) / o.sampleSeconds,
      errors,
      nodes: procs.map((p, i) => ({ id: i + 1, rssMiB: rssMiB(p.pid!), fds: fds(p.pid!), diskMiB: diskBytes(join(work, `node${i + 1}`)) / 2 ** 20 })),
    };
    lastOps = ops;
    samples.push(s);
    console.log(
      `${String(s.atSeconds).padStart(6)}s ${Math.round(s.opsPerSecond).toString().padStart(7)} ${String(s.errors).padStart(7)}  ` +
        s.nodes.map((n) => `${n.rssMiB.toFixed(0).padStart(10)} ${String(n.fds).padStart(4)} ${n.diskMiB.toFixed(0).padStart(9)}`).join('  '),
    );
  }
  running = false;
  await Promise.race([Promise.all(loops), new Promise((r) => setTimeout(r, 5_000))]);
  for (const c of clients) c.close();
  stopping = true;
  for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM');
  // One killed by a signal has no exit code: waiting for its exit again never ended, and the run
  // ended with Node's "unsettled top-level await" (13), its results unwritten.
  await Promise.all(procs.map((p) => (p.exitCode !== null || p.signalCode !== null ? null : new Promise((r) => p.once('exit', r)))));

  // Growth: the last quarter's median against the second quarter's (the first is warm-up).
  const q = Math.max(1, Math.floor(samples.length / 4));
  const growth = ids.map((id) => {
    const of = (part: Sample[], k: 'rssMiB' | 'fds' | 'diskMiB'): number => median(part.map((s) => s.nodes[id - 1]![k]));
    const early = samples.slice(q, 2 * q);
    const late = samples.slice(-q);
    return {
      id,
      rssMiB: of(late, 'rssMiB') - of(early, 'rssMiB'),
      fds: of(late, 'fds') - of(early, 'fds'),
      diskMiB: of(late, 'diskMiB') - of(early, 'diskMiB'),
    };
  });
  const result = { date: new Date().toISOString(), options: o, died, totalOps: ops, errors, samples, growth };
  const out = new URL('../bench/results/soak.json', import.meta.url).pathname;
  writeFileSync(out, JSON.stringify(result, null, 2));
  rmSync(work, { recursive: true, force: true });
  console.log(`\n${ops} writes, ${errors} errors; growth from the second quarter to the last (per node):`);
  for (const g of growth)
    console.log(
      `  node ${g.id}: rss ${g.rssMiB >= 0 ? '+' : ''}${g.rssMiB.toFixed(1)} MiB, fds ${g.fds >= 0 ? '+' : ''}${g.fds}, disk ${g.diskMiB >= 0 ? '+' : ''}${g.diskMiB.toFixed(0)} MiB`,
    );
  console.log(`written to ${out}`);
  if (died !== null) {
    console.error(`soak: ${died}`);
    return 1;
  }
  // Growth measured over no writes says nothing about a node under load.
  if (ops === 0) {
    console.error('soak: no write succeeded');
    return 1;
  }
  return 0;
}

process.exitCode = await main();
