// RESP2, the Redis protocol: an incremental command parser (arrays of bulk
// strings, and the inline form a human types into telnet) and reply encoders.

export class RespProtocolError extends Error {
  readonly code = 'RESP_PROTOCOL';
  constructor(message: string) {
    super(`Protocol error: ${message}`);
    this.name = 'RespProtocolError';
  }
}

export interface RespLimits {
  maxBulkBytes: number;
  maxArgs: number;
  maxInlineBytes: number;
}

const DEFAULT_LIMITS: RespLimits = { maxBulkBytes: 64 * 1024 * 1024, maxArgs: 1024 * 1024, maxInlineBytes: 64 * 1024 };
const CR = 13;
const LF = 10;

/** Feeds bytes in as they arrive; takes out whole commands, each an array of arguments. */
export class RespParser {
  private buf: Buffer = Buffer.alloc(0);
  private readonly limits: RespLimits;

  constructor(limits: Partial<RespLimits> = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  /** Every whole command now buffered; throws RespProtocolError on malformed input. */
  push(chunk: Buffer): Buffer[][] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Buffer[][] = [];
    let pos = 0;
    for (;;) {
      const r = this.buf[pos] === 0x2a /* '*' */ ? this.array(pos) : this.inline(pos);
      if (r === null) break;
      pos = r.next;
      if (r.args.length > 0) out.push(r.args);
    }
    this.buf = pos === this.buf.length ? Buffer.alloc(0) : this.buf.subarray(pos);
    return out;
  }

  /** The end of the line that starts at `pos` (index of CR), or -1 if it has not arrived. */
  private lineEnd(pos: number, max: number): number {
    const i = this.buf.indexOf(CR, pos);
    if (i === -1 || i + 1 >= this.buf.length) {
      if (this.buf.length - pos > max) throw new RespProtocolError('line too long');
      return -1;
    }
    if (this.buf[i + 1] !== LF) throw new RespProtocolError('expected \\r\\n');
    return i;
  }

  private int(start: number, end: number, what: string): number {
    const s = this.buf.toString('latin1', start, end);
    if (!/^-?\d{1,15}$/.test(s)) throw new RespProtocolError(`invalid ${what} '${s.slice(0, 20)}'`);
    return Number(s);
  }

  private array(pos: number): { args: Buffer[]; next: number } | null {
    let end = this.lineEnd(pos, 32);
    if (end === -1) return null;
    const n = this.int(pos + 1, end, 'multibulk length');
    if (n > this.limits.maxArgs) throw new RespProtocolError('invalid multibulk length');
    let p = end + 2;
    const args: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      if (p >= this.buf.length) return null;
      if (this.buf[p] !== 0x24 /* '$' */) throw new RespProtocolError(`expected '$', got '${String.fromCharCode(this.buf[p]!)}'`);
      end = this.lineEnd(p, 32);
      if (end === -1) return null;
      const len = this.int(p + 1, end, 'bulk length');
      if (len < 0 || len > this.limits.maxBulkBytes) throw new RespProtocolError('invalid bulk length');
      const start = end + 2;
      if (start + len + 2 > this.buf.length) return null;
      if (this.buf[start + len] !== CR || this.buf[start + len + 1] !== LF) throw new RespProtocolError('bulk string not followed by \\r\\n');
      args.push(Buffer.from(this.buf.subarray(start, start + len)));
      p = start + len + 2;
    }
    return { args, next: p };
  }

  private inline(pos: number): { args: Buffer[]; next: number } | null {
    if (pos >= this.buf.length) return null;
    const nl = this.buf.indexOf(LF, pos);
    if (nl === -1) {
      if (this.buf.length - pos > this.limits.maxInlineBytes) throw new RespProtocolError('too big inline request');
      return null;
    }
    const line = this.buf.toString('latin1', pos, nl).replace(/\r$/, '');
    const args = line.split(/\s+/).filter((a) => a !== '').map((a) => Buffer.from(a, 'latin1'));
    return { args, next: nl + 1 };
  }
}

// ---- replies ----

export type Reply = string | number | bigint | Buffer | null | Error | RespSimple | Reply[];

/** A status reply (+OK), as opposed to a bulk string. */
export class RespSimple {
  constructor(readonly text: string) {}
}

export const OK = new RespSimple('OK');

export function encode(r: Reply): Buffer {
  const parts: Buffer[] = [];
  write(r, parts);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

function write(r: Reply, out: Buffer[]): void {
  if (r === null) out.push(Buffer.from('$-1\r\n'));
  else if (r instanceof RespSimple) out.push(Buffer.from(`+${r.text}\r\n`));
  else if (r instanceof Error) out.push(Buffer.from(`-${r.message.replace(/[\r\n]+/g, ' ')}\r\n`));
  else if (typeof r === 'number' || typeof r === 'bigint') out.push(Buffer.from(`:${r}\r\n`));
  else if (typeof r === 'string' || Buffer.isBuffer(r)) {
    const b = typeof r === 'string' ? Buffer.from(r) : r;
    out.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  } else {
    out.push(Buffer.from(`*${r.length}\r\n`));
    for (const x of r) write(x, out);
  }
}
