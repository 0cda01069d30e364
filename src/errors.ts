// The one base of every error raftlog throws on purpose: a stable `code` a
// caller branches on (never the message text, which may change). Each layer
// narrows `code` to its own literal union. A leaf module: every layer may
// import it, the pure core included, so it imports nothing, Node included.

/**
 * What a coded error may carry besides its message. Declared here rather than taken from the
 * ES2022 lib's ErrorOptions, which a consumer compiling for an earlier target does not have.
 */
export interface CodedErrorOptions {
  cause?: unknown;
}

export class CodedError<C extends string = string> extends Error {
  readonly code: C;
  constructor(code: C, message: string, options?: CodedErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * The code of what was thrown, for a log line's `code` field: a raftlog error's, or a failed
 * system call's (ECONNRESET); INTERNAL for anything without one.
 */
export function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : 'INTERNAL';
}
