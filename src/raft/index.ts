// The consensus core's public face (the package's raftlog/raft subpath).
export * from './types.js';
export { RawNode } from './raw-node.js';
export type { Config } from './config.js';
export { readContextKey, MAX_PENDING_READS, MAX_PENDING_READ_BYTES, type ReadOnlyOption } from './read-only.js';
export { MemoryStorage } from './storage.js';
export { encodeConfChange, decodeConfChange, encodeConfChangeV2, decodeConfChangeEntry, MAX_CHANGES } from './confchange.js';
export { applyConfChangeV2, leaveJoint, isJoint } from './changer.js';
export { entrySize, ENTRY_OVERHEAD } from './size.js';
export { validateMessage } from './validate.js';
export {
  RaftError,
  type RaftErrorCode,
  ProposalDroppedError,
  type ProposalDropReason,
  ReadIndexDroppedError,
  type ReadIndexDropReason,
  CompactedError,
  UnavailableError,
  SnapshotTemporarilyUnavailableError,
  EntriesPendingError,
  SnapOutOfDateError,
  InvalidMessageError,
  StepLocalMsgError,
  StepPeerNotFoundError,
  SnapshotRefusedError,
  InvalidConfigError,
  InvalidConfChangeError,
  LeaderTransferError,
  NoLeaderError,
  ReadyProtocolError,
  CorruptStateError,
  LogLostError,
} from './errors.js';
