// The CLI's logger: pino, as JSON lines on stdout (`--log-format json`) or as
// readable lines on stderr (`pretty`, the default). The library is handed it as
// its Logger; the console is the CLI's alone.
import { pino, type Logger as Pino } from 'pino';
import type { Logger } from '../logger.js';
import { UsageError } from './args.js';
import { printable } from '../printable.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = 'json' | 'pretty';

const NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

function value(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  if (typeof v === 'object' && v !== null) {
    const e = v as { code?: unknown; message?: unknown };
    if (typeof e.message === 'string') return JSON.stringify(typeof e.code === 'string' ? `${e.code}: ${e.message}` : e.message);
    return JSON.stringify(v);
  }
  return String(v);
}

/**
 * `time LEVEL message key=value ...`, one line per record. A message may carry what a stranger
 * sent (a peer's refusal, read before it is authenticated): its control characters are written
 * out, so that it can neither forge lines nor send escape sequences to the terminal.
 */
export function prettyLine(line: string): string {
  const r = JSON.parse(line) as Record<string, unknown>;
  const { time, level, msg, pid: _pid, hostname: _host, ...fields } = r;
  const tail = Object.entries(fields)
    .map(([k, v]) => ` ${k}=${printable(value(v))}`)
    .join('');
  return `${String(time)} ${NAMES[level as number] ?? String(level)} ${printable(String(msg ?? ''))}${tail}\n`;
}

export function parseLogOptions(level: string, format: string): { level: LogLevel; format: LogFormat } {
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  if (format !== 'json' && format !== 'pretty') throw new UsageError(`--log-format must be 'json' or 'pretty'`);
  return { level: level as LogLevel, format };
}

export function cliLogger(level: LogLevel, format: LogFormat): Pino & Logger {
  const options = { level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime };
  // Synchronous writes: the last lines before an exit are not lost.
  const stream = format === 'json' ? pino.destination({ fd: 1, sync: true }) : { write: (line: string) => void process.stderr.write(prettyLine(line)) };
  return pino(options, stream) as Pino & Logger;
}
