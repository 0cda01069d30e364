// The CLI's logger: one line per event on stderr, `LEVEL message key=value ...`.
// The library logs through whatever logger it is given; the console is the CLI's.
import type { LogMethod, Logger } from '../logger.js';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LEVELS)[number];

function field(v: unknown): string {
  if (v instanceof Error) return JSON.stringify((v as Error & { code?: string }).code ?? v.message);
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

export function consoleLogger(level: LogLevel = 'info', bindings: Record<string, unknown> = {}): Logger {
  const min = LEVELS.indexOf(level);
  const at = (l: LogLevel): LogMethod =>
    LEVELS.indexOf(l) < min
      ? () => undefined
      : (fields, message) => {
          const all = { ...bindings, ...fields };
          const tail = Object.entries(all)
            .filter(([k]) => k !== 'err')
            .map(([k, v]) => ` ${k}=${field(v)}`)
            .join('');
          process.stderr.write(`${new Date().toISOString()} ${l.toUpperCase()} ${message}${tail}\n`);
        };
  return {
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (b) => consoleLogger(level, { ...bindings, ...b }),
  };
}
