// What the suites share: where results go, and the --profile plumbing that
// bench/run.ts passes down (the analysis itself is src/cli/profile.ts, shared
// with `raftlog bench`).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CpuProfiler,
  DEFAULT_PROFILE_DIR,
  analyzeProfile,
  formatProfileSummary,
  profileFileName,
  saveProfile,
  sourceMapLocate,
  type CpuProfile,
} from '../src/cli/profile.js';

export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'results');

/** Writes bench/results/<suite>.json with the suite name and date first; returns the path. */
export function writeResults(suite: string, data: object): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${suite}.json`);
  writeFileSync(path, JSON.stringify({ suite, date: new Date().toISOString(), ...data }, null, 2) + '\n');
  console.log(`wrote ${relative(process.cwd(), path)}`);
  return path;
}

/** The profile directory the arguments ask for (`--profile`, `--profile-dir=DIR`), or null. */
export function profileDirOf(args: readonly string[]): string | null {
  const dir = args.find((a) => a.startsWith('--profile-dir='));
  if (dir !== undefined) return dir.slice('--profile-dir='.length);
  return args.includes('--profile') ? DEFAULT_PROFILE_DIR : null;
}

/**
 * Profiles each measured case into its own .cpuprofile and sums the cases of
 * one system (one writer, one group of functions) into one printed summary.
 */
export class SuiteProfiles {
  private readonly bySystem = new Map<string, { profiles: CpuProfile[]; files: string[] }>();

  constructor(
    private readonly suite: string,
    private readonly dir: string | null,
  ) {}

  get enabled(): boolean {
    return this.dir !== null;
  }

  /** Runs `fn`, profiled when --profile was given, as case `name` of `system`. */
  async around<T>(system: string, name: string, fn: () => Promise<T>): Promise<T> {
    if (this.dir === null) return fn();
    const profiler = await CpuProfiler.start();
    let out: T;
    try {
      out = await fn();
    } catch (err) {
      profiler.dispose();
      throw err;
    }
    const profile = await profiler.stop();
    const file = saveProfile(this.dir, profileFileName(this.suite, name), profile);
    const group = this.bySystem.get(system) ?? { profiles: [], files: [] };
    group.profiles.push(profile);
    group.files.push(file);
    this.bySystem.set(system, group);
    return out;
  }

  print(): void {
    if (this.dir === null) return;
    for (const [system, g] of this.bySystem) {
      const where = g.files.length === 1 ? g.files[0]! : `${g.files.length} profiles in ${this.dir}`;
      console.log(`\n${formatProfileSummary(`profile of ${system} (${where})`, analyzeProfile(g.profiles, { locate: sourceMapLocate }))}`);
    }
  }
}
