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
 * The pattern is read as the walk goes, not first turned into tokens: the walk ends once the name
 * is used up, so of a pattern of megabytes it reads a few dozen bytes (and a run of stars at once),
 * where tokens for all of it held the event loop about 2 s per 4 MB command.
 */
function globMatches(pattern: string, name: string): boolean {
  const n = name.toLowerCase();
  let p = 0;
  let i = 0;
  // Where the pattern goes on after the last star passed, and the name's byte it was last tried at.
  let star = -1;
  let resume = 0;
  while (i < n.length) {
    const c = pattern[p];
    if (c === '*') {
      star = p = afterStars(pattern, p);
      resume = i;
      continue;
    }
    if (c !== undefined) {
      const escaped = c === '\\' && p + 1 < pattern.length;
      if ((c === '?' && !escaped) || (escaped ? pattern[p + 1]! : c).toLowerCase() === n[i]) {
        p += escaped ? 2 : 1;
        i++;
        continue;
      }
    }
    if (star === -1) return false;
    p = star;
    i = ++resume;
  }
  return afterStars(pattern, p) === pattern.length;
}

const NOT_STAR = /[^*]/g;

/** Where the run of stars from `p` ends (`p` itself if none starts there): found natively, as a run stands for one star. */
function afterStars(pattern: string, p: number): number {
  NOT_STAR.lastIndex = p;
  return NOT_STAR.exec(pattern)?.index ?? pattern.length;
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
  // Redis 7 reads an argument without *, ? or [ as a name, not a glob, and answers it under the
  // client's spelling: a client library that asked for APPENDONLY looks the answer up by that key.
  const asked = new Map<string, string>();
  for (const p of patterns) {
    const isName = !/[*?[]/.test(p);
    for (const [name] of parameters) {
      if (asked.has(name)) continue;
      if (isName ? p.length === name.length && p.toLowerCase() === name : globMatches(p, name)) asked.set(name, isName ? p : name);
    }
  }
  return parameters.filter(([name]) => asked.has(name)).flatMap(([name, value]) => [asked.get(name)!, value]);
}
