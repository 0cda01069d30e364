// Every test file runs with this watch on its worker's event loop. A worker that
// blocks its loop cannot answer vitest's RPC: a block of about a minute (the RPC
// timeout) makes `vitest run` exit 1 although every test passed. So tests yield
// between units of work, and this file proves they do.
//
// Two measures, because wall-clock time alone lies on a loaded machine:
// - wall: the longest gap between two turns of the loop (monitorEventLoopDelay).
//   On a shared 2-core box the scheduler stretches a 300 ms computation to
//   seconds, so this is REPORTED from 2 s on but fails only from 20 s on (a third
//   of the RPC timeout: no sub-second computation stretches that far).
// - CPU: the process's CPU time spent inside the longest gap. Load does not
//   stretch CPU time, so a gap that burned 2 s of CPU is a synchronous chunk of
//   work that would block on any machine: that FAILS at 2 s.
// A synchronous child-process call (spawnSync, execFileSync) blocks without using
// CPU; the wall limit is what catches a long one.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, afterEach } from 'vitest';

const REPORT_WALL_MS = 2_000;
const FAIL_WALL_MS = 20_000;
const FAIL_CPU_MS = 2_000;
const RESOLUTION_MS = 20;

// Captured before any test could replace them.
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;
const realSetImmediate = globalThis.setImmediate;

const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
histogram.enable();

interface Gap {
  wallMs: number;
  cpuMs: number;
}

/** The longest gap seen since the last take(), with the CPU time the process spent in it. */
let worstGap: Gap = { wallMs: 0, cpuMs: 0 };
let lastAt = performance.now();
let lastCpu = process.cpuUsage();
let timer: ReturnType<typeof setTimeout> | undefined;

function watch(): void {
  const now = performance.now();
  const cpu = process.cpuUsage();
  const wallMs = now - lastAt;
  if (wallMs > worstGap.wallMs) worstGap = { wallMs, cpuMs: (cpu.user - lastCpu.user + cpu.system - lastCpu.system) / 1000 };
  lastAt = now;
  lastCpu = cpu;
  timer = realSetTimeout(watch, RESOLUTION_MS);
  // The watch must not keep a worker alive.
  timer.unref();
}
watch();

interface Worst {
  where: string;
  wallMs: number;
  cpuMs: number;
}

let file = 'a test file';
const worst: Worst = { where: '', wallMs: 0, cpuMs: 0 };

/** Two turns: a timer that came due while the loop was blocked has fired by then. */
async function letTimersFire(): Promise<void> {
  for (let i = 0; i < 2; i++) await new Promise<void>((resolve) => realSetImmediate(resolve));
}

/** The worst block since the last take(): the histogram's max, and the CPU of the watch's longest gap. */
function take(where: string): Worst {
  // The histogram's max includes the expected interval; the block is what exceeds it.
  const wallMs = Math.max(histogram.max / 1e6 - RESOLUTION_MS, worstGap.wallMs - RESOLUTION_MS, 0);
  const block = { where, wallMs, cpuMs: worstGap.cpuMs };
  histogram.reset();
  worstGap = { wallMs: 0, cpuMs: 0 };
  if (block.wallMs > worst.wallMs) Object.assign(worst, block);
  return block;
}

function verdict(b: Worst): string | null {
  if (b.cpuMs >= FAIL_CPU_MS || b.wallMs >= FAIL_WALL_MS) {
    return `${b.where} blocked the event loop for ${ms(b.wallMs)} (${ms(b.cpuMs)} of CPU): yield between units of work (await new Promise(setImmediate)) or use an asynchronous child-process call`;
  }
  return null;
}

const ms = (x: number): string => `${Math.round(x)} ms`;

afterEach(async (ctx) => {
  file = ctx.task.file.name;
  await letTimersFire();
  const problem = verdict(take(`"${ctx.task.name}"`));
  if (problem !== null) throw new Error(problem);
});

afterAll(async () => {
  await letTimersFire();
  const problem = verdict(take('the afterAll hooks'));
  histogram.disable();
  if (timer !== undefined) realClearTimeout(timer);
  const flag = worst.wallMs >= REPORT_WALL_MS ? ' OVER 2 s' : '';
  process.stderr.write(
    `[event-loop]${flag} ${file}: worst block ${ms(worst.wallMs)} wall, ${ms(worst.cpuMs)} CPU${worst.where === '' ? '' : ` in ${worst.where}`}\n`,
  );
  if (problem !== null) throw new Error(problem);
});
