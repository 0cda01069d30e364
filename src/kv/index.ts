// The example application: a key-value store on a ReplicatedLog, served over RESP2.
export { KvStateMachine, encodeCommand, type KvCommand, type KvResult } from './kv-state-machine.js';
export { RespParser, RespProtocolError, encode, type Reply } from './resp.js';
export { serveResp, type KvLog, type RespServer } from './server.js';
