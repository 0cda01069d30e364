// Instructions per record, counted by callgrind: a measure of the CPU the log spends
// that timing noise does not blur (timings on a shared machine swing by a fifth from
// one minute to the next; on an otherwise idle one these counts move by a few
// percent, as valgrind runs one thread at a time and load still shifts batch sizes).
// Each case runs an embedded log twice under valgrind, a warm-up and then a short or
// a long measured stretch (instructions-driver.ts); the difference between the two
// runs over the records that differ is the steady-state cost per record, start-up and
// warm-up cancelled.
// It counts user-space instructions of every thread, not the kernel's work (the
// writes and fdatasyncs), so it compares builds on one machine, not machines.
// `npm run bench -- instructions [--quick]`; skipped where valgrind is not installed.
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineAtStart } from '../src/cli/machine.js';
import { median, writeResults } from './suite.js';

const DRIVER = join(dirname(fileURLToPath(import.meta.url)), 'instructions-driver.ts');

interface Case {
  clients: number;
  recordBytes: number;
  warm: number;
  short: number;
  long: number;
}

// A warm-up long enough for the optimizer to have compiled the hot path before either
// stretch starts; otherwise the compiler's own work lands in the difference. Many
// clients, so that the stretches hold enough records for the rare full garbage
// collection to spread thin: with one client, 3,000 commits of difference read
// 66,000 and 109,000 instructions per commit in two rounds.
const CASES: Case[] = [{ clients: 256, recordBytes: 100, warm: 30_000, short: 10_000, long: 60_000 }];

/** The instructions callgrind collected over one run of the driver. */
export function collected(valgrindStderr: string): number {
  const m = /Collected : (\d+)/.exec(valgrindStderr);
  if (m === null) throw new Error(`callgrind reported no count:\n${valgrindStderr.slice(-2000)}`);
  return Number(m[1]);
}

function runOnce(c: Case, measured: number): Promise<number> {
  const args = ['--tool=callgrind', '--callgrind-out-file=/dev/null', '--smc-check=all-non-file'];
  args.push(process.execPath, ...process.execArgv, DRIVER, String(c.warm), String(measured), String(c.clients), String(c.recordBytes));
  return new Promise((resolve, reject) => {
    const proc = spawn('valgrind', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    proc.on('error', reject);
    proc.on('close', (code) => {
      if (code !== 0) reject(new Error(`valgrind exited with ${code}:\n${err.slice(-2000)}`));
      else {
        try {
          resolve(collected(err));
        } catch (e) {
          reject(e as Error);
        }
      }
    });
  });
}

export default async function instructions(args: string[]): Promise<void> {
  if (spawnSync('valgrind', ['--version'], { stdio: 'ignore' }).status !== 0) {
    console.log('valgrind is not installed (Debian package valgrind): the instructions suite is skipped, and its last results are kept.');
    return;
  }
  const quick = args.includes('--quick');
  const rounds = quick ? 1 : 3;
  // One run outside valgrind first: under tsx, the first run of a checkout also fills the
  // transform cache, which would land in whichever of the two counted runs came first
  // (a round read -7,392 instructions per record that way).
  const prime = spawnSync(process.execPath, [...process.execArgv, DRIVER, '0', '1', '1', '100'], { stdio: 'inherit' });
  if (prime.status !== 0) throw new Error(`the driver failed outside valgrind (status ${prime.status})`);
  const machine = machineAtStart();
  console.log(machine.header());
  const rows = [];
  for (const c of CASES) {
    const counts = quick ? { ...c, warm: c.warm / 10, short: c.short / 10, long: c.long / 10 } : c;
    const perRecord: number[] = [];
    for (let r = 1; r <= rounds; r++) {
      process.stdout.write(`embedded, ${c.recordBytes} B x ${c.clients} clients, round ${r}/${rounds} ... `);
      const short = await runOnce(counts, counts.short);
      const long = await runOnce(counts, counts.long);
      const n = (long - short) / (counts.long - counts.short);
      if (n <= 0) throw new Error(`the long run counted no more instructions than the short one (${long} against ${short}): not a measurement`);
      perRecord.push(n);
      console.log(`${Math.round(perRecord[perRecord.length - 1]!).toLocaleString('en-US')} instructions/record`);
    }
    rows.push({
      system: 'embedded (1 node)',
      recordBytes: c.recordBytes,
      clients: c.clients,
      records: counts.long - counts.short,
      rounds: perRecord.map(Math.round),
      instructionsPerRecord: Math.round(median(perRecord)),
    });
  }
  machine.finish();
  console.log(machine.header());
  console.table(
    rows.map((r) => ({ record: `${r.recordBytes} B`, clients: r.clients, 'instructions/record': r.instructionsPerRecord, rounds: r.rounds.join(', ') })),
  );
  writeResults('instructions', { machine: machine.machine, quick, rows });
}
