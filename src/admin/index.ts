// The admin layer: what an operator reads and drives over HTTP, above the log.
export {
  ADMIN_REFUSAL_CODES,
  adminHandler,
  isSendableToken,
  readableStatus,
  type AdminHandler,
  type AdminHandlerOptions,
  type AdminRefusalCode,
  type AdminStatus,
} from './handler.js';
export { serveAdmin, isLoopback, type AdminServer, type AdminServerOptions } from './server.js';
export { logRegistry, type MetricsSource, type RespMetrics, type RespMetricsSource } from './prometheus.js';
export { takeBackup, type Backup } from './backup.js';
