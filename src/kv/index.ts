// The example application: a key-value store on a ReplicatedLog, served over RESP2.
export { KvSnapshotCorruptError, KvSnapshotVersionError } from './kv-snapshot-format.js';
export { KvStateMachine, encodeCommand, type KvCommand, type KvResult } from './kv-state-machine.js';
export { DEFAULT_RESP_LIMITS, RespParser, RespProtocolError, RespSimple, encode, type Reply, type RespErrorCode, type RespLimits } from './resp.js';
export {
  RESP_REFUSAL_CODES,
  isLoopbackAddress,
  serveResp,
  type KvLog,
  type RespRefusalCode,
  type RespServer,
  type RespServerOptions,
  type RespServerStats,
} from './server.js';
