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
import { positiveDecimal, wholeNumber } from '../src/cli/args.js';

export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'results');

/** The median of `xs` (0 for none): every suite reports the median of its runs. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? 0 : s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

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

/** An option of one suite that takes a value: `--name V` or `--name=V`. */
export interface SuiteOption {
  /** The value's placeholder and what the option does, for the usage text. */
  help: string;
  /** Why `value` is refused, or null when it is good. */
  check(value: string): string | null;
}

/** A bad option or value; bench/run.ts answers it with the usage and exit status 2. */
export class SuiteUsageError extends Error {}

/** Flags every suite accepts (bench/run.ts handles --profile-dir=DIR too). */
export const COMMON_FLAGS = ['--quick', '--profile'];

/**
 * The arguments as `--name=value` strings and bare flags, every valued option's
 * value checked; throws SuiteUsageError on anything else.
 */
export function normalizeArgs(args: readonly string[], options: Record<string, SuiteOption>): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = a.indexOf('=');
    const name = eq === -1 ? a : a.slice(0, eq);
    const option = options[name];
    if (option === undefined) {
      if (COMMON_FLAGS.includes(a) || (name === '--profile-dir' && eq > 0 && a.length > eq + 1)) {
        out.push(a);
        continue;
      }
      throw new SuiteUsageError(`unknown option ${a}`);
    }
    const value = eq === -1 ? args[++i] : a.slice(eq + 1);
    if (value === undefined) throw new SuiteUsageError(`${name} needs a value`);
    const why = option.check(value);
    if (why !== null) throw new SuiteUsageError(`${name} ${value}: ${why}`);
    out.push(`${name}=${value}`);
  }
  return out;
}

/** The value of `--name=value` in normalized arguments, or undefined. */
export function optionValue(args: readonly string[], name: string): string | undefined {
  const a = args.findLast((x) => x.startsWith(`${name}=`));
  return a?.slice(name.length + 1);
}

/** Options whose values are numbers, checked and read by `read`: one of raftlog's readers (src/cli/args.ts). */
export interface NumberOption<T> {
  option(help: string): SuiteOption;
  /** The value of the option in `args`, or undefined when it is not given. */
  value(args: readonly string[], name: string): T | undefined;
}

function numberOption<T>(read: (v: string) => T | undefined, why: string): NumberOption<T> {
  return {
    option: (help) => ({ help, check: (v) => (read(v) === undefined ? why : null) }),
    value: (args, name) => {
      const v = optionValue(args, name);
      if (v === undefined) return undefined;
      const n = read(v);
      if (n === undefined) throw new SuiteUsageError(`${name} ${v}: ${why}`);
      return n;
    },
  };
}

export const positiveInteger = numberOption((v) => wholeNumber(v, 1), 'must be a positive integer');
export const positiveNumber = numberOption(positiveDecimal, 'must be a positive number (like 3 or 0.5)');
export const positiveIntegers = numberOption((v) => {
  const list = v.split(',').map((x) => wholeNumber(x, 1));
  return list.includes(undefined) ? undefined : (list as number[]);
}, 'must be positive integers separated by commas, as 1,16,256');
