// The public face of raftlog. Each layer adds its exports here.
export * from './raft/types.js';
export * from './raft/index.js';
export * from './wal/index.js';
export * from './transport/index.js';
export * from './storage/index.js';
export * from './log/index.js';
export * from './kv/index.js';
