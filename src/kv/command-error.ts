// How a command is refused: the RESP error lines clients and people match on are Redis's,
// so they are made in one place, for the commands, CONFIG and the check before AUTH alike.
import { CodedError } from '../errors.js';
import { binaryError, type Reply } from './resp.js';

/** A command the server refuses; the message is the RESP error line the client gets, a binary string (see cString). */
type CommandErrorCode = 'KV_WRONG_ARITY' | 'KV_NO_SUCH_DB' | 'KV_UNKNOWN_COMMAND';

export class CommandError extends CodedError<CommandErrorCode> {}

export const arity = (name: string, more = ''): CommandError =>
  new CommandError('KV_WRONG_ARITY', `ERR wrong number of arguments for '${name}' command${more}`);

/**
 * At most `max` bytes of `b`, up to its first NUL: what Redis's printf of a C string shows. A
 * binary string, a character per byte, so that the reply carries the bytes as they came.
 */
export function cString(b: Buffer, max: number): string {
  const nul = b.indexOf(0);
  return b.toString('latin1', 0, Math.min(max, nul === -1 ? b.length : nul));
}

/**
 * Redis 7's words, which clients and people match on: the name and the first arguments, 128
 * bytes of them, each quoted and followed by a space.
 */
export function unknownCommand(args: Buffer[]): CommandError {
  let shown = '';
  for (let i = 1; i < args.length && shown.length < 128; i++) shown += `'${cString(args[i]!, 128 - shown.length)}' `;
  return new CommandError('KV_UNKNOWN_COMMAND', `ERR unknown command '${cString(args[0]!, 128)}', with args beginning with: ${shown}`);
}

/** A failed command's reply: its own message, or the library error's code and message. */
export function errorReply(err: unknown): Reply {
  if (err instanceof CommandError) return binaryError(err.message);
  const e = err as { code?: string; message?: string };
  return new Error(`ERR ${e.code ?? 'INTERNAL'} ${e.message ?? String(err)}`);
}
