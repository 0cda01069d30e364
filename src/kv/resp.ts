// RESP2, the Redis protocol: an incremental command parser (arrays of bulk
// strings, and the inline form a human types into telnet) and reply encoders.
//
// The parser keeps its state between chunks, so every byte is looked at once:
// a bulk string's bytes go straight into one buffer, and only an unfinished
// header line is kept back (in a growable buffer with a read cursor). Every
// limit is checked before the memory it guards is taken, and a bulk string's
// buffer grows with the bytes that arrive, not with the length its header
// announces: a header costs the sender a few bytes, and the server would hold
// megabytes for each one it believed.
import { CodedError } from '../errors.js';

export type RespErrorCode =
  | 'RESP_PROTOCOL' // malformed bytes
  | 'RESP_TOO_MANY_ARGS'
  | 'RESP_BULK_TOO_LARGE'
  | 'RESP_COMMAND_TOO_LARGE'
  | 'RESP_INLINE_TOO_LONG';

export class RespProtocolError extends CodedError<RespErrorCode> {
  constructor(code: RespErrorCode, message: string) {
    super(code, `Protocol error: ${message}`);
  }
}

export interface RespLimits {
  /** Arguments in one command, the command name included. */
  maxArgs: number;
  /** Bytes in one bulk string. */
  maxBulkBytes: number;
  /**
   * Bytes of one command: its arguments together, plus ARG_OVERHEAD (128) for each, what its
   * Buffer costs the heap (and more than the 16 bytes a record needs to frame it), and
   * COMMAND_OVERHEAD (192) for the command: heapCost() of the whole command.
   */
  maxCommandBytes: number;
  /** Bytes of one inline (telnet) command line. */
  maxInlineBytes: number;
}

export const DEFAULT_RESP_LIMITS: RespLimits = {
  maxArgs: 1024,
  maxBulkBytes: 4 * 1024 * 1024 - 64 * 1024,
  maxCommandBytes: 4 * 1024 * 1024 - 64 * 1024,
  maxInlineBytes: 64 * 1024,
};

/**
 * What an argument counts beyond its length, against maxCommandBytes and in retainedBytes: what
 * it costs the heap, the Buffer that holds it and its slot in its command's array, about 115
 * bytes on 64-bit Node 20 (measured over 200,000 arguments of 1 to 100 bytes), rounded up.
 * Counted at their length, 1000 one-byte arguments were 1000 bytes of a server's budget.
 */
export const ARG_OVERHEAD = 128;
/** What a command counts beyond its arguments, as ARG_OVERHEAD: the array that holds them, about 180 bytes. */
export const COMMAND_OVERHEAD = 192;

/** What a parsed command costs the heap, as the limits and the server's budgets count it. */
export function heapCost(args: Buffer[]): number {
  let n = COMMAND_OVERHEAD;
  for (const a of args) n += a.length + ARG_OVERHEAD;
  return n;
}
/** '*' and '$' header lines: a sign, 15 digits would already be past every limit. */
const MAX_HEADER_LINE = 32;
/** A bulk string's first buffer, unless its bytes already arrived; it grows fourfold from there. */
const BULK_START = 64 * 1024;
const CR = 13;
const LF = 10;

const enum State {
  Start, // at the first byte of a command
  ArgHeader, // expecting `$<len>\r\n`
  BulkBody, // filling `bulk`
  BulkEnd, // expecting the `\r\n` after a bulk string
}

// No bulk string in progress, no kept-back bytes, and every empty argument. Shared: it has no
// bytes to change, and a fresh Buffer.alloc(0) after every argument showed in a server's profile.
const NO_BULK = Buffer.alloc(0);

/** Feeds bytes in as they arrive; takes out whole commands, each an array of arguments. */
export class RespParser {
  /** Bytes copied or moved inside the parser: a linear parser keeps this near the bytes fed. */
  bytesCopied = 0;
  private limits: RespLimits;
  private state = State.Start;
  // The kept-back bytes: pending[pStart, pEnd). Only ever an unfinished line.
  private pending: Buffer = NO_BULK;
  private pStart = 0;
  private pEnd = 0;
  // Bytes at the start of the unfinished line already known to hold no LF.
  private scanned = 0;
  // The command being read.
  private argsLeft = 0;
  private args: Buffer[] = [];
  private cmdBytes = 0;
  private bulk: Buffer = NO_BULK;
  private bulkLength = 0; // announced; bulk.length reaches it as the bytes arrive
  private bulkFilled = 0;
  private endSeen = 0; // bytes of a bulk string's trailing \r\n seen
  private failure: RespProtocolError | null = null;
  private stopped = false;

  constructor(limits: Partial<RespLimits> = {}) {
    const l = { ...DEFAULT_RESP_LIMITS, ...limits };
    if (limits.maxCommandBytes === undefined) l.maxCommandBytes = Math.max(l.maxCommandBytes, l.maxBulkBytes + ARG_OVERHEAD * 3);
    this.limits = l;
  }

  /** New limits, for commands whose header has not been read yet. */
  setLimits(limits: RespLimits): void {
    this.limits = { ...limits };
  }

  /**
   * Bytes this parser holds now: kept-back input, and the command being read as heapCost()
   * counts it, the bulk string being filled one of its arguments.
   */
  get retainedBytes(): number {
    let n = this.pending.length;
    if (this.state !== State.Start) n += COMMAND_OVERHEAD;
    if (this.state === State.BulkBody || this.state === State.BulkEnd) n += this.bulk.length + ARG_OVERHEAD;
    for (const a of this.args) n += a.length + ARG_OVERHEAD;
    return n;
  }

  /** Whether the last push() stopped at its maxCommands with bytes left: push(Buffer.alloc(0)) goes on. */
  get more(): boolean {
    return this.stopped;
  }

  /** The error that ended this stream, if any; after one, push() throws it again. */
  get error(): RespProtocolError | null {
    return this.failure;
  }

  /**
   * Every whole command now buffered. Malformed input throws RespProtocolError,
   * unless whole commands came before it in this chunk: then they are returned,
   * `error` is set, and the next push() throws. With `maxCommands`, stops after that many
   * and keeps the rest; push(Buffer.alloc(0)) goes on from there.
   */
  push(chunk: Buffer, maxCommands = Infinity): Buffer[][] {
    if (this.failure !== null) throw this.failure;
    this.stopped = false;
    const out: Buffer[][] = [];
    try {
      this.feed(chunk, out, maxCommands);
    } catch (err) {
      if (!(err instanceof RespProtocolError)) throw err;
      this.failure = err;
      this.state = State.Start; // holding nothing: retainedBytes is 0
      this.args = [];
      this.bulk = NO_BULK;
      this.pending = NO_BULK;
      this.pStart = this.pEnd = 0;
      if (out.length === 0) throw err;
    }
    return out;
  }

  private feed(chunk: Buffer, out: Buffer[][], maxCommands: number): void {
    let view: Buffer;
    let pos: number;
    if (this.pEnd > this.pStart) {
      this.append(chunk);
      view = this.pending;
      pos = this.pStart;
    } else {
      view = chunk;
      pos = 0;
    }
    const end = view === this.pending ? this.pEnd : view.length;
    while (pos < end) {
      switch (this.state) {
        case State.Start: {
          if (out.length >= maxCommands) {
            this.stopped = true;
            return this.keep(view, pos, end);
          }
          if (view[pos] === 0x2a /* '*' */) {
            const lf = this.line(view, pos, end, MAX_HEADER_LINE, 'RESP_PROTOCOL', 'too big mbulk count string');
            if (lf === -1) return this.keep(view, pos, end);
            const n = this.int(view, pos + 1, this.crBefore(view, pos, lf), 'multibulk length', true);
            pos = lf + 1;
            if (n > this.limits.maxArgs)
              throw new RespProtocolError('RESP_TOO_MANY_ARGS', `invalid multibulk length: more than ${this.limits.maxArgs} arguments`);
            if (n <= 0) break; // an empty command, skipped as Redis does
            this.argsLeft = n;
            this.args = [];
            this.cmdBytes = COMMAND_OVERHEAD;
            this.state = State.ArgHeader;
          } else {
            const lf = this.line(view, pos, end, this.limits.maxInlineBytes, 'RESP_INLINE_TOO_LONG', 'too big inline request');
            if (lf === -1) return this.keep(view, pos, end);
            // Redis finds the line's end as a C string's: past a NUL it never sees one, and the
            // command never runs. Refused at once, rather than left to wait for the line's limit.
            if (view.subarray(pos, lf).includes(0)) throw new RespProtocolError('RESP_PROTOCOL', 'NUL byte in inline request');
            const args = this.inline(view, pos, lf);
            pos = lf + 1;
            if (args.length > 0) out.push(args);
          }
          break;
        }
        case State.ArgHeader: {
          if (view[pos] !== 0x24 /* '$' */) throw new RespProtocolError('RESP_PROTOCOL', `expected '$', got '${printable(view[pos]!)}'`);
          const lf = this.line(view, pos, end, MAX_HEADER_LINE, 'RESP_PROTOCOL', 'too big bulk count string');
          if (lf === -1) return this.keep(view, pos, end);
          const len = this.int(view, pos + 1, this.crBefore(view, pos, lf), 'bulk length', false);
          pos = lf + 1;
          if (len > this.limits.maxBulkBytes)
            throw new RespProtocolError('RESP_BULK_TOO_LARGE', `invalid bulk length: more than ${this.limits.maxBulkBytes} bytes`);
          this.cmdBytes += len + ARG_OVERHEAD;
          if (this.cmdBytes > this.limits.maxCommandBytes)
            throw new RespProtocolError('RESP_COMMAND_TOO_LARGE', `command larger than ${this.limits.maxCommandBytes} bytes`);
          this.bulkLength = len;
          this.bulkFilled = 0;
          if (len === 0) {
            // An empty argument shares one empty Buffer: a Buffer of its own cost 190 bytes of heap.
            this.bulk = NO_BULK;
            this.endSeen = 0;
            this.state = State.BulkEnd;
            break;
          }
          this.bulk = Buffer.allocUnsafe(Math.min(len, Math.max(BULK_START, end - pos)));
          this.state = State.BulkBody;
          break;
        }
        case State.BulkBody: {
          if (this.bulkFilled === this.bulk.length) this.growBulk(end - pos);
          const n = Math.min(this.bulk.length - this.bulkFilled, end - pos);
          view.copy(this.bulk, this.bulkFilled, pos, pos + n);
          this.bytesCopied += n;
          this.bulkFilled += n;
          pos += n;
          if (this.bulkFilled === this.bulkLength) {
            this.endSeen = 0;
            this.state = State.BulkEnd;
          }
          break;
        }
        case State.BulkEnd: {
          if (view[pos] !== (this.endSeen === 0 ? CR : LF)) throw new RespProtocolError('RESP_PROTOCOL', 'bulk string not followed by \\r\\n');
          pos++;
          if (++this.endSeen < 2) break;
          this.args.push(this.bulk);
          this.bulk = NO_BULK;
          if (--this.argsLeft === 0) {
            out.push(this.args);
            this.args = [];
            this.state = State.Start;
          } else this.state = State.ArgHeader;
          break;
        }
      }
    }
    // Everything was consumed. The buffer is not kept: what a server's clients hold between
    // commands counts against its budget of unfinished commands, and an idle one holds none.
    this.pStart = this.pEnd = 0;
    this.scanned = 0;
    this.pending = NO_BULK;
  }

  /** Room for `arriving` more bytes of the bulk string, or four times the room, up to its length: each byte moves at most once more on average. */
  private growBulk(arriving: number): void {
    const next = Buffer.allocUnsafe(Math.min(this.bulkLength, Math.max(4 * this.bulk.length, this.bulkFilled + arriving)));
    this.bulk.copy(next, 0, 0, this.bulkFilled);
    this.bytesCopied += this.bulkFilled;
    this.bulk = next;
  }

  /** Index of the LF ending the line at `start`, or -1 when it has not arrived (within `max`). */
  private line(view: Buffer, start: number, end: number, max: number, code: RespErrorCode, tooLong: string): number {
    const from = start + this.scanned;
    const limit = Math.min(end, start + max + 2);
    let lf = from < limit ? view.indexOf(LF, from) : -1;
    if (lf >= limit) lf = -1;
    if (lf !== -1) {
      this.scanned = 0;
      return lf;
    }
    if (end - start > max + 1) throw new RespProtocolError(code, tooLong);
    this.scanned = end - start;
    return -1;
  }

  /** A header line must end in exactly \r\n (a stray CR inside is caught by int()); returns the index of that CR. */
  private crBefore(view: Buffer, start: number, lf: number): number {
    if (lf === start || view[lf - 1] !== CR) throw new RespProtocolError('RESP_PROTOCOL', 'expected \\r\\n');
    return lf - 1;
  }

  private int(view: Buffer, start: number, end: number, what: string, signed: boolean): number {
    let i = start;
    const neg = signed && view[i] === 0x2d; /* '-' */
    if (neg) i++;
    if (i === end || end - i > 15) throw new RespProtocolError('RESP_PROTOCOL', `invalid ${what}`);
    // As Redis's string2ll reads a length: no leading zero, no '-0'. A stream that spells one so
    // is refused by Redis, so it is not one a Redis client sends.
    if (view[i] === 0x30 && (neg || end - i > 1)) throw new RespProtocolError('RESP_PROTOCOL', `invalid ${what}`);
    let n = 0;
    for (; i < end; i++) {
      const d = view[i]! - 0x30;
      if (d === CR - 0x30) throw new RespProtocolError('RESP_PROTOCOL', 'expected \\r\\n');
      if (d < 0 || d > 9) throw new RespProtocolError('RESP_PROTOCOL', `invalid ${what}`);
      n = n * 10 + d;
    }
    return neg ? -n : n;
  }

  /**
   * The arguments of an inline line, read as Redis reads them (sdssplitargs): words split at
   * blanks, "double quotes" with C escapes (\n, \xHH, ...), 'single quotes' with \' only, a
   * quote opened inside a word continuing it; a closing quote not followed by a blank, or a
   * quote not closed, is a protocol error, as a value half quoted is not what was meant.
   */
  private inline(view: Buffer, start: number, lf: number): Buffer[] {
    let stop = lf;
    if (stop > start && view[stop - 1] === CR) stop--;
    const at = (i: number): number => (i < stop ? view[i]! : -1);
    // An argument is never longer than the bytes it is read from.
    const out = Buffer.allocUnsafe(stop - start);
    const args: Buffer[] = [];
    let i = start;
    for (;;) {
      while (i < stop && isSpace(view[i]!)) i++;
      if (i === stop) break;
      if (args.length === this.limits.maxArgs) throw new RespProtocolError('RESP_TOO_MANY_ARGS', `more than ${this.limits.maxArgs} arguments`);
      let o = 0;
      let quote = 0; // the open quote's byte, or 0
      for (;;) {
        const c = at(i);
        if (quote === 0) {
          if (c === -1 || c === 0x20 || c === LF || c === CR || c === 0x09) break;
          if (c === DQUOTE || c === SQUOTE) quote = c;
          else out[o++] = c;
          i++;
        } else if (c === -1) {
          throw UNBALANCED();
        } else if (c === quote) {
          const next = at(i + 1);
          if (next !== -1 && !isSpace(next)) throw UNBALANCED();
          i++;
          break;
        } else if (c === BACKSLASH && quote === DQUOTE && at(i + 1) === 0x78 /* x */ && isHex(at(i + 2)) && isHex(at(i + 3))) {
          out[o++] = parseInt(String.fromCharCode(at(i + 2), at(i + 3)), 16);
          i += 4;
        } else if (c === BACKSLASH && quote === DQUOTE && at(i + 1) !== -1) {
          const e = at(i + 1);
          out[o++] = ESCAPES[e] ?? e;
          i += 2;
        } else if (c === BACKSLASH && quote === SQUOTE && at(i + 1) === SQUOTE) {
          out[o++] = SQUOTE;
          i += 2;
        } else {
          out[o++] = c;
          i++;
        }
      }
      args.push(Buffer.from(out.subarray(0, o)));
      this.bytesCopied += o;
    }
    return args;
  }

  /** Keeps the unfinished line view[pos, end) for the next chunk. */
  private keep(view: Buffer, pos: number, end: number): void {
    if (view === this.pending) {
      this.pStart = pos;
      // The whole chunk was appended to finish a line; kept, it would count as an unfinished
      // command's bytes. Moved only when 4x larger than the line, so each byte moves O(1) times.
      if (this.pending.length > Math.max(256, 4 * (end - pos))) {
        const next = Buffer.allocUnsafe(Math.max(256, 2 * (end - pos)));
        this.pending.copy(next, 0, pos, end);
        this.bytesCopied += end - pos;
        this.pending = next;
        this.pStart = 0;
        this.pEnd = end - pos;
      }
      return;
    }
    this.pStart = this.pEnd = 0;
    this.append(view.subarray(pos, end));
  }

  /** Appends to the kept-back bytes; the buffer doubles, so each byte moves O(1) times on average. */
  private append(b: Buffer): void {
    const live = this.pEnd - this.pStart;
    if (this.pEnd + b.length > this.pending.length) {
      if (live + b.length <= this.pending.length >>> 1) {
        this.pending.copy(this.pending, 0, this.pStart, this.pEnd);
      } else {
        const next = Buffer.allocUnsafe(Math.max(256, 2 * (live + b.length)));
        this.pending.copy(next, 0, this.pStart, this.pEnd);
        this.pending = next;
      }
      this.bytesCopied += live;
      this.pStart = 0;
      this.pEnd = live;
    }
    b.copy(this.pending, this.pEnd);
    this.pEnd += b.length;
    this.bytesCopied += b.length;
  }
}

const DQUOTE = 0x22;
const SQUOTE = 0x27;
const BACKSLASH = 0x5c;
/** The escapes of a double-quoted inline argument besides \xHH; any other escaped byte stands for itself. */
const ESCAPES: Record<number, number> = { 0x6e: LF, 0x72: CR, 0x74: 0x09, 0x62: 0x08, 0x61: 0x07 };
const UNBALANCED = (): RespProtocolError => new RespProtocolError('RESP_PROTOCOL', 'unbalanced quotes in request');
const isHex = (c: number): boolean => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
const isSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === CR || c === LF || c === 0x0b || c === 0x0c;
const printable = (c: number): string => (c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`);

// ---- replies ----

export type Reply = string | number | bigint | Buffer | null | Error | RespSimple | Reply[];

/** A status reply (+OK), as opposed to a bulk string; encoded once, since a server sends the same few over and over. */
export class RespSimple {
  readonly bytes: Buffer;
  constructor(readonly text: string) {
    if (/[\r\n]/.test(text)) throw new RangeError('a status reply is one line');
    this.bytes = Buffer.from(`+${text}\r\n`);
  }
}

export const OK = new RespSimple('OK');

/** Error replies made by binaryError(), told apart without a subclass of Error. */
const BINARY_ERRORS = new WeakSet<Error>();

/**
 * An error reply whose message is a binary string (a character per byte, as latin1 decodes):
 * it echoes bytes a client sent, and goes back as they came, as Redis's do. Decoded as UTF-8,
 * bytes that are not UTF-8 went back as U+FFFD.
 */
export function binaryError(message: string): Error {
  const e = new Error(message);
  BINARY_ERRORS.add(e);
  return e;
}

/** The reply's bytes; they may be shared with other replies, so they must not be changed. */
export function encode(r: Reply): Buffer {
  if (r instanceof RespSimple) return r.bytes;
  const parts: Buffer[] = [];
  write(r, parts);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** The length of encode(r), without encoding it. */
export function encodedLength(r: Reply): number {
  if (r === null) return 5;
  if (r instanceof RespSimple) return r.bytes.length;
  if (r instanceof Error) return (BINARY_ERRORS.has(r) ? r.message.length : Buffer.byteLength(r.message)) + 3;
  if (typeof r === 'number' || typeof r === 'bigint') return String(r).length + 3;
  if (typeof r === 'string' || Buffer.isBuffer(r)) {
    const n = typeof r === 'string' ? Buffer.byteLength(r) : r.length;
    return String(n).length + n + 5;
  }
  let n = String(r.length).length + 3;
  for (const x of r) n += encodedLength(x);
  return n;
}

function write(r: Reply, out: Buffer[]): void {
  if (r === null) out.push(Buffer.from('$-1\r\n'));
  else if (r instanceof RespSimple) out.push(r.bytes);
  // Each CR or LF a space, as Redis makes them: an error is one line, and its length is kept.
  else if (r instanceof Error) out.push(Buffer.from(`-${r.message.replace(/[\r\n]/g, ' ')}\r\n`, BINARY_ERRORS.has(r) ? 'latin1' : 'utf8'));
  else if (typeof r === 'number' || typeof r === 'bigint') out.push(Buffer.from(`:${r}\r\n`));
  else if (typeof r === 'string' || Buffer.isBuffer(r)) {
    const b = typeof r === 'string' ? Buffer.from(r) : r;
    out.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  } else {
    out.push(Buffer.from(`*${r.length}\r\n`));
    for (const x of r) write(x, out);
  }
}
