// `npm run sim -- [--nodes 3|5] [--seed S | --seeds N [--from S]] [--steps M] [--trace]`
// Replays one seed (with --seed; --trace prints every event) or runs many with
// progress. Exits 1 on the first failing seed, after printing its replay command.
import { DEFAULT_STEPS, SimFailure, Simulation, replayCommand, type SimOptions, type SimResult } from './simulation.js';
import { SIM_MUTATIONS, type SimMutation } from './mutations.js';

interface Args {
  nodes: number[];
  seed: number | undefined;
  seeds: number;
  from: number;
  steps: number;
  trace: boolean;
  keepGoing: boolean;
  mutation: SimOptions['mutation'];
  lease: boolean;
  joint: boolean;
  swarm: boolean;
}

function usage(): string {
  return [
    'usage: npm run sim -- [--nodes 3|5] [--seed S | --seeds N [--from S] [--keep-going]] [--steps M] [--trace] [--lease] [--joint] [--swarm] [--mutation M]',
    '  --seed S     replay one seed (with --trace: print every event)',
    '  --seeds N    run seeds from..from+N-1 for each cluster size (default 100)',
    '  --keep-going report every failing seed instead of stopping at the first',
    `  --mutation M plant a bug on purpose to see the checkers fire: ${SIM_MUTATIONS.join(' | ')}`,
    '  --swarm      each seed draws its own mix and pace of faults, with term churn and transfers to lagging nodes',
    "  --lease      serve reads by lease ('lease' readOnlyOption) where CheckQuorum is on, with perfect clocks",
    '  --joint      also propose joint membership changes (several changes at once)',
    `  --steps M    events per run while faults are injected (default ${DEFAULT_STEPS})`,
  ].join('\n');
}

function parse(argv: string[]): Args {
  const a: Args = {
    nodes: [3, 5],
    seed: undefined,
    seeds: 100,
    from: 1,
    steps: DEFAULT_STEPS,
    trace: false,
    keepGoing: false,
    mutation: undefined,
    lease: false,
    joint: false,
    swarm: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--trace' || flag === '--keep-going' || flag === '--lease' || flag === '--joint' || flag === '--swarm') {
      if (flag === '--trace') a.trace = true;
      else if (flag === '--lease') a.lease = true;
      else if (flag === '--joint') a.joint = true;
      else if (flag === '--swarm') a.swarm = true;
      else a.keepGoing = true;
      continue;
    }
    if (flag === '--help' || flag === '-h') {
      console.log(usage());
      process.exit(0);
    }
    if (flag === '--mutation') {
      const m = argv[++i];
      if (!(SIM_MUTATIONS as readonly string[]).includes(m ?? '')) throw new UsageError(`--mutation must be one of ${SIM_MUTATIONS.join(', ')}, got ${m}`);
      a.mutation = m as SimMutation;
      continue;
    }
    const raw = argv[++i];
    const value = Number(raw);
    if (raw === undefined || !Number.isSafeInteger(value) || value < 0) throw new UsageError(`${flag} needs a non-negative integer, got ${raw}`);
    switch (flag) {
      case '--nodes':
        if (value < 1 || value > 9) throw new UsageError(`--nodes must be 1..9, got ${value}`);
        a.nodes = [value];
        break;
      case '--seed':
        a.seed = value;
        break;
      case '--seeds':
        a.seeds = value;
        break;
      case '--from':
        a.from = value;
        break;
      case '--steps':
        a.steps = value;
        break;
      default:
        throw new UsageError(`unknown option ${flag}`);
    }
  }
  return a;
}

class UsageError extends Error {
  readonly code = 'SIM_USAGE';
}

function summary(r: SimResult): string {
  return (
    `${r.steps} steps, t=${r.time}, commit ${r.commitIndex}, ${r.leaderChanges} leader changes, ${r.crashes} crashes, ` +
    `${r.partitions} partitions, ${r.confChangesApplied} conf changes applied, ${r.snapshotsSent} snapshots sent, ` +
    `${r.malformedRefused} malformed messages refused, recovered in ${r.recoveryTicks} ticks`
  );
}

function main(): number {
  let args: Args;
  try {
    args = parse(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`${err.message}\n${usage()}`);
    return 2;
  }
  if (args.seed !== undefined) {
    let failed = false;
    for (const nodes of args.nodes) {
      const options = {
        nodes,
        seed: args.seed,
        steps: args.steps,
        mutation: args.mutation,
        lease: args.lease,
        joint: args.joint,
        swarm: args.swarm,
        ...(args.trace ? { trace: (l: string) => console.log(l) } : {}),
      };
      try {
        console.log(`seed ${args.seed}, ${nodes} nodes: ${summary(new Simulation(options).run())}`);
      } catch (err) {
        if (!(err instanceof SimFailure)) throw err;
        console.error(err.message);
        if (err.cause instanceof Error && !('invariant' in err.cause)) console.error(err.cause.stack);
        failed = true;
      }
    }
    return failed ? 1 : 0;
  }
  let totalFailures = 0;
  for (const nodes of args.nodes) {
    const started = performance.now();
    let lastReport = started;
    let totalCommits = 0;
    let failures = 0;
    let worstRecovery = { ticks: 0, seed: 0 };
    for (let k = 0; k < args.seeds; k++) {
      const seed = args.from + k;
      try {
        const r = new Simulation({ nodes, seed, steps: args.steps, mutation: args.mutation, lease: args.lease, joint: args.joint, swarm: args.swarm }).run();
        totalCommits += r.commitIndex;
        if (r.recoveryTicks > worstRecovery.ticks) worstRecovery = { ticks: r.recoveryTicks, seed };
      } catch (err) {
        if (!(err instanceof SimFailure)) throw err;
        console.error(`\n${err.message}`);
        failures++;
        if (!args.keepGoing) return 1;
      }
      const now = performance.now();
      if (now - lastReport > 1000 || k === args.seeds - 1) {
        lastReport = now;
        const rate = ((k + 1) / (now - started)) * 1000;
        console.log(
          `${nodes} nodes: ${k + 1}/${args.seeds} seeds, ${failures} failed (${rate.toFixed(1)} seeds/s, avg commit ${(totalCommits / (k + 1)).toFixed(0)}, slowest recovery ${worstRecovery.ticks} ticks at seed ${worstRecovery.seed})`,
        );
      }
    }
    totalFailures += failures;
  }
  if (totalFailures > 0) {
    console.error(`${totalFailures} seeds failed`);
    return 1;
  }
  console.log(
    `all seeds passed; replay any with ${replayCommand({ nodes: args.nodes[0]!, seed: args.from, steps: args.steps, mutation: args.mutation, lease: args.lease, joint: args.joint, swarm: args.swarm })}`,
  );
  return 0;
}

process.exitCode = main();
