// `npm run mutate [-- --only NAME] [--budget-s N]`: mutation testing on demand (not in CI).
// Each mutant is one small textual change to src/raft, src/log or src/wal, the
// kind of slip a person makes. For each, the repository is copied to a scratch
// directory, the change applied, and a fast test subset run there under a time
// budget. A mutant the tests fail on is killed; one they pass survives and names
// a gap in the tests. Writes bench/results/mutation.json and mutation.md.
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, realpath, rm, symlink, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

interface Mutant {
  name: string;
  file: string;
  find: string;
  replace: string;
}

// Each `find` must occur exactly once in its file (checked before running).
const MUTANTS: Mutant[] = [
  {
    name: 'raft: commit an older term by counting (Figure 8)',
    file: 'src/raft/log.ts',
    find: 'if (maxIndex > this.committed && this.zeroTerm(maxIndex) === term) {',
    replace: 'if (maxIndex > this.committed) {',
  },
  {
    name: 'raft: up-to-date check compares index first',
    file: 'src/raft/log.ts',
    find: 'return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());',
    replace: 'return lastIndex >= this.lastIndex();',
  },
  { name: 'raft: up-to-date check off by one', file: 'src/raft/log.ts', find: 'lastIndex >= this.lastIndex());', replace: 'lastIndex > this.lastIndex());' },
  { name: 'raft: vote granted to anyone (canVote always)', file: 'src/raft/raft.ts', find: '          this.vote === m.from ||', replace: '          true ||' },
  { name: 'raft: vote not recorded', file: 'src/raft/raft.ts', find: '            this.vote = m.from;', replace: '            void m.from;' },
  {
    name: 'raft: snapshot restore drops a matching suffix',
    file: 'src/raft/raft.ts',
    find: '    if (this.raftLog.matchTerm(s.meta.index, s.meta.term)) {',
    replace: '    if (false) {',
  },
  {
    name: 'raft: transfer before the transferee caught up',
    file: 'src/raft/raft.ts',
    find: '        if (pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(transferee);',
    replace: '        this.sendTimeoutNow(transferee);',
  },
  {
    name: 'raft: stale append response accepted past the leader log',
    file: 'src/raft/raft.ts',
    find: 'if (!m.reject && m.index > this.raftLog.lastIndex()) {',
    replace: 'if (false) {',
  },
  {
    name: 'raft: commitTo beyond the log allowed',
    file: 'src/raft/log.ts',
    find: '    if (tocommit > this.lastIndex()) throw',
    replace: '    if (false) throw',
  },
  {
    name: 'raft: committed entries handed out before durable',
    file: 'src/raft/log.ts',
    find: '    const hi = Math.min(this.committed, this.stableLastIndex()) + 1;',
    replace: '    const hi = this.committed + 1;',
  },
  {
    name: 'raft: findConflict ignores terms',
    file: 'src/raft/log.ts',
    find: '      if (!this.matchTerm(e.index, e.term)) return e.index;',
    replace: '      if (e.index > this.lastIndex()) return e.index;',
  },
  { name: 'raft: pre-vote skips the lease', file: 'src/raft/raft.ts', find: '        if (!force && inLease) return;', replace: '        if (false) return;' },
  {
    name: 'log: acks sent before the write is durable',
    file: 'src/log/replicated-log.ts',
    find: '    if (rd.messages.length > 0) this.deps.transport?.send(rd.messages);',
    replace: '    if (rd.messages.length > 0) this.deps.transport?.send([...rd.messages, ...rd.messagesAfterPersist]);',
  },
  {
    name: 'log: no fresh snapshot for a new member',
    file: 'src/log/replicated-log.ts',
    find: 'if (cc.type !== ConfChangeType.RemoveNode && this.snapshotIndex > 0) this.snapshotForNewMember = true;',
    replace: 'void cc;',
  },
  {
    name: 'log: entries() reads below a restored snapshot',
    file: 'src/log/replicated-log.ts',
    find: '      if (next <= this.snapshotFloor) throw new CompactedRangeError(next, this.snapshotFloor + 1);',
    replace: '      if (next <= this.snapshotFloor) next = this.snapshotFloor + 1;',
  },
  {
    name: 'log: snapshot never taken',
    file: 'src/log/replicated-log.ts',
    find: '    if (this.applied - this.snapshotIndex >= this.opts.snapshotEvery || this.snapshotForNewMember) {',
    replace: '    if (false) {',
  },
  {
    name: 'wal: truncateAfter keeps one entry too few',
    file: 'src/wal/positions.ts',
    find: '    this.count = index - this.base + 1;',
    replace: '    this.count = index - this.base;',
  },
  {
    name: 'wal: entries() serves one compacted index',
    file: 'src/wal/wal.ts',
    find: '    if (lo < this.firstIndex) throw',
    replace: '    if (lo < this.firstIndex - 1) throw',
  },
  {
    name: 'wal: entries() serves one index past the end',
    file: 'src/wal/wal.ts',
    find: '    if (hi > this.lastIndex + 1) throw',
    replace: '    if (hi > this.lastIndex + 2) throw',
  },
  {
    name: 'wal: releaseTo past the snapshot allowed',
    file: 'src/wal/wal.ts',
    find: '    if (this.snap === null || index > this.snap.index)',
    replace: '    if (this.snap === null)',
  },
];

const root = resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
const budgetS = args.includes('--budget-s') ? Number(args[args.indexOf('--budget-s') + 1]) : 240;
/** The fast subset: the core's scripted tests, the core simulator's checks and planted-bug test, the WAL's pure parts, the log on one node. */
const SUBSET = [
  'test/raft',
  'test/sim/checker.test.ts',
  'test/sim/regressions.test.ts',
  'test/sim/mutations.test.ts',
  'test/wal/wal.test.ts',
  'test/wal/positions.test.ts',
  'test/log/single-node.test.ts',
  'test/sim-log/log-checker.test.ts',
];

function run(cwd: string, budgetMs: number): Promise<{ code: number | null; out: string; ms: number }> {
  const started = performance.now();
  return new Promise((done) => {
    execFile(
      process.execPath,
      [join(root, 'node_modules/vitest/vitest.mjs'), 'run', '--bail=1', ...SUBSET],
      { cwd, timeout: budgetMs, maxBuffer: 64 << 20, env: { ...process.env, CI: '1' } },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
        done({ code, out: `${stdout}${stderr}`, ms: Math.round(performance.now() - started) });
      },
    );
  });
}

async function scratchCopy(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'raftlog-mutant-'));
  for (const p of ['src', 'test', 'package.json', 'tsconfig.json', 'tsconfig.build.json', 'vitest.config.ts', 'binding.gyp'])
    await cp(join(root, p), join(dir, p), { recursive: true });
  await symlink(join(root, 'node_modules'), join(dir, 'node_modules'));
  // The native addon is not mutated: reuse a built one.
  for (const b of [join(root, 'build'), join(await realpath(join(root, 'node_modules')), '../build')]) {
    if (existsSync(b)) {
      await symlink(resolve(b), join(dir, 'build'));
      break;
    }
  }
  return dir;
}

interface Outcome {
  name: string;
  file: string;
  status: 'killed' | 'survived' | 'timeout' | 'invalid';
  ms: number;
  /** The first failing test, for a killed mutant. */
  killedBy?: string;
}

async function main(): Promise<void> {
  const mutants = MUTANTS.filter((m) => only === undefined || m.name.includes(only));
  const outcomes: Outcome[] = [];
  // The subset must pass on the code as it is, in a scratch copy, or no mutant's failure means anything.
  const base = await scratchCopy();
  try {
    const r = await run(base, budgetS * 1000);
    if (r.code !== 0) {
      console.error(`the test subset fails without any mutant (exit ${r.code}); fix that first:\n${r.out.slice(-3000)}`);
      process.exitCode = 1;
      return;
    }
    console.log(`baseline: the subset passes in ${(r.ms / 1000).toFixed(0)} s`);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
  for (const m of mutants) {
    const text = await readFile(join(root, m.file), 'utf8');
    if (text.split(m.find).length !== 2) {
      outcomes.push({ name: m.name, file: m.file, status: 'invalid', ms: 0 });
      console.log(`INVALID ${m.name}: the text to replace is not found exactly once in ${m.file}`);
      continue;
    }
    const dir = await scratchCopy();
    try {
      await writeFile(join(dir, m.file), text.replace(m.find, m.replace));
      const r = await run(dir, budgetS * 1000);
      const failing = /(?:FAIL|×)\s+(\S+\.test\.ts[^\n]*)/.exec(r.out)?.[1]?.slice(0, 160);
      const status: Outcome['status'] = r.code === 0 ? 'survived' : r.code === null ? 'timeout' : 'killed';
      outcomes.push({ name: m.name, file: m.file, status, ms: r.ms, ...(failing !== undefined ? { killedBy: failing } : {}) });
      console.log(`${status.toUpperCase().padEnd(8)} ${m.name} (${(r.ms / 1000).toFixed(0)} s)${failing !== undefined ? ` <- ${failing}` : ''}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    // Written after every mutant, so an interrupted run still leaves what it judged.
    await report(outcomes, mutants.length);
  }
}

async function report(outcomes: Outcome[], planned: number): Promise<void> {
  const judged = outcomes.filter((o) => o.status === 'killed' || o.status === 'survived');
  const killed = judged.filter((o) => o.status === 'killed').length;
  const score = judged.length === 0 ? 0 : killed / judged.length;
  const result = { date: new Date().toISOString(), subset: SUBSET, budgetS, score, killed, judged: judged.length, planned, outcomes };
  await mkdir(join(root, 'bench/results'), { recursive: true });
  await writeFile(join(root, 'bench/results/mutation.json'), `${JSON.stringify(result, null, 2)}\n`);
  const md = [
    '# Mutation testing',
    '',
    `Score: ${killed} of ${judged.length} mutants killed (${(score * 100).toFixed(0)}%; ${planned} planned), by the fast subset: ${SUBSET.join(', ')}.`,
    '',
    '| mutant | file | outcome | killed by |',
    '| --- | --- | --- | --- |',
    ...outcomes.map((o) => `| ${o.name} | ${o.file} | ${o.status} | ${o.killedBy ?? ''} |`),
    '',
  ].join('\n');
  await writeFile(join(root, 'bench/results/mutation.md'), md);
  console.log(`score ${killed}/${judged.length}; written to bench/results/mutation.json and mutation.md`);
}

await main();
