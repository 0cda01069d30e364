// The product's performance goals, judged against the last results of the suites
// that measure them. Each goal is a ratio within one run (raftlog against a
// baseline measured beside it), so that the verdict holds on the machine the run
// was made on; a goal whose suite has not run says so instead of guessing.

type Json = Record<string, unknown>;

export interface Verdict {
  goal: string;
  /** The measured figure, in words; '-' when its suite has not run. */
  measured: string;
  /** null: not measured. */
  met: boolean | null;
}

const rowsOf = (r: Json | undefined, key = 'rows'): Json[] => (r !== undefined && Array.isArray(r[key]) ? (r[key] as Json[]) : []);
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : NaN);
const x = (v: number): string => `${v.toFixed(2)}x`;
const dateOf = (r: Json | undefined): string => (typeof r?.date === 'string' ? `${r.date.slice(0, 16).replace('T', ' ')} UTC` : 'an unrecorded date');

type Bound = '>=' | '<=' | '<';

function judge(goal: string, value: number, bound: Bound, target: number, show: (v: number) => string): Verdict {
  // Not a number, or a ratio over a baseline that made nothing (x / 0): no figure, no verdict.
  if (!Number.isFinite(value)) return { goal, measured: '-', met: null };
  const met = bound === '>=' ? value >= target : bound === '<=' ? value <= target : value < target;
  return { goal, measured: show(value), met };
}

/** The row of the product bench for a system and case. */
function product(results: Record<string, Json>, system: string, bytes: number, clients: number): Json | undefined {
  return rowsOf(results.cluster).find((r) => r.system === system && r.recordBytes === bytes && r.clients === clients);
}

function vsSqlite(results: Record<string, Json>, bytes: number, clients: number, field = 'recordsPerSec'): number {
  const e = product(results, 'embedded (1 node)', bytes, clients);
  const s = product(results, 'better-sqlite3', bytes, clients);
  return e === undefined || s === undefined ? NaN : num(e[field]) / num(s[field]);
}

export function verdicts(measured: Record<string, Json>): Verdict[] {
  // Under the CPU profiler the code runs slowed, and `raftlog bench` measures its systems one
  // after the other instead of in turns: such a run's ratios judge nothing.
  const results = Object.fromEntries(Object.entries(measured).filter(([, r]) => r.profiled !== true));
  const out: Verdict[] = [];
  for (const [bytes, clients, target] of [
    [100, 256, 1.5],
    [100, 1024, 1.5],
    [1024, 256, 1.5],
    [100, 16, 1.2],
    [100, 1, 1.0],
  ] as const) {
    out.push(
      judge(`embedded log, ${bytes} B x ${clients} clients: records/s >= ${target}x better-sqlite3`, vsSqlite(results, bytes, clients), '>=', target, x),
    );
  }
  out.push(judge('embedded log, 1 client: p99 <= 1.5x better-sqlite3', vsSqlite(results, 100, 1, 'p99Ms'), '<=', 1.5, x));
  out.push(judge('embedded log, 1 client: p99.9 <= 2x better-sqlite3', vsSqlite(results, 100, 1, 'p999Ms'), '<=', 2, x));
  const gc = product(results, 'embedded (1 node)', 100, 256);
  out.push(judge('embedded log, 100 B x 256 clients: GC < 8% of the time', num(gc?.gcShare), '<', 0.08, (v) => `${(100 * v).toFixed(1)}%`));
  const cluster = product(results, 'cluster (3 nodes)', 100, 256);
  const embedded = product(results, 'embedded (1 node)', 100, 256);
  out.push(
    judge('3-node cluster, 100 B x 256 clients: records/s >= 0.7x the embedded log', num(cluster?.recordsPerSec) / num(embedded?.recordsPerSec), '>=', 0.7, x),
  );
  // CPU carries over to bigger machines, where the three nodes do not share two cores.
  out.push(
    judge(
      '3-node cluster, 100 B x 256 clients: CPU of the three nodes per record <= 2.5x the embedded log',
      num(cluster?.systemCpuUsPerRecord) / num(embedded?.systemCpuUsPerRecord),
      '<=',
      2.5,
      x,
    ),
  );

  const wal = rowsOf(results.wal);
  const walRow = (writer: string, size: number, batch: number, inflight: number): Json | undefined =>
    wal.find((r) => r.writer === writer && r.size === size && r.batch === batch && r.inflight === inflight);
  // Judged on the rounds that measured the raw disk beside the default strategy: a shared disk drifts.
  const targets = results.wal?.targets as Json | undefined;
  out.push(
    judge('WAL alone, 1 KiB x 64 per append x 256 in flight: >= 0.9 of raw disk MB/s, synced as often', num(targets?.defaultKib64x256OfRaw), '>=', 0.9, x),
  );
  // The same case as a log that compacts as it goes, reusing released segments: the raw
  // baseline overwrites a written file, which only a recycled segment does too.
  if (typeof targets?.steadyKib64x256OfRaw === 'number')
    out.push(
      judge('WAL alone, the same case as a compacting log (released segments recycled): >= 0.9 of raw disk MB/s', targets.steadyKib64x256OfRaw, '>=', 0.9, x),
    );
  const small = [1, 16, 256].map(
    (inflight) => num(walRow('wal', 100, 1024, inflight)?.recordsPerSec) / num(walRow('node', 100, 1024, inflight)?.recordsPerSec),
  );
  out.push(judge('WAL alone, 100 B x 1024 per append: >= 1.5x a plain Node group-commit writer (worst in-flight case)', Math.min(...small), '>=', 1.5, x));
  // Every case of the WAL, however its segments are prepared or its appends issued: only the node writer's are not its.
  const worst = wal
    .filter((r) => r.writer !== 'node')
    .reduce<Json | undefined>((a, r) => (a === undefined || !(num(r.loopP99ms) <= num(a.loopP99ms)) ? r : a), undefined);
  out.push(
    judge(
      'WAL alone: event-loop p99 < 5 ms in every case (worst case)',
      num(worst?.loopP99ms),
      '<',
      5,
      (v) => `${v.toFixed(2)} ms (${String(worst?.writer)}, ${String(worst?.size)} B x ${String(worst?.batch)} x ${String(worst?.inflight)} in flight)`,
    ),
  );

  const resp = rowsOf(results.resp);
  for (const [clients, target] of [
    [256, 1.0],
    [16, 0.5],
  ] as const) {
    const r = resp.find((row) => row.clients === clients);
    const c = r?.cluster as Json | undefined;
    const redis = r?.redis as Json | undefined;
    out.push(
      judge(
        `KV over RESP, 3-node cluster, ${clients} connections: SET/s >= ${target}x Redis (appendfsync always)`,
        num(c?.setsPerSec) / num(redis?.setsPerSec),
        '>=',
        target,
        x,
      ),
    );
  }
  const resp256 = resp.find((row) => row.clients === 256)?.cluster as Json | undefined;
  const inProcess = num(cluster?.recordsPerSec);
  const overResp = num(resp256?.setsPerSec);
  out.push(
    judge(
      '3-node cluster, 256 clients: in-process records/s (100 B) and KV-over-RESP SET/s within 1.5x of each other',
      Math.max(inProcess / overResp, overResp / inProcess),
      '<=',
      1.5,
      // The one goal that sets two suites' runs side by side: the reader is told which.
      (v) =>
        `${x(v)} (${Math.round(inProcess).toLocaleString('en-US')} against ${Math.round(overResp).toLocaleString('en-US')}; two runs: the cluster suite's of ${dateOf(results.cluster)}, the resp suite's of ${dateOf(results.resp)})`,
    ),
  );
  const cost = results.resp?.snapshotCost as Json | null | undefined;
  const snapshotGoal = 'KV over RESP, 3-node cluster: state-machine snapshots at the default snapshotEvery cost < 10% of SET/s';
  // With no snapshot in the measured time the two clusters differ only by chance: no verdict.
  if (cost?.snapshotsTaken === 0) out.push({ goal: snapshotGoal, measured: 'no snapshot fell in the measured time: run longer', met: null });
  else
    out.push(
      judge(
        snapshotGoal,
        1 - num(cost?.ratio),
        '<',
        0.1,
        (v) => `${(100 * v).toFixed(1)}% (${num(cost?.clients)} connections, ${num(cost?.snapshotsTaken)} snapshots taken while measured)`,
      ),
    );
  return out;
}

export function goalsSection(results: Record<string, Json>): string[] {
  const rows = verdicts(results);
  return [
    '## Goals',
    '',
    "The product's performance goals, each a ratio measured within one run (but for the in-process against RESP one, which compares two suites' runs), judged from the tables below (their machines and dates are given there).",
    '',
    '| goal | measured | met |',
    '| --- | --- | --- |',
    ...rows.map((v) => `| ${v.goal} | ${v.measured} | ${v.met === null ? 'not measured' : v.met ? 'yes' : 'no'} |`),
  ];
}
