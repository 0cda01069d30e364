// CONFIG, as far as a client needs it: redis-benchmark and client libraries ask for a few
// parameters at start. Nothing here changes; the matching is Redis's glob, without a regular
// expression built from what a client sent.
import { arity, cString, CommandError } from './command-error.js';
import { RespSimple, type Reply } from './resp.js';

/**
 * The parameters CONFIG GET shows: redis-benchmark asks save and appendonly at start, and warns
 * without them. Every write is in the log, replayed at start, before it is answered: an
 * append-only file, and no RDB snapshots. Whether a write is on disk when answered is the log's
 * sync: 'always' fsyncs first (appendfsync always), 'none' leaves it to the kernel (appendfsync
 * no), and an acknowledged write can be lost with the machine.
 */
export const configParameters = (sync: 'always' | 'none'): ReadonlyArray<[string, string]> => [
  ['save', ''],
  ['appendonly', 'yes'],
  ['appendfsync', sync === 'always' ? 'always' : 'no'],
];
const CONFIG_HELP: Reply = [
  'CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
  'GET <pattern>',
  '    Return parameters matching the glob-like <pattern> and their values.',
  'HELP',
  '    Prints this help.',
].map((line) => new RespSimple(line));

/**
 * Whether `name` matches a glob as Redis matches CONFIG GET's, without case: * any bytes, ? one,
 * \\ the next byte itself. The two-pointer walk that returns to the last star takes at most
 * name x pattern steps, and a pattern comes from the client: no regular expression built from it.
 */
function globMatches(pattern: string, name: string): boolean {
  // null: a star (a run of them is one); true: a question mark; a string: that byte.
  const tokens: Array<string | null | true> = [];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (tokens.at(-1) !== null) tokens.push(null);
    } else tokens.push(c === '?' ? true : (c === '\\' && i + 1 < pattern.length ? pattern[++i]! : c).toLowerCase());
  }
  const n = name.toLowerCase();
  let t = 0;
  let i = 0;
  let star = -1;
  let resume = 0;
  while (i < n.length) {
    const tok = t < tokens.length ? tokens[t] : undefined;
    if (tok === null) {
      star = t++;
      resume = i;
    } else if (tok === true || tok === n[i]) {
      t++;
      i++;
    } else if (star !== -1) {
      t = star + 1;
      i = ++resume;
    } else return false;
  }
  while (t < tokens.length && tokens[t] === null) t++;
  return t === tokens.length;
}

/** CONFIG GET and HELP, in Redis 7's words; the rest are not there to change. */
export function config(rest: Buffer[], parameters: ReadonlyArray<[string, string]>): Reply {
  if (rest.length === 0) throw arity('config');
  const sub = rest[0]!.toString('utf8').toUpperCase();
  if (sub === 'HELP') {
    if (rest.length !== 1) throw arity('config|help');
    return CONFIG_HELP;
  }
  if (sub !== 'GET') throw new CommandError('KV_UNKNOWN_COMMAND', `ERR unknown subcommand '${cString(rest[0]!, 128)}'. Try CONFIG HELP.`);
  if (rest.length < 2) throw arity('config|get');
  const patterns = rest.slice(1).map((p) => p.toString('latin1'));
  return parameters.filter(([name]) => patterns.some((p) => globMatches(p, name))).flat();
}
