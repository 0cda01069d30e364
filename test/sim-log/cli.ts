// Runs the log simulator over many seeds, or replays one:
//   npx tsx test/sim-log/cli.ts --seeds 500 [--from 1] [--nodes 3|5|mixed]
//   npx tsx test/sim-log/cli.ts --seed 123 --nodes 3 --verbose [--membership]
// --fault-ms and --snapshot-every change the run (a failure then replays only with the same values).
import { parseArgs } from 'node:util';
import { replayCommand, runSimulation, type SimReport } from './simulation.js';
import { LOG_MUTATIONS, type LogMutation } from './mutations.js';

const USAGE = `usage: npx tsx test/sim-log/cli.ts [--seed S | --seeds N [--from S]] [--nodes 3|5|mixed] [--membership] [--joint]
                                    [--fault-ms MS] [--snapshot-every N] [--swarm] [--mutation M] [--verbose]
  --swarm       each seed draws its own mix and pace of faults (and membership changes, snapshot interval)
  --mutation M  plant a bug on purpose to see the checkers fire: ${LOG_MUTATIONS.join(' | ')}`;

function parseCli(): ReturnType<typeof parse> {
  try {
    return parse();
  } catch (err) {
    // A bad flag: say what is wrong and how to call it; exit 2 like every raftlog command.
    console.error(`${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
}

const parse = () =>
  parseArgs({
    options: {
      seed: { type: 'string' },
      seeds: { type: 'string', default: '100' },
      from: { type: 'string', default: '1' },
      nodes: { type: 'string', default: '3' },
      'fault-ms': { type: 'string' },
      'snapshot-every': { type: 'string' },
      verbose: { type: 'boolean', default: false },
      membership: { type: 'boolean', default: false },
      joint: { type: 'boolean', default: false },
      swarm: { type: 'boolean', default: false },
      mutation: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });

const { values } = parseCli();
if (values.mutation !== undefined && !(LOG_MUTATIONS as readonly string[]).includes(values.mutation)) {
  console.error(`--mutation must be one of ${LOG_MUTATIONS.join(', ')}, got ${values.mutation}\n${USAGE}`);
  process.exit(2);
}
const mutation = values.mutation as LogMutation | undefined;
if (values.membership && values.joint) {
  console.error(`--membership and --joint cannot be combined: each adds its own spare nodes after the original ones\n${USAGE}`);
  process.exit(2);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

function int(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(`--${name} must be a non-negative integer, got ${v}`);
    process.exit(2);
  }
  return n;
}

function nodesFor(seed: number): number {
  if (values.nodes === 'mixed') return seed % 4 === 0 ? 5 : 3;
  return int('nodes', values.nodes);
}

function printFailure(r: SimReport): void {
  console.log(`\nFAIL seed ${r.seed} (${r.nodes} nodes):`);
  for (const v of r.violations) console.log(`  ${v}`);
  console.log('  last trace lines:');
  for (const l of r.tail.slice(-25)) console.log(`    ${l}`);
  const extra = [
    values.joint ? ' --joint' : '',
    values['fault-ms'] !== undefined ? ` --fault-ms ${values['fault-ms']}` : '',
    values['snapshot-every'] !== undefined ? ` --snapshot-every ${values['snapshot-every']}` : '',
  ].join('');
  console.log(`  replay: ${replayCommand(r.seed, r.nodes, { membership: values.membership, swarm: values.swarm, mutation })}${extra}`);
}

const faultMs = values['fault-ms'] === undefined ? undefined : int('fault-ms', values['fault-ms']);
const snapshotEvery = values['snapshot-every'] === undefined ? undefined : int('snapshot-every', values['snapshot-every']);

if (values.seed !== undefined) {
  const seed = int('seed', values.seed);
  const r = await runSimulation({
    seed,
    nodes: nodesFor(seed),
    faultMs,
    snapshotEvery,
    membership: values.membership,
    jointMembership: values.joint,
    swarm: values.swarm,
    mutation,
    trace: values.verbose ? (l) => console.log(l) : undefined,
  });
  console.log(JSON.stringify({ seed: r.seed, nodes: r.nodes, ok: r.ok, digest: r.digest, stats: r.stats }));
  if (!r.ok) printFailure(r);
  process.exit(r.ok ? 0 : 1);
}

const count = int('seeds', values.seeds);
const from = int('from', values.from);
const failed: number[] = [];
const t0 = performance.now();
let acked = 0;
for (let seed = from; seed < from + count; seed++) {
  const r = await runSimulation({
    seed,
    nodes: nodesFor(seed),
    faultMs,
    snapshotEvery,
    membership: values.membership,
    jointMembership: values.joint,
    swarm: values.swarm,
    mutation,
  });
  acked += r.stats.acked;
  if (!r.ok) {
    failed.push(seed);
    printFailure(r);
  }
  const done = seed - from + 1;
  if (done % 10 === 0 || done === count) {
    const s = ((performance.now() - t0) / 1000).toFixed(1);
    process.stdout.write(`\r${done}/${count} seeds, ${failed.length} failed, ${acked} appends acknowledged, ${s}s   `);
  }
}
console.log(failed.length === 0 ? '\nall seeds passed' : `\nfailed seeds: ${failed.join(' ')}`);
process.exit(failed.length === 0 ? 0 : 1);
