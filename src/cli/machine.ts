// The machine a figure was measured on, recorded with the figure: the same
// code reads very differently on 2 shared cores under load than on an idle
// workstation. Every suite calls machineAtStart() before measuring and
// finish() after, prints header() above its table and stores the object in
// its JSON.
import { cpus, loadavg } from 'node:os';

export interface Machine {
  cpu: string;
  cores: number;
  node: string;
  platform: string;
  /** os.loadavg() (1, 5, 15 min) when the suite started. */
  loadStart: number[];
  /** os.loadavg() when it finished; null until finish() is called. */
  loadEnd: number[] | null;
}

export interface MachineRecorder {
  readonly machine: Machine;
  /** Records the load at the end; returns the completed record. */
  finish(): Machine;
  /** One line for the top of a table: CPU, cores, Node version, load at start and end. */
  header(): string;
}

const round2 = (xs: number[]): number[] => xs.map((x) => Math.round(x * 100) / 100);

export function machineAtStart(): MachineRecorder {
  const cpu = cpus();
  const start = round2(loadavg());
  const machine: Machine = {
    cpu: cpu[0]?.model.trim() ?? 'unknown',
    cores: cpu.length,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    loadStart: start,
    loadEnd: null,
  };
  return {
    machine,
    finish() {
      machine.loadEnd = round2(loadavg());
      return machine;
    },
    header: () => describeMachine(machine),
  };
}

export function describeMachine(m: Machine): string {
  const load = (l: number[]): string => l.map((x) => x.toFixed(2)).join(' ');
  const end = m.loadEnd === null ? '' : `, at end ${load(m.loadEnd)}`;
  return `${m.cpu}, ${m.cores} cores, Node ${m.node}; load average (1/5/15 min) at start ${load(m.loadStart)}${end}`;
}
