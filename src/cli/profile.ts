// CPU profiles of the benchmarks: where the main thread's time goes while a
// system is measured. `raftlog bench --profile` and `npm run bench -- wal
// --profile` record one V8 profile per system around exactly the measured
// window (not the setup), write it as a .cpuprofile (open it in Chrome
// DevTools or VS Code), and print the functions with the most self time and
// the shares of idle, GC and V8-internal ("program") time.
//
// The profiler runs in-process, through node:inspector, rather than as
// `node --cpu-prof` on a child: the systems measured live in the bench process
// itself, and a child's profile would cover its whole life (start-up, warm-up,
// teardown) with no way to cut out the measured window. V8 samples the JS
// thread only: the native WAL writer's thread is not in the profile, and its
// fsyncs show as idle time on the main thread.
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { findSourceMap } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The parts of a V8 CPU profile (Profiler.Profile) that the analysis reads. */
export interface CpuProfile {
  nodes: CpuProfileNode[];
  /** Microseconds. */
  startTime: number;
  endTime: number;
  /** Node id of each sample, in order. */
  samples?: number[];
  /** Microseconds from the previous sample (from startTime for the first). */
  timeDeltas?: number[];
}

export interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number; scriptId?: string };
  hitCount?: number;
  children?: number[];
}

export interface FunctionTime {
  /** Function name, '(anonymous)' for an unnamed one. */
  name: string;
  /** file:line (1-based), relative to the working directory; '(native)' for a function without a script. */
  location: string;
  selfMs: number;
  /** Of all sampled time, idle included. */
  share: number;
}

export interface ProfileSummary {
  totalMs: number;
  samples: number;
  idleMs: number;
  gcMs: number;
  /** V8 and native work not attributed to a JS function. */
  programMs: number;
  /** Everything else: JS functions and the native functions they call. */
  jsMs: number;
  top: FunctionTime[];
}

/** Maps a generated position (0-based line and column) to its source, or null to keep it. */
export type Locate = (url: string, line: number, column: number) => { url: string; line: number; column: number } | null;

const SPECIAL: Record<string, 'idle' | 'gc' | 'program'> = {
  '(idle)': 'idle',
  '(garbage collector)': 'gc',
  '(program)': 'program',
  '(root)': 'program',
};

/** Time of each node's own samples (µs): a sample lasts until the next one; the last one until endTime. */
function selfTimes(p: CpuProfile): { times: Map<number, number>; samples: number } {
  const times = new Map<number, number>();
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  if (samples.length > 0 && deltas.length === samples.length) {
    let t = p.startTime;
    const stamps = deltas.map((d) => (t += d));
    for (let i = 0; i < samples.length; i++) {
      const next = i + 1 < samples.length ? stamps[i + 1]! : Math.max(p.endTime, stamps[i]!);
      // V8 occasionally records a sample out of order; it gets no time rather than negative time.
      const dt = Math.max(0, next - stamps[i]!);
      times.set(samples[i]!, (times.get(samples[i]!) ?? 0) + dt);
    }
    return { times, samples: samples.length };
  }
  // No sample list: spread the duration over the hit counts.
  const hits = p.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0);
  const per = hits > 0 ? (p.endTime - p.startTime) / hits : 0;
  for (const n of p.nodes) if ((n.hitCount ?? 0) > 0) times.set(n.id, n.hitCount! * per);
  return { times, samples: hits };
}

function displayUrl(url: string): string {
  if (url === '') return '(native)';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  // Dependencies by package path, wherever node_modules really lives.
  const dep = path.lastIndexOf('/node_modules/');
  if (dep >= 0) return path.slice(dep + 1);
  const rel = relative(process.cwd(), path);
  return rel.startsWith('..') ? path : rel;
}

/**
 * Self time per function over one or more profiles (the profiles of one
 * system's cases add up), the `top` largest first, and the shares of idle,
 * GC and program time.
 */
export function analyzeProfile(profiles: CpuProfile | CpuProfile[], options: { top?: number; locate?: Locate } = {}): ProfileSummary {
  const list = Array.isArray(profiles) ? profiles : [profiles];
  const byFunction = new Map<string, { name: string; location: string; us: number }>();
  let total = 0;
  let samples = 0;
  const special = { idle: 0, gc: 0, program: 0 };
  for (const p of list) {
    const { times, samples: n } = selfTimes(p);
    samples += n;
    for (const node of p.nodes) {
      const us = times.get(node.id);
      if (us === undefined) continue;
      total += us;
      const f = node.callFrame;
      const kind = f.url === '' ? SPECIAL[f.functionName] : undefined;
      if (kind !== undefined) {
        special[kind] += us;
        continue;
      }
      const at = options.locate?.(f.url, f.lineNumber, f.columnNumber) ?? { url: f.url, line: f.lineNumber, column: f.columnNumber };
      const name = f.functionName === '' ? '(anonymous)' : f.functionName;
      const location = at.url === '' ? '(native)' : `${displayUrl(at.url)}:${at.line + 1}`;
      const key = `${name}\0${location}`;
      const entry = byFunction.get(key);
      if (entry === undefined) byFunction.set(key, { name, location, us });
      else entry.us += us;
    }
  }
  const share = (us: number): number => (total > 0 ? us / total : 0);
  const top = [...byFunction.values()]
    .sort((a, b) => b.us - a.us || a.name.localeCompare(b.name))
    .slice(0, options.top ?? 15)
    .map((f) => ({ name: f.name, location: f.location, selfMs: f.us / 1000, share: share(f.us) }));
  return {
    totalMs: total / 1000,
    samples,
    idleMs: special.idle / 1000,
    gcMs: special.gc / 1000,
    programMs: special.program / 1000,
    jsMs: (total - special.idle - special.gc - special.program) / 1000,
    top,
  };
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

export function formatProfileSummary(title: string, s: ProfileSummary): string {
  const of = (ms: number): string => pct(s.totalMs > 0 ? ms / s.totalMs : 0);
  const lines = [
    `${title}: ${s.totalMs.toFixed(0)} ms sampled (${s.samples} samples): idle ${of(s.idleMs)}, GC ${of(s.gcMs)}, program ${of(s.programMs)}, JS and native calls ${of(s.jsMs)}`,
    '| self ms | share | function | location |',
    '|---:|---:|---|---|',
    ...s.top.map((f) => `| ${f.selfMs.toFixed(1)} | ${pct(f.share)} | ${f.name} | ${f.location} |`),
  ];
  return lines.join('\n');
}

/**
 * Positions through the source maps Node registered (tsx registers them for the
 * TypeScript it compiles; dist/ needs --enable-source-maps), so that file:line
 * names the .ts source rather than the generated code.
 */
export const sourceMapLocate: Locate = (url, line, column) => {
  if (!url.startsWith('file://')) return null;
  let map;
  try {
    map = findSourceMap(fileURLToPath(url));
  } catch {
    return null;
  }
  if (map === undefined) return null;
  const e = map.findEntry(line, column) as { originalSource?: string; originalLine?: number; originalColumn?: number };
  if (e.originalSource === undefined || e.originalLine === undefined) return null;
  const source = e.originalSource.startsWith('file://') ? e.originalSource : new URL(e.originalSource, url).href;
  return { url: source, line: e.originalLine, column: e.originalColumn ?? 0 };
};

/** Profiles the main thread between start() and stop(); one profiler per process at a time. */
export class CpuProfiler {
  private connected = true;

  private constructor(private readonly session: Session) {}

  /** `intervalUs`: the sampling period; shorter sees more of short runs and costs more. */
  static async start(intervalUs = 500): Promise<CpuProfiler> {
    const session = new Session();
    session.connect();
    try {
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
      await session.post('Profiler.start');
    } catch (err) {
      session.disconnect();
      throw err;
    }
    return new CpuProfiler(session);
  }

  async stop(): Promise<CpuProfile> {
    try {
      const { profile } = await this.session.post('Profiler.stop');
      return profile as CpuProfile;
    } finally {
      this.dispose();
    }
  }

  /** Ends the session without a profile (after a failure); does nothing once stopped. */
  dispose(): void {
    if (!this.connected) return;
    this.connected = false;
    this.session.disconnect();
  }
}

/** A file name for one system's profile: 'embedded (1 node)' -> 'embedded-1-node'. */
export function profileFileName(prefix: string, system: string): string {
  const slug = system
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
  return `${prefix}-${slug}.cpuprofile`;
}

/** Writes the profile into `dir` and returns its path. */
export function saveProfile(dir: string, name: string, profile: CpuProfile): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(profile));
  return path;
}

export const DEFAULT_PROFILE_DIR = join('bench', 'results', 'profiles');
