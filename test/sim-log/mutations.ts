// Bugs planted in the replicated log's driver (src/log), from the test side, to
// prove the log simulator's checkers catch them; the core's bugs
// (test/sim/mutations.ts) run here too. Each plant patches a prototype for the
// duration of one run and returns the undo.
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { Raft } from '../../src/raft/raft.js';
import { StateType, type Message, type Ready } from '../../src/raft/types.js';
import { CORE_MUTATIONS, isCoreMutation, plantCoreMutation, type CoreMutation } from '../sim/mutations.js';
import type { LogEntry } from '../../src/log/state-machine.js';

export const DRIVER_MUTATIONS = ['entries-gap', 'leader-acks-before-durable', 'no-snapshot-for-new-member', 'lease-reads'] as const;
export type LogMutation = CoreMutation | (typeof DRIVER_MUTATIONS)[number];
export const LOG_MUTATIONS: readonly LogMutation[] = [...CORE_MUTATIONS, ...DRIVER_MUTATIONS];

/** The parts of the driver's private shape the plants reach into. */
interface DriverInternals {
  role: StateType;
  snapshotTaking: { forNewMember: boolean };
  node: { raft: { step(m: Message): void }; inFlight: { rd: Ready; selfMessages: Message[] }[] };
  storage: { firstIndex(): number };
  snapshotFloor: number;
  handleReady(rd: Ready): void;
  applyConfChange(e: unknown): void;
  schedulePump(): void;
  entries(options?: { from?: number }): AsyncGenerator<LogEntry>;
}

const proto = ReplicatedLog.prototype as unknown as DriverInternals;

/** The core's ReadIndex round, which 'lease-reads' skips. */
interface ReadIndexInternals {
  raftLog: { committed: number };
  inLease(): boolean;
  holdForRound(m: Message): boolean;
  respondToReadIndex(m: Message, index: number): void;
}

function patch<K extends keyof DriverInternals>(key: K, make: (original: DriverInternals[K]) => DriverInternals[K]): () => void {
  const original = proto[key];
  proto[key] = make(original);
  return () => {
    proto[key] = original;
  };
}

export function plantLogMutation(m: LogMutation): () => void {
  if (isCoreMutation(m)) return plantCoreMutation(m);
  switch (m) {
    case 'lease-reads': {
      // Barriers answered by the leader lease ('lease' readOnlyOption) rather than a heartbeat round: a lease
      // counted on the leader's own clock, which a stalled process does not see pass.
      const raft = Raft.prototype as unknown as ReadIndexInternals;
      const original = raft.holdForRound;
      raft.holdForRound = function (this: ReadIndexInternals, req: Message): boolean {
        if (!this.inLease()) return original.call(this, req);
        this.respondToReadIndex(req, this.raftLog.committed);
        return false;
      };
      return () => {
        raft.holdForRound = original;
      };
    }
    case 'entries-gap':
      // A reader whose position was compacted away is moved on past the snapshot without being told.
      return patch(
        'entries',
        (original) =>
          async function* (this: DriverInternals, options: { from?: number } = {}): AsyncGenerator<LogEntry> {
            let from = options.from;
            for (;;) {
              try {
                for await (const e of original.call(this, from === undefined ? {} : { from })) {
                  from = e.index + 1;
                  yield e;
                }
                return;
              } catch (err) {
                if ((err as { code?: string }).code !== 'LOG_COMPACTED') throw err;
                from = Math.max(this.storage.firstIndex(), this.snapshotFloor + 1);
              }
            }
          },
      );
    case 'leader-acks-before-durable':
      // The leader counts its own write toward the quorum as soon as it hands it to the disk.
      return patch(
        'handleReady',
        (original) =>
          function (this: DriverInternals, rd: Ready): void {
            original.call(this, rd);
            if (this.role !== StateType.StateLeader || rd.entries.length === 0) return;
            const f = this.node.inFlight.find((x) => x.rd === rd);
            for (const self of f?.selfMessages ?? []) this.node.raft.step(self);
            this.schedulePump();
          },
      );
    case 'no-snapshot-for-new-member':
      // A member added after the latest snapshot gets no fresh one naming it, and refuses the old one.
      return patch(
        'applyConfChange',
        (original) =>
          function (this: DriverInternals, e: unknown): void {
            original.call(this, e);
            this.snapshotTaking.forNewMember = false;
          },
      );
  }
}
