import { CodedError } from '../errors.js';
import { readSmallFileSync } from '../storage/durable-dir.js';
import { isHostPort } from '../transport/address.js';

/** `--name value` and `--flag` pairs; anything else is an error the command reports with its usage. */
export class UsageError extends CodedError<'USAGE'> {
  constructor(message: string) {
    super('USAGE', message);
  }
}

export function parseArgs(args: string[], known: Record<string, 'string' | 'boolean'>): Map<string, string | true> {
  const out = new Map<string, string | true>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument '${a}'`);
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    const inline = eq < 0 ? undefined : a.slice(eq + 1); // whole: `--data=/a=b` is /a=b
    const kind = known[name];
    if (kind === undefined) throw new UsageError(`unknown option --${name}`);
    if (kind === 'boolean') {
      // Taken as the switch, `--insecure=false` or `--yes=no` would do what it says not to.
      if (inline !== undefined) throw new UsageError(`--${name} takes no value, got '${a}'`);
      out.set(name, true);
      continue;
    }
    const value = inline ?? args[++i];
    // An empty value (`--data=`) named the current directory; a flag after a flag (`--data --join`)
    // became the first one's value, and the second was never given.
    if (value === undefined || value === '' || (inline === undefined && value.startsWith('--')))
      throw new UsageError(`--${name} needs a value${value ? `, got the flag '${value}' (give --${name}=${value} if that is the value)` : ''}`);
    // The last of two would win and the first be ignored without a word.
    if (out.has(name)) throw new UsageError(`--${name} is given twice ('${String(out.get(name))}' and '${value}')`);
    out.set(name, value);
  }
  return out;
}

/**
 * The one reader of whole-number flags and list items (the CLI's, the benchmarks' and the
 * scripts'): decimal digits alone. Number() took more, and read it as some other number: '1e3'
 * as 1000, '0x10' as 16, '1.0' as 1, ' 5' as 5, '' as 0.
 */
export function wholeNumber(text: string, min: number): number | undefined {
  const n = Number(text);
  return /^\d+$/.test(text) && Number.isSafeInteger(n) && n >= min ? n : undefined;
}

const kind = (min: number): string => (min > 0 ? 'positive' : 'non-negative');

/** A whole-number flag of at least `min` (0 or 1); `fallback` when it is not given. */
export function intArg(opts: Map<string, string | true>, name: string, fallback?: number, min = 0): number {
  const v = opts.get(name);
  if (v === undefined) {
    if (fallback === undefined) throw new UsageError(`--${name} is required`);
    return fallback;
  }
  const n = typeof v === 'string' ? wholeNumber(v, min) : undefined;
  if (n === undefined) throw new UsageError(`--${name} must be a ${kind(min)} integer, got '${String(v)}'`);
  return n;
}

/** A flag that is a list of positive whole numbers separated by commas ('1,16,256'). */
export function intListArg(opts: Map<string, string | true>, name: string, fallback: string): number[] {
  const v = strArg(opts, name, fallback);
  const list = v.split(',').map((x) => wholeNumber(x, 1));
  if (list.some((n) => n === undefined)) throw new UsageError(`--${name} must be positive integers separated by commas, got '${v}'`);
  return list as number[];
}

/** The reader of positive decimals ('3', '0.5'): digits and at most one point, no sign, exponent, list or unit. */
export function positiveDecimal(text: string): number | undefined {
  const n = Number(text);
  return /^(\d+(\.\d*)?|\.\d+)$/.test(text) && n > 0 && Number.isFinite(n) ? n : undefined;
}

/** A positive decimal flag (see positiveDecimal). */
export function decimalArg(opts: Map<string, string | true>, name: string, fallback: number): number {
  const v = opts.get(name);
  if (v === undefined) return fallback;
  const n = typeof v === 'string' ? positiveDecimal(v) : undefined;
  if (n === undefined) throw new UsageError(`--${name} must be a positive number (like 3 or 0.5), got '${String(v)}'`);
  return n;
}

export function strArg(opts: Map<string, string | true>, name: string, fallback?: string): string {
  const v = opts.get(name);
  if (typeof v === 'string') return v;
  if (fallback === undefined) throw new UsageError(`--${name} is required`);
  return fallback;
}

/**
 * A HOST:PORT flag, checked before the command creates anything: found bad later, it
 * failed a node after its data directory was made, or was written into the membership.
 */
export function addressArg(opts: Map<string, string | true>, name: string): string {
  const v = strArg(opts, name);
  if (!isHostPort(v)) throw new UsageError(`--${name}: '${v}' is not HOST:PORT (a port up to 65535)`);
  return v;
}

/** '1=127.0.0.1:7001,2=127.0.0.1:7002' -> { 1: '127.0.0.1:7001', ... } */
export function parsePeers(s: string): Record<number, string> {
  const peers: Record<number, string> = {};
  for (const part of s.split(',').filter((p) => p !== '')) {
    const m = /^([1-9]\d*)=(.+:\d+)$/.exec(part);
    if (m === null || wholeNumber(m[1]!, 1) === undefined || !isHostPort(m[2]!))
      throw new UsageError(`bad peer '${part}' (want ID=HOST:PORT, a port up to 65535)`);
    peers[Number(m[1])] = m[2]!;
  }
  return peers;
}

/** Like parseArgs, for commands that also take positional arguments (`member add 4 HOST:PORT`). */
export function parseCommand(args: string[], known: Record<string, 'string' | 'boolean'>): { opts: Map<string, string | true>; positionals: string[] } {
  const flags: string[] = [];
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--')) {
      positionals.push(a);
      continue;
    }
    flags.push(a);
    const name = a.slice(2).split('=', 1)[0]!;
    if (known[name] === 'string' && !a.includes('=') && i + 1 < args.length) flags.push(args[++i]!);
  }
  return { opts: parseArgs(flags, known), positionals };
}

/** A positive node id from a positional argument. */
export function nodeIdArg(v: string | undefined, what = 'ID'): number {
  if (v === undefined) throw new UsageError(`${what} is required`);
  const n = Number(v);
  if (!/^[1-9]\d*$/.test(v) || !Number.isSafeInteger(n)) throw new UsageError(`${what} must be a positive integer, got '${v}'`);
  return n;
}

/** The most a secret, certificate or key file given to a flag may hold: a CA bundle fits many times over. */
export const MAX_FLAG_FILE_BYTES = 1024 * 1024;

/**
 * The bytes of the file a flag names, refused as a usage error naming the flag if it is not a
 * regular file or holds more than MAX_FLAG_FILE_BYTES. Read whole, a FIFO held the process (the
 * read is synchronous: signals and SIGHUP too) until a writer came, and /dev/zero or a huge
 * file was read into memory until it ran out. Read as the storage layer reads its small files,
 * one byte past the bound at most; the flag's errors are the command line's.
 */
export function fileArg(opts: Map<string, string | true>, flag: string): Buffer {
  const path = strArg(opts, flag);
  let buf: Buffer;
  try {
    buf = readSmallFileSync(path, MAX_FLAG_FILE_BYTES, () => new UsageError(`--${flag}: ${path} is not a regular file`));
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`--${flag}: ${(err as Error).message}`);
  }
  if (buf.length > MAX_FLAG_FILE_BYTES)
    throw new UsageError(`--${flag}: ${path} holds more than ${MAX_FLAG_FILE_BYTES} bytes: not a secret, key or certificate file`);
  return buf;
}

/**
 * The secrets a file holds, one a line (a token, a password, peer secrets: kept out of `ps`).
 * Every secret file is read one way: a line ends at LF or CRLF, and the rest of it is the
 * secret's bytes exactly. An empty line, or one that begins or ends with whitespace (a space,
 * a tab, a lone CR, a byte-order mark), is refused rather than trimmed or kept: trimmed, a
 * password that ends in a space would silently be another; kept, an editor's stray space would
 * be part of a secret nobody typed, and a bearer token cannot carry it at all (HTTP trims header
 * values), so every request would get 401.
 */
function secretLines(opts: Map<string, string | true>, flag: string): string[] {
  const text = fileArg(opts, flag).toString('utf8');
  const lines = text.split(/\r?\n/);
  if (lines.length > 1 && lines.at(-1) === '') lines.pop(); // what follows the last line's end is no line
  return lines;
}

function checkSecret(flag: string, what: string, secret: string, line: number): string {
  if (secret === '') throw new UsageError(`--${flag}: line ${line} (${what}) is empty`);
  if (/^\s|\s$/u.test(secret))
    throw new UsageError(`--${flag}: line ${line} (${what}) begins or ends with whitespace (a space, a tab, a CR): remove it, a secret is taken as written`);
  return secret;
}

/** The first line of the file a flag names (a token or a password; see secretLines); undefined without the flag. */
export function firstLineOf(opts: Map<string, string | true>, flag: string, what: string): string | undefined {
  if (!opts.has(flag)) return undefined;
  return checkSecret(flag, what, secretLines(opts, flag)[0]!, 1);
}

/** Every line of the file a flag names, each a secret (see secretLines); undefined without the flag. */
export function linesOf(opts: Map<string, string | true>, flag: string, what: string): string[] | undefined {
  if (!opts.has(flag)) return undefined;
  return secretLines(opts, flag).map((l, i) => checkSecret(flag, what, l, i + 1));
}
