// Classic Raft bugs, planted from the test side to prove the simulators catch
// them. Each plant patches a prototype of the core (or tells the simulator's own
// driver to misbehave) for the duration of one run and returns the undo; the
// product code in src/ carries no flag for any of them.
import { MessageType, type Message, type Snapshot } from '../../src/raft/types.js';
import { Raft } from '../../src/raft/raft.js';
import { RaftLog } from '../../src/raft/log.js';

/** Bugs planted in the core (src/raft): both simulators run them. */
export const CORE_MUTATIONS = [
  'figure-8',
  'prevote-no-log-check',
  'vote-no-uptodate-check',
  'snapshot-install-drops-suffix',
  'transfer-before-catch-up',
] as const;
/** Bugs in the core simulator's own driver (it plays the part of the code that embeds the core). */
export const CORE_DRIVER_MUTATIONS = ['ack-before-persist', 'lying-disk', 'no-snapshot-for-new-member'] as const;

export type CoreMutation = (typeof CORE_MUTATIONS)[number];
export type SimMutation = CoreMutation | (typeof CORE_DRIVER_MUTATIONS)[number];
export const SIM_MUTATIONS: readonly SimMutation[] = [...CORE_MUTATIONS, ...CORE_DRIVER_MUTATIONS];

export function isCoreMutation(m: string | undefined): m is CoreMutation {
  return (CORE_MUTATIONS as readonly string[]).includes(m ?? '');
}

/** The parts of the core's private shape the plants reach into. */
export interface RaftInternals {
  id: number;
  term: number;
  state: number;
  leadTransferee: number;
  raftLog: RaftLog;
  trk: { progress: Map<number, { match: number }>; setConf(cs: Snapshot['meta']['conf'], next: number): void };
  isLearner: boolean;
  step(m: Message): void;
  stepLeader(m: Message): void;
  restore(s: Snapshot): boolean;
  sendTimeoutNow(to: number): void;
  becomeFollower(term: number, lead: number): void;
}

const raftProto = Raft.prototype as unknown as RaftInternals;
const logProto = RaftLog.prototype as unknown as {
  maybeCommit(maxIndex: number, term: number): boolean;
  committed: number;
  commitTo(i: number): void;
  isUpToDate(i: number, t: number): boolean;
};

/** Replaces `proto[key]` until the returned undo runs. */
export function patch<T extends object, K extends keyof T>(proto: T, key: K, make: (original: T[K]) => T[K]): () => void {
  const original = proto[key];
  proto[key] = make(original);
  return () => {
    proto[key] = original;
  };
}

/** Runs `fn` with the vote's log check answering yes, when the message is of type `type`. */
function skipLogCheckFor(type: MessageType): () => void {
  return patch(
    raftProto,
    'step',
    (original) =>
      function (this: RaftInternals, m: Message): void {
        if (m.type !== type) return original.call(this, m);
        const log = this.raftLog as unknown as { isUpToDate(i: number, t: number): boolean };
        log.isUpToDate = () => true; // an own property, shadowing the prototype's for this call only
        try {
          original.call(this, m);
        } finally {
          delete (log as { isUpToDate?: unknown }).isUpToDate;
        }
      },
  );
}

/** Plants a core bug; returns the undo. */
export function plantCoreMutation(m: CoreMutation): () => void {
  switch (m) {
    case 'figure-8':
      // Commit whatever a quorum holds, whatever its term (Raft paper §5.4.2, Figure 8).
      return patch(
        logProto,
        'maybeCommit',
        () =>
          function (this: typeof logProto, maxIndex: number): boolean {
            if (maxIndex <= this.committed) return false;
            this.commitTo(maxIndex);
            return true;
          },
      );
    case 'prevote-no-log-check':
      return skipLogCheckFor(MessageType.MsgPreVote);
    case 'vote-no-uptodate-check':
      return skipLogCheckFor(MessageType.MsgVote);
    case 'snapshot-install-drops-suffix':
      // Install every newer snapshot, even one whose last entry the log already holds: the suffix after it,
      // which this follower may have acknowledged, is discarded.
      return patch(
        raftProto,
        'restore',
        () =>
          function (this: RaftInternals, s: Snapshot): boolean {
            if (s.meta.index <= this.raftLog.committed) return false;
            if (this.state !== 0) {
              this.becomeFollower(this.term + 1, 0);
              return false;
            }
            const cs = s.meta.conf;
            if (!cs.voters.includes(this.id) && !cs.learners.includes(this.id)) return false;
            this.raftLog.restore(s);
            this.trk.setConf(cs, this.raftLog.lastIndex() + 1);
            this.isLearner = cs.learners.includes(this.id);
            return true;
          },
      );
    case 'transfer-before-catch-up':
      // Hand leadership over at once, not once the transferee's log matches ours.
      return patch(
        raftProto,
        'stepLeader',
        (original) =>
          function (this: RaftInternals, msg: Message): void {
            original.call(this, msg);
            if (msg.type === MessageType.MsgTransferLeader && this.leadTransferee === msg.from && this.leadTransferee !== this.id) {
              this.sendTimeoutNow(msg.from);
            }
          },
      );
  }
}
