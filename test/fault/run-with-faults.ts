// Runs a TypeScript script in a node child with the faultfs library preloaded:
// chosen libc calls on files under `root` fail, and every mutating call and
// every fsync under `root` is logged. The library is compiled on first use.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const source = join(repo, 'test', 'fault', 'faultfs.c');
const library = join(repo, 'build', 'faultfs', 'faultfs.so');

export type FaultOpName = 'open' | 'write' | 'fsync' | 'fdatasync' | 'sync' | 'fallocate' | 'rename' | 'unlink' | 'mkdir' | 'direct' | 'dwrite' | 'read';

export interface FaultRule {
  op: FaultOpName;
  /** fnmatch pattern on the full path ('*' matches '/' too). */
  glob: string;
  /** Matching calls let through before failing (default 0). */
  after?: number;
  /** Matching calls failed after that (default 1; 0 means every later one). */
  times?: number;
  /**
   * LIE: the sync reports success without syncing (a lying disk; logged as op 'lie'). SLOW: the call succeeds 2 ms late.
   * KILL: the process is killed (SIGKILL) instead of making the call, which is not logged.
   * SHRINK (op 'read' only): the file is truncated to 0 bytes as it is read (after the mapping, for mmap).
   */
  errno: 'EIO' | 'ENOSPC' | 'EMFILE' | 'ENFILE' | 'EDQUOT' | 'EROFS' | 'EINVAL' | 'LIE' | 'SLOW' | 'KILL' | 'SHRINK';
}

/** One logged call. off/len are set for writes and fallocate, -1 otherwise. */
export interface FaultOp {
  n: number;
  op: string;
  path: string;
  to?: string;
  fd: number;
  off: number;
  len: number;
  ret: number;
  /** errno name, '' on success. */
  err: string;
  /** The error was injected. */
  fault: boolean;
  /** Where the written bytes are in the data file (with `data`), -1 for other calls. */
  doff: number;
}

export interface FaultRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ops: FaultOp[];
}

/** The compiled library (rebuilt when the source is newer). Safe to call from parallel test files. */
export function faultfsLibrary(): string {
  if (existsSync(library) && statSync(library).mtimeMs >= statSync(source).mtimeMs) return library;
  mkdirSync(dirname(library), { recursive: true });
  const tmp = `${library}.${process.pid}.tmp`;
  execFileSync('cc', ['-shared', '-fPIC', '-O2', '-Wall', '-o', tmp, source, '-ldl'], { stdio: 'pipe' });
  renameSync(tmp, library);
  return library;
}

export async function runWithFaults(
  script: string,
  args: string[],
  options: {
    root: string;
    rules?: FaultRule[];
    log: string;
    data?: string;
    timeoutMs?: number;
    /** Called with everything the child has printed on stdout so far, each time that grows. */
    onStdout?: (stdout: string) => void;
  },
): Promise<FaultRun> {
  const rules = (options.rules ?? []).map((r) => `${r.op}:${r.glob}:${r.after ?? 0}:${r.times ?? 1}:${r.errno}`).join(';');
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      LD_PRELOAD: faultfsLibrary(),
      FAULTFS_ROOT: options.root,
      FAULTFS_LOG: options.log,
      FAULTFS_RULES: rules,
      ...(options.data !== undefined ? { FAULTFS_DATA: options.data } : {}),
    },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    options.onStdout?.(stdout);
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  // 'close', not 'exit': what the child printed last may still be in the pipe when it exits.
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  const ops = existsSync(options.log)
    ? readFileSync(options.log, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as FaultOp)
    : [];
  return { code, signal, stdout, stderr, ops };
}
