// The simulated network's fault model: what happens to one message between two
// nodes. It only decides (drop, copies, latency); the simulator schedules.
import type { Prng } from './prng.js';

export interface LinkFaults {
  /** Probability that a message is lost. */
  drop: number;
  /** Probability that a message is delivered twice. */
  duplicate: number;
  /** Probability that a message is held back much longer than usual (which also reorders it). */
  delay: number;
}

export const reliable: LinkFaults = { drop: 0, duplicate: 0, delay: 0 };

export class Network {
  faults: LinkFaults = reliable;
  /** Partition group of each node; nodes in different groups cannot talk. Empty when healed. */
  private readonly group = new Map<number, number>();
  /** Links cut in one direction only ("from>to"): a node that hears but is not heard, or the reverse. */
  private readonly cut = new Set<string>();

  constructor(private readonly rng: Prng) {}

  get partitioned(): boolean {
    return this.group.size > 0 || this.cut.size > 0;
  }

  /** Cut the link from `from` to `to` only. */
  cutOneWay(from: number, to: number): void {
    this.cut.add(`${from}>${to}`);
  }

  /** Cut the cluster into the given groups; nodes not listed are each on their own. */
  partition(groups: number[][]): void {
    this.group.clear();
    groups.forEach((g, i) => g.forEach((id) => this.group.set(id, i)));
  }

  heal(): void {
    this.group.clear();
    this.cut.clear();
  }

  /** Whether a message from a can reach b. */
  connected(a: number, b: number): boolean {
    if (a === b) return true;
    if (this.cut.size > 0 && this.cut.has(`${a}>${b}`)) return false;
    if (this.group.size === 0) return true;
    const ga = this.group.get(a);
    const gb = this.group.get(b);
    return ga !== undefined && ga === gb;
  }

  /** Latencies at which copies of one message arrive: none when dropped, two when duplicated. */
  route(from: number, to: number): number[] {
    if (!this.connected(from, to)) return [];
    if (this.rng.chance(this.faults.drop)) return [];
    const copies = this.rng.chance(this.faults.duplicate) ? 2 : 1;
    const out: number[] = [];
    for (let i = 0; i < copies; i++) {
      out.push(this.rng.chance(this.faults.delay) ? this.rng.range(10, 300) : this.rng.range(1, 6));
    }
    return out;
  }

  describe(): string {
    if (!this.partitioned) return 'healed';
    const groups = new Map<number, number[]>();
    for (const [id, g] of this.group) groups.set(g, [...(groups.get(g) ?? []), id]);
    return [...[...groups.values()].map((g) => `{${g.sort().join(',')}}`), ...[...this.cut].map((c) => `cut ${c}`)].join(' ');
  }
}
