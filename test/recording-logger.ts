// A Logger for tests: keeps every line (with the bindings of its child chain) to assert on.
import type { LogMethod, Logger } from '../src/logger.js';

export interface LogLine {
  level: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  message: string;
  fields: Record<string, unknown>;
}

export class RecordingLogger implements Logger {
  constructor(
    readonly lines: LogLine[] = [],
    private readonly bindings: Record<string, unknown> = {},
  ) {}

  private at(level: LogLine['level']): LogMethod {
    return (fields, message) => this.lines.push({ level, message, fields: { ...this.bindings, ...fields } });
  }
  readonly trace = this.at('trace');
  readonly debug = this.at('debug');
  readonly info = this.at('info');
  readonly warn = this.at('warn');
  readonly error = this.at('error');

  child(bindings: Record<string, unknown>): Logger {
    return new RecordingLogger(this.lines, { ...this.bindings, ...bindings });
  }

  /** The messages alone, in order. */
  get messages(): string[] {
    return this.lines.map((l) => l.message);
  }

  has(text: string | RegExp): boolean {
    return this.lines.some((l) => (typeof text === 'string' ? l.message.includes(text) : text.test(l.message)));
  }
}
