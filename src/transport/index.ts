export type { Transport, TransportHandlers, TransportLogger } from './transport.js';
export { TcpTransport } from './tcp-transport.js';
export type { TcpTransportOptions, TcpTransportStats, TlsOptions, OutboundStats } from './tcp-transport.js';
export { MemoryNetwork, MemoryTransport } from './memory-transport.js';
export type { LinkFaults, MemoryNetworkOptions, MemoryNetworkStats } from './memory-transport.js';
export {
  TransportError,
  FrameTooLargeError,
  MalformedFrameError,
  ClusterMismatchError,
  WrongNodeError,
  HandshakeTimeoutError,
  PeerRefusedError,
  BadAddressError,
  BadOptionError,
  TransportClosedError,
  ListenFailedError,
  AuthFailedError,
  InsecureTransportError,
  IdleTimeoutError,
  TooManyConnectionsError,
  SnapshotTooLargeError,
  SnapshotRejectedError,
  ConnectionReplacedError,
  PeerReplacedError,
} from './errors.js';
export type { PeerInstances } from './peer-instances.js';
export { inMemorySnapshots, type IncomingSnapshot, type OutgoingSnapshot, type SnapshotStreams } from './snapshot-streams.js';
export type { Secret } from './auth.js';
export type { BackoffOptions } from './backoff.js';
export { TRANSPORT_ERROR_CODES, type TransportErrorCode } from './errors.js';
