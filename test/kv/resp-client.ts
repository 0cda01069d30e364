import net from 'node:net';

export type RespValue = string | number | bigint | null | Error | RespValue[];

/** The reply to a call whose connection closed first: the command's outcome is unknown. */
export const CONNECTION_CLOSED = 'connection closed before the reply';

/** A minimal RESP2 client for tests: sends commands, reads typed replies in order. */
export class RespClient {
  private buf = Buffer.alloc(0);
  private waiters: Array<(v: RespValue) => void> = [];
  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      for (;;) {
        const r = parseReply(this.buf, 0);
        if (r === null) break;
        this.buf = this.buf.subarray(r.next);
        this.waiters.shift()?.(r.value);
      }
    });
    // A reply can no longer come: say so, as a real client does, rather than leave the call waiting.
    socket.on('close', () => {
      for (const w of this.waiters.splice(0)) w(new Error(CONNECTION_CLOSED));
    });
  }

  /** `from`: the local address to connect from (127.0.0.2, say, to be another client host). */
  static connect(port: number, host = '127.0.0.1', from?: string): Promise<RespClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host, localAddress: from }, () => resolve(new RespClient(s)));
      s.once('error', reject);
    });
  }

  /** Sends raw bytes (for malformed-input tests). */
  raw(bytes: string | Buffer): void {
    this.socket.write(bytes);
  }

  next(): Promise<RespValue> {
    if (this.socket.destroyed) return Promise.resolve(new Error(CONNECTION_CLOSED));
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  call(...args: Array<string | Buffer>): Promise<RespValue> {
    const parts = [`*${args.length}\r\n`, ...args.flatMap((a) => [`$${Buffer.byteLength(a)}\r\n`, a, '\r\n'])];
    this.socket.write(Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p))));
    return this.next();
  }

  closed(): Promise<void> {
    return new Promise((resolve) => (this.socket.destroyed ? resolve() : this.socket.once('close', () => resolve())));
  }

  close(): void {
    this.socket.destroy();
  }
}

function parseReply(b: Buffer, pos: number): { value: RespValue; next: number } | null {
  const nl = b.indexOf('\r\n', pos);
  if (nl === -1) return null;
  const line = b.toString('utf8', pos + 1, nl);
  switch (String.fromCharCode(b[pos]!)) {
    case '+':
      return { value: line, next: nl + 2 };
    case '-':
      return { value: new Error(line), next: nl + 2 };
    case ':': {
      // A 64-bit integer past 2^53 as a bigint, not rounded to the nearest double.
      const n = Number(line);
      return { value: Number.isSafeInteger(n) ? n : BigInt(line), next: nl + 2 };
    }
    case '$': {
      const len = Number(line);
      if (len < 0) return { value: null, next: nl + 2 };
      if (b.length < nl + 2 + len + 2) return null;
      return { value: b.toString('utf8', nl + 2, nl + 2 + len), next: nl + 2 + len + 2 };
    }
    case '*': {
      const n = Number(line);
      const out: RespValue[] = [];
      let p = nl + 2;
      for (let i = 0; i < n; i++) {
        const r = parseReply(b, p);
        if (r === null) return null;
        out.push(r.value);
        p = r.next;
      }
      return { value: out, next: p };
    }
    default:
      throw new Error(`bad reply byte ${b[pos]}`);
  }
}
