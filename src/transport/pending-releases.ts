// What the transport has asked the owner's storage to let go of and that is not over yet:
// the sources of snapshots sent being closed, the spools of snapshots abandoned being deleted.
// close() waits for them, so that the snapshot directory is left as it will stay; but those
// are the owner's streams, and one that never settles must not keep close() from ending.
import { codeOf } from '../errors.js';
import type { TransportLogger } from './transport.js';

export class PendingReleases {
  /** Each release, settled either way, and what it is (for the log). */
  private readonly pending = new Map<Promise<void>, string>();

  constructor(private readonly logger: Pick<TransportLogger, 'warn'>) {}

  /**
   * `release` is under way; `what` names it in the log ("deleting an abandoned snapshot from
   * peer 5"). A failure is logged as `transport: <what> failed: …`: it never rejects unhandled.
   */
  add(what: string, release: Promise<void>): void {
    const settled = release.then(
      () => undefined,
      (err: unknown) => this.logger.warn({ code: codeOf(err) }, `transport: ${what} failed: ${(err as Error).message}`),
    );
    this.pending.set(settled, what);
    void settled.then(() => this.pending.delete(settled));
  }

  /**
   * Resolves once every release added so far has settled, or after `boundMs`, with a warning
   * that names the ones still under way (they go on: their failures are still logged).
   */
  async settled(boundMs: number): Promise<void> {
    if (this.pending.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), boundMs)));
    const done = await Promise.race([Promise.all(this.pending.keys()).then(() => true), bound]);
    clearTimeout(timer);
    if (done) return;
    const counts = new Map<string, number>();
    for (const what of this.pending.values()) counts.set(what, (counts.get(what) ?? 0) + 1);
    const list = [...counts].map(([what, n]) => (n === 1 ? what : `${what} (x${n})`)).join(', ');
    this.logger.warn({}, `transport: closed without waiting longer for ${list}: not settled after ${boundMs} ms`);
  }
}
