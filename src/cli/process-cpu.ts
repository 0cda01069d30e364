// CPU time of other processes (a benchmark's cluster nodes, a Redis server), from
// /proc: what process.cpuUsage() tells of this one. Linux only, as is the WAL.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticks = 0;

/** Clock ticks per second of /proc's CPU counters (their resolution), asked of getconf once. */
export function clockTicksPerSecond(): number {
  if (ticks === 0) {
    try {
      const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
      ticks = Number.isSafeInteger(n) && n > 0 ? n : 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

/** CPU seconds (user + system, all threads) a process has used, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  return processStat(pid).cpuSeconds;
}

/**
 * A process's CPU seconds so far and its state letter (R running or waiting for a core, S
 * sleeping, D in uninterruptible I/O, ...), from /proc/<pid>/stat.
 */
export function processStat(pid: number): { cpuSeconds: number; state: string } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // state, utime, stime: fields 3, 14 and 15
  return { cpuSeconds: (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond(), state: fields[0]! };
}
