// What a process holds that outlives the work that took it: live async resources (timers,
// immediates, sockets, unref'd ones included) and open file descriptors; and the warnings
// Node gives when something was not let go (a file handle closed only when collected, more
// listeners on an emitter than it should ever need). Churn tests take a census after a few cycles and again after many: whatever
// grows with the cycles is held by something that never lets go.
import { createHook } from 'node:async_hooks';
import { readdirSync } from 'node:fs';

/**
 * Async resource types not counted: promises come and go by the thousand, and the requests of
 * synchronous crypto calls and file handles are destroyed only when collected, whenever that
 * is (a file handle left open shows in the count of descriptors).
 */
const IGNORED = new Set(['PROMISE', 'RANDOMBYTESREQUEST', 'FILEHANDLE']);

/**
 * A one-shot timer of at most this long is a deadline winding down, not something held: the
 * grace a refused connection has to read its refusal before it is destroyed is a second, so a
 * census taken while nodes are being removed finds one for each refusal of the last second,
 * however many cycles ran. A census waits for those set before it to fire; a longer or repeating
 * timer is counted at once.
 */
const WINDING_DOWN_MS = 1_000;

export class Census {
  private readonly live = new Map<number, Live>();
  /** The id each resource made since start() has, to ask about one (counts()). */
  private readonly ids = new WeakMap<object, number>();
  private count = 0;
  /** Resources made since start(), by type, destroyed or not. */
  private readonly made = new Map<string, number>();
  private readonly hook = createHook({
    init: (id, type, _trigger, resource) => {
      if (IGNORED.has(type)) return;
      const t = resource as { _idleTimeout?: number; _repeat?: number | null };
      const windingDown = type === 'Timeout' && t._repeat == null && (t._idleTimeout ?? Infinity) <= WINDING_DOWN_MS;
      this.live.set(id, {
        type,
        seq: ++this.count,
        windingDown,
        resource: type === 'Timeout' || type === 'Immediate' ? new WeakRef(resource as Ended) : undefined,
      });
      this.made.set(type, (this.made.get(type) ?? 0) + 1);
      if (typeof resource === 'object' && resource !== null) this.ids.set(resource, id);
    },
    destroy: (id) => {
      this.live.delete(id);
    },
  });

  /** The process warnings since start(), as `name: message`. */
  readonly warnings: string[] = [];
  private readonly onWarning = (w: Error): void => {
    this.warnings.push(`${w.name}: ${w.message}`);
  };

  start(): this {
    this.hook.enable();
    process.on('warning', this.onWarning);
    return this;
  }

  stop(): void {
    this.hook.disable();
    process.off('warning', this.onWarning);
    this.warnings.length = 0;
    this.live.clear();
    this.made.clear();
  }

  /** How many resources of `type` were made since start(): TCPCONNECTWRAP counts dials. */
  inits(type: string): number {
    return this.made.get(type) ?? 0;
  }

  /**
   * Runs `cycle(i)` for i from 1 to `cycles`, and `settle()` (by default a few quiet turns)
   * and windDown() after the `warmUp`th and after the last: returns what grew between those two points (see
   * grown()). A test expects {} of it.
   */
  async growth(o: { cycles: number; warmUp: number; cycle(i: number): Promise<unknown>; settle?(): Promise<void> }): Promise<Record<string, [number, number]>> {
    const settle = o.settle ?? (() => quiesce());
    for (let i = 1; i <= o.warmUp; i++) await o.cycle(i);
    await settle();
    await this.windDown();
    const before = this.take();
    for (let i = o.warmUp + 1; i <= o.cycles; i++) await o.cycle(i);
    await settle();
    await this.windDown();
    return grown(before, this.take());
  }

  /**
   * Waits, a little longer than WINDING_DOWN_MS at most (a loaded machine fires timers late),
   * for the short one-shot timers already set to fire or be cleared. One still there after that
   * is counted.
   */
  async windDown(): Promise<void> {
    const mark = this.count;
    const until = Date.now() + 2 * WINDING_DOWN_MS;
    const pending = (): boolean => this.held().some((r) => r.windingDown && r.seq <= mark);
    while (pending() && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  }

  /**
   * The live resources that are still held. Node reports a timer or immediate destroyed only on a
   * later turn of the event loop, after it fired or was cleared: one re-armed at every firing (a
   * log's tick, a connection's idle deadline) would otherwise count twice for a while, so a
   * census taken just after a batch of timers fired would find some of them twice.
   */
  private held(): Live[] {
    return [...this.live.values()].filter(isHeld);
  }

  /**
   * Whether take() counts `resource` (a timer, an immediate) now. A test asks about its own
   * resources: the process makes others at any time (the test runner's, a watcher re-armed).
   */
  counts(resource: object): boolean {
    const id = this.ids.get(resource);
    const r = id === undefined ? undefined : this.live.get(id);
    return r !== undefined && isHeld(r);
  }

  /** Live resources by type, and open file descriptors. */
  take(): Record<string, number> {
    const out: Record<string, number> = { fds: openFds() };
    for (const { type } of this.held()) out[type] = (out[type] ?? 0) + 1;
    return out;
  }
}

function isHeld(r: Live): boolean {
  if (r.resource === undefined) return true;
  const ended = r.resource.deref();
  return ended !== undefined && ended._destroyed !== true;
}

interface Live {
  type: string;
  /** Its place in the order resources were made. */
  seq: number;
  /** A one-shot timer of at most WINDING_DOWN_MS. */
  windingDown: boolean;
  /** A timer or immediate, whose _destroyed Node sets as it fires (once) or is cleared. */
  resource: WeakRef<Ended> | undefined;
}

interface Ended {
  _destroyed?: boolean;
}

export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** The counts of `after` that exceed those of `before` by more than `slack`. */
export function grown(before: Record<string, number>, after: Record<string, number>, slack = 2): Record<string, [number, number]> {
  const out: Record<string, [number, number]> = {};
  for (const [k, v] of Object.entries(after)) if (v > (before[k] ?? 0) + slack) out[k] = [before[k] ?? 0, v];
  return out;
}

/** A few turns of the event loop and a short sleep: closes, unlinks and callbacks under way land. */
export async function quiesce(ms = 50): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  await new Promise((r) => setTimeout(r, ms));
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
}
