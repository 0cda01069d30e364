// The knobs of one node, with defaults for the limits.
import type { Storage } from './types.js';
import type { ReadOnlyOption } from './read-only.js';
import { InvalidConfigError } from './errors.js';

export interface Config {
  /** This node's id (a positive integer). */
  id: number;
  /** Ticks without hearing from a leader before campaigning; the timeout is randomized in [electionTick, 2*electionTick). */
  electionTick: number;
  /** Ticks between a leader's heartbeats; must be below electionTick. */
  heartbeatTick: number;
  storage: Storage;
  /** The last index the state machine had applied before a restart. */
  applied?: number;
  /** Upper bound in bytes of the entries in one MsgApp (at least one entry is always sent). Default 1 MiB. */
  maxSizePerMsg?: number;
  /** Upper bound in bytes of Ready.committedEntries. Default 16 MiB. */
  maxCommittedSizePerReady?: number;
  /**
   * A leader refuses proposals that would take its uncommitted entries past this many bytes, each entry counted as
   * its payload plus ENTRY_OVERHEAD (an empty one too); one proposal always fits when nothing is uncommitted.
   * 0 = unbounded. Default 256 MiB.
   */
  maxUncommittedEntriesSize?: number;
  /** Replicate-state window in messages per follower. Default 256. */
  maxInflightMsgs?: number;
  /** Replicate-state window in bytes per follower. 0 = unbounded. Default 64 MiB. */
  maxInflightBytes?: number;
  /** A leader steps down when it has not heard from a quorum for an election timeout. Default false. */
  checkQuorum?: boolean;
  /** Campaign only after a pre-vote round shows a majority would grant the vote. Default false. */
  preVote?: boolean;
  /**
   * How ReadIndex is confirmed. 'safe': a heartbeat round per read batch. 'lease': at once while a quorum
   * answered heartbeats within the last electionTick - 1 ticks (else a heartbeat round); requires checkQuorum
   * and assumes every node ticks at the same rate. Default 'safe'.
   */
  readOnlyOption?: ReadOnlyOption;
  /** Followers drop proposals instead of forwarding them to the leader. Default false. */
  disableProposalForwarding?: boolean;
  /** Seeded generator in [0, 1): the only source of randomness (election timeouts). */
  random: () => number;
}

export type ResolvedConfig = Required<Config>;

export function resolveConfig(c: Config): ResolvedConfig {
  if (typeof c !== 'object' || c === null) throw new InvalidConfigError('config must be an object');
  const r: ResolvedConfig = {
    id: c.id,
    electionTick: c.electionTick,
    heartbeatTick: c.heartbeatTick,
    storage: c.storage,
    applied: c.applied ?? 0,
    maxSizePerMsg: c.maxSizePerMsg ?? 1024 * 1024,
    maxCommittedSizePerReady: c.maxCommittedSizePerReady ?? 16 * 1024 * 1024,
    maxUncommittedEntriesSize: c.maxUncommittedEntriesSize ?? 256 * 1024 * 1024,
    maxInflightMsgs: c.maxInflightMsgs ?? 256,
    maxInflightBytes: c.maxInflightBytes ?? 64 * 1024 * 1024,
    checkQuorum: c.checkQuorum ?? false,
    preVote: c.preVote ?? false,
    readOnlyOption: c.readOnlyOption ?? 'safe',
    disableProposalForwarding: c.disableProposalForwarding ?? false,
    random: c.random,
  };
  const posInt = (name: keyof ResolvedConfig, min: number): void => {
    const v = r[name];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new InvalidConfigError(`${name} must be an integer >= ${min}, got ${String(v)}`);
  };
  posInt('id', 1);
  posInt('heartbeatTick', 1);
  posInt('electionTick', 1);
  posInt('applied', 0);
  posInt('maxSizePerMsg', 1);
  posInt('maxCommittedSizePerReady', 1);
  posInt('maxUncommittedEntriesSize', 0);
  posInt('maxInflightMsgs', 1);
  posInt('maxInflightBytes', 0);
  if (r.electionTick <= r.heartbeatTick) throw new InvalidConfigError('electionTick must be greater than heartbeatTick');
  if (typeof r.random !== 'function') throw new InvalidConfigError('random must be a function returning numbers in [0, 1)');
  if (r.storage === undefined || r.storage === null || typeof r.storage.initialState !== 'function') throw new InvalidConfigError('storage is required');
  if (r.readOnlyOption !== 'safe' && r.readOnlyOption !== 'lease') throw new InvalidConfigError(`readOnlyOption must be 'safe' or 'lease'`);
  if (r.readOnlyOption === 'lease' && !r.checkQuorum) throw new InvalidConfigError(`readOnlyOption 'lease' requires checkQuorum`);
  return r;
}
