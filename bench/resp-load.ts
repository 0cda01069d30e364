// A closed-loop RESP load generator: C connections, each sending one
// `SET key:<random> <value>` and waiting for its reply before the next, the
// shape of `redis-benchmark -t set -d 100 -r 100000 -c C`. It speaks raw
// sockets with a reply parser of its own (+, -, :, $), so what it measures is
// what any Redis client sees. An error reply, a reply it cannot parse, or a
// lost connection ends the window and fails it, with the counts: a benchmark
// that quietly drops failures would report the speed of failing.
import net from 'node:net';
import { Payloads } from '../src/cli/payloads.js';
import { CodedError } from '../src/errors.js';

export type LoadErrorCode = 'LOAD_ERROR_REPLY' | 'LOAD_CONNECTION_LOST' | 'LOAD_PROTOCOL' | 'LOAD_TIMEOUT';

/** A failed window; `counts` says what was done before it failed. */
export class LoadError extends CodedError<LoadErrorCode> {
  constructor(
    code: LoadErrorCode,
    message: string,
    readonly counts: WindowCounts,
  ) {
    super(code, message);
  }
}

export type Reply = string | number | Buffer | null | ReplyError;

/** An error reply (`-ERR ...`): a value, not a thrown error, so one call can return it. */
export class ReplyError {
  constructor(readonly message: string) {}
}

/** The longest reply line (status, error, integer, bulk header) accepted. */
const MAX_LINE = 64 * 1024;
/** The largest bulk reply accepted (INFO is a few KiB). */
const MAX_BULK = 1024 * 1024;

/** Parses replies from a byte stream, chunk by chunk; throws LOAD_PROTOCOL-worthy messages as Error. */
export class ReplyParser {
  private buf: Buffer = Buffer.alloc(0);

  /** Adds bytes; returns the replies they complete, in order. */
  push(chunk: Buffer): Reply[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Reply[] = [];
    let pos = 0;
    for (;;) {
      const nl = this.buf.indexOf('\r\n', pos);
      if (nl === -1) {
        if (this.buf.length - pos > MAX_LINE) throw new Error(`a reply line longer than ${MAX_LINE} bytes`);
        break;
      }
      if (nl - pos > MAX_LINE) throw new Error(`a reply line longer than ${MAX_LINE} bytes`);
      const type = this.buf[pos];
      const line = this.buf.toString('latin1', pos + 1, nl);
      if (type === 0x2b /* + */) {
        out.push(line);
        pos = nl + 2;
      } else if (type === 0x2d /* - */) {
        out.push(new ReplyError(line));
        pos = nl + 2;
      } else if (type === 0x3a /* : */) {
        if (!/^-?\d{1,18}$/.test(line)) throw new Error(`a bad integer reply ':${line.slice(0, 40)}'`);
        out.push(Number(line));
        pos = nl + 2;
      } else if (type === 0x24 /* $ */) {
        if (line === '-1') {
          out.push(null);
          pos = nl + 2;
          continue;
        }
        if (!/^\d{1,10}$/.test(line) || Number(line) > MAX_BULK) throw new Error(`a bad bulk length '$${line.slice(0, 40)}'`);
        const len = Number(line);
        const end = nl + 2 + len;
        if (this.buf.length < end + 2) break;
        if (this.buf[end] !== 0x0d || this.buf[end + 1] !== 0x0a) throw new Error('a bulk reply not ended by CRLF');
        out.push(Buffer.from(this.buf.subarray(nl + 2, end)));
        pos = end + 2;
      } else {
        throw new Error(`an unexpected reply type byte 0x${(type ?? 0).toString(16)}`);
      }
    }
    this.buf = pos === this.buf.length ? Buffer.alloc(0) : this.buf.subarray(pos);
    return out;
  }
}

/** One command as RESP bytes. */
export function encodeCommand(args: ReadonlyArray<string | Uint8Array>): Buffer {
  const parts: Uint8Array[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** One command on a fresh connection, for setup and checks (INFO, PING, DBSIZE). */
export async function call(host: string, port: number, args: ReadonlyArray<string | Buffer>, timeoutMs = 5000): Promise<Reply> {
  return new Promise<Reply>((resolve, reject) => {
    const parser = new ReplyParser();
    const socket = net.connect(port, host);
    const fail = (err: Error): void => {
      socket.destroy();
      reject(err);
    };
    socket.setTimeout(timeoutMs, () => fail(new Error(`${host}:${port}: no reply to ${String(args[0])} within ${timeoutMs} ms`)));
    socket.once('error', fail);
    socket.once('close', () => reject(new Error(`${host}:${port}: the connection closed before a reply to ${String(args[0])}`)));
    socket.on('data', (chunk: Buffer) => {
      let replies: Reply[];
      try {
        replies = parser.push(chunk);
      } catch (err) {
        fail(new Error(`${host}:${port}: ${(err as Error).message}`));
        return;
      }
      if (replies.length > 0) {
        resolve(replies[0]!);
        socket.destroy();
      }
    });
    socket.write(encodeCommand(args));
  });
}

export interface WindowCounts {
  /** SETs answered +OK. */
  sets: number;
  /** SETs answered with an error reply. */
  errors: number;
  /** The first error reply, or the first failure, in words. */
  firstError: string | null;
}

export interface WindowResult extends WindowCounts {
  seconds: number;
  setsPerSec: number;
  /** Request latencies in ms, sorted ascending; empty unless the window recorded them. */
  latenciesMs: Float64Array;
}

export interface LoadOptions {
  host: string;
  port: number;
  clients: number;
  /** Value size in bytes. Default 100. */
  valueBytes?: number;
  /** Keys are key:<random in 0..keyspace-1>, zero-padded to 12 digits as redis-benchmark's -r. Default 100000. */
  keyspace?: number;
  /** After a window's time is up, how long the outstanding replies may take. Default 30000. */
  drainTimeoutMs?: number;
}

const PAD = '000000000000';

interface Window {
  stop: boolean;
  counts: WindowCounts;
  record: boolean;
  latencies: Float64Array;
  n: number;
  outstanding: number;
  done: (err: LoadError | null) => void;
  /** Arms the wait for the outstanding replies. */
  stopped: () => void;
}

interface Conn {
  socket: net.Socket;
  parser: ReplyParser;
  /** When the outstanding request was sent; -1 when none is. */
  sentAt: number;
}

/** C open connections driving SETs in windows; connections stay open between windows. */
export class RespLoad {
  private readonly conns: Conn[] = [];
  private readonly values: Payloads;
  private readonly keyspace: number;
  private readonly drainTimeoutMs: number;
  private window: Window | null = null;
  private closed = false;

  private constructor(private readonly o: LoadOptions) {
    // Random values, a different one each SET (redis-benchmark sends 'xxx...'): both systems
    // write what they are sent, and a constant compresses on a disk that compresses.
    this.values = new Payloads(o.valueBytes ?? 100);
    this.keyspace = o.keyspace ?? 100_000;
    this.drainTimeoutMs = o.drainTimeoutMs ?? 30_000;
    if (!Number.isSafeInteger(o.clients) || o.clients < 1) throw new RangeError('RespLoad: clients must be a positive integer');
    if (!Number.isSafeInteger(this.keyspace) || this.keyspace < 1 || this.keyspace > 1e12) throw new RangeError('RespLoad: keyspace must be 1..1e12');
  }

  static async connect(o: LoadOptions): Promise<RespLoad> {
    const load = new RespLoad(o);
    try {
      // Connected a few at a time: 256 at once can overflow a small listen backlog.
      for (let i = 0; i < o.clients; i += 32) {
        await Promise.all(Array.from({ length: Math.min(32, o.clients - i) }, () => load.open()));
      }
    } catch (err) {
      load.close();
      throw err;
    }
    return load;
  }

  private open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(this.o.port, this.o.host);
      const conn: Conn = { socket, parser: new ReplyParser(), sentAt: -1 };
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        socket.setNoDelay(true);
        socket.on('error', () => undefined); // 'close' follows and says it
        socket.on('close', () => this.lost(conn, 'the server closed the connection'));
        socket.on('data', (chunk: Buffer) => this.onData(conn, chunk));
        this.conns.push(conn);
        resolve();
      });
    });
  }

  private command(): Buffer {
    const key = String(Math.floor(Math.random() * this.keyspace));
    return encodeCommand(['SET', `key:${PAD.slice(key.length)}${key}`, this.values.next()]);
  }

  private send(conn: Conn): void {
    const w = this.window;
    if (w === null || w.stop || conn.socket.destroyed) return;
    conn.sentAt = performance.now();
    w.outstanding++;
    conn.socket.write(this.command());
  }

  private onData(conn: Conn, chunk: Buffer): void {
    let replies: Reply[];
    try {
      replies = conn.parser.push(chunk);
    } catch (err) {
      this.fail('LOAD_PROTOCOL', `unparseable reply: ${(err as Error).message}`);
      conn.socket.destroy();
      return;
    }
    const w = this.window;
    for (const r of replies) {
      if (w === null || conn.sentAt < 0) {
        this.fail('LOAD_PROTOCOL', 'a reply to no request');
        conn.socket.destroy();
        return;
      }
      const ms = performance.now() - conn.sentAt;
      conn.sentAt = -1;
      w.outstanding--;
      if (r instanceof ReplyError) {
        w.counts.errors++;
        this.fail('LOAD_ERROR_REPLY', `-${r.message}`);
      } else if (r !== 'OK') {
        w.counts.errors++;
        this.fail('LOAD_ERROR_REPLY', `SET answered ${JSON.stringify(r instanceof Buffer ? r.toString('latin1') : r)}, not +OK`);
      } else {
        w.counts.sets++;
        if (w.record) {
          if (w.n === w.latencies.length) {
            const grown = new Float64Array(w.latencies.length * 2);
            grown.set(w.latencies);
            w.latencies = grown;
          }
          w.latencies[w.n++] = ms;
        }
      }
    }
    if (w !== null) {
      this.send(conn);
      this.settleIfDone();
    }
  }

  private failure: LoadError | null = null;

  /** The first failure stops the window; the replies still outstanding are awaited and counted. */
  private fail(code: LoadErrorCode, message: string): void {
    const w = this.window;
    if (w === null) return;
    w.counts.firstError ??= message;
    this.failure ??= new LoadError(code, message, w.counts);
    w.stop = true;
    w.stopped();
  }

  private lost(conn: Conn, why: string): void {
    const i = this.conns.indexOf(conn);
    if (i !== -1) this.conns.splice(i, 1);
    if (this.closed) return;
    const w = this.window;
    if (w === null) return; // between windows: run() refuses to start with a connection missing
    if (conn.sentAt >= 0) {
      conn.sentAt = -1;
      w.outstanding--;
    }
    this.fail('LOAD_CONNECTION_LOST', `connection lost: ${why}`);
    this.settleIfDone();
  }

  private settleIfDone(): void {
    const w = this.window;
    if (w !== null && w.stop && w.outstanding === 0) w.done(this.failure);
  }

  /**
   * Drives every connection for `ms`, then waits for the replies outstanding. With `record`,
   * keeps every request's latency. Rejects with a LoadError on any error reply, unparseable
   * reply or lost connection, after the outstanding replies are in.
   */
  async run(ms: number, record = true): Promise<WindowResult> {
    if (this.window !== null) throw new Error('RespLoad: one window at a time');
    if (this.closed) throw new Error('RespLoad: closed');
    const counts: WindowCounts = { sets: 0, errors: 0, firstError: null };
    if (this.conns.length < this.o.clients) {
      throw new LoadError('LOAD_CONNECTION_LOST', `${this.o.clients - this.conns.length} of ${this.o.clients} connections were lost between windows`, counts);
    }
    this.failure = null;
    const start = performance.now();
    let timer: NodeJS.Timeout | undefined;
    let drainTimer: NodeJS.Timeout | undefined;
    const err = await new Promise<LoadError | null>((done) => {
      const w: Window = {
        stop: false,
        counts,
        record,
        latencies: new Float64Array(1 << 16),
        n: 0,
        outstanding: 0,
        done,
        stopped: () => {
          drainTimer ??= setTimeout(
            () => done(new LoadError('LOAD_TIMEOUT', `${w.outstanding} replies still outstanding ${this.drainTimeoutMs} ms after the window`, counts)),
            this.drainTimeoutMs,
          );
        },
      };
      this.window = w;
      for (const c of this.conns) this.send(c);
      timer = setTimeout(() => {
        w.stop = true;
        w.stopped();
        this.settleIfDone();
      }, ms);
    });
    // Every reply counted arrived by now: the window ends here, not when sending stopped.
    const seconds = (performance.now() - start) / 1000;
    clearTimeout(timer);
    clearTimeout(drainTimer);
    const w = this.window!;
    this.window = null;
    if (err !== null) {
      if (err.code === 'LOAD_TIMEOUT') this.close(); // late replies may still come: these connections are done
      throw new LoadError(
        err.code,
        `${this.o.host}:${this.o.port}: ${err.message} (${counts.sets} SETs answered +OK, ${counts.errors} answered with an error)`,
        counts,
      );
    }
    const latenciesMs = w.latencies.slice(0, w.n).sort();
    return { ...counts, seconds, setsPerSec: counts.sets / seconds, latenciesMs };
  }

  close(): void {
    this.closed = true;
    for (const c of this.conns.splice(0)) c.socket.destroy();
  }
}

/** The q-quantile (0..1) of ascending values, by the nearest-rank rule; 0 for none. */
export function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
