// Length-prefixed frames: a 4-byte big-endian payload length, then the payload.
// The decoder is incremental (TCP delivers arbitrary slices) and checks the
// length before buffering, so a hostile length never makes us allocate.
import { FrameTooLargeError } from './errors.js';

export const FRAME_HEADER_BYTES = 4;
/** The largest payload the length prefix can announce. */
export const MAX_FRAME_LENGTH = 0xffff_ffff;
const EMPTY = Buffer.alloc(0);

/** A part at least this long is written from where it is; shorter ones are gathered into one buffer. */
const GATHER_BELOW = 16 * 1024;

/**
 * Frames whose payloads come in parts, as buffers for one vectored write: the
 * headers and short parts copied together, long parts as they are, in order.
 */
export function frameChunks(payloads: ReadonlyArray<readonly Uint8Array[]>): Uint8Array[] {
  const out: Uint8Array[] = [];
  // What the next gathered buffer holds: parts, and the numbers that go in as frame headers.
  let short: Array<Uint8Array | number> = [];
  let shortBytes = 0;
  const gather = (): void => {
    if (shortBytes === 0) return;
    const buf = Buffer.allocUnsafe(shortBytes);
    let at = 0;
    for (const b of short) {
      if (typeof b === 'number') {
        buf.writeUInt32BE(b, at);
        at += FRAME_HEADER_BYTES;
      } else {
        buf.set(b, at);
        at += b.length;
      }
    }
    out.push(buf);
    short = [];
    shortBytes = 0;
  };
  for (const parts of payloads) {
    let length = 0;
    for (const part of parts) length += part.length;
    short.push(length);
    shortBytes += FRAME_HEADER_BYTES;
    for (const part of parts) {
      if (part.length < GATHER_BELOW) {
        short.push(part);
        shortBytes += part.length;
      } else {
        gather();
        out.push(part);
      }
    }
  }
  gather();
  return out;
}

/** Payloads as one buffer of frames, for a socket write of their own. */
export function encodeFrames(payloads: readonly Uint8Array[]): Buffer {
  const chunks = frameChunks(payloads.map((p) => [p]));
  // One chunk when every payload was gathered: it is the buffer frameChunks made.
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
}

/** Reads shorter than this are copied together, into buffers this long. */
const COPY_BELOW = 1024;
const SCRATCH_BYTES = 16 * 1024;

export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need = -1; // payload length of the frame being read, -1 while reading the header
  /**
   * Where short reads are copied: each read is a Buffer of its own, some 100 bytes of heap,
   * so a peer sending a byte per segment made a frame cost a hundred times its size.
   * Only appended to: frames handed out may still be views of it.
   */
  private scratch: Buffer | undefined;
  private scratchUsed = 0;

  /** The largest payload accepted; may be changed between frames (e.g. raised after a handshake). */
  constructor(public limit: number) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.buffered += chunk.length;
    if (chunk.length < COPY_BELOW) this.pushShort(chunk);
    else this.chunks.push(chunk);
  }

  private pushShort(chunk: Buffer): void {
    let s = this.scratch;
    if (s === undefined || s.length - this.scratchUsed < chunk.length) {
      s = this.scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES);
      this.scratchUsed = 0;
    }
    const at = this.scratchUsed;
    chunk.copy(s, at);
    this.scratchUsed += chunk.length;
    const last = this.chunks.length - 1;
    const prev = this.chunks[last];
    // The bytes before these, still unread, end where these start: one view holds both.
    if (prev !== undefined && prev.buffer === s.buffer && prev.byteOffset + prev.length === at)
      this.chunks[last] = s.subarray(prev.byteOffset, this.scratchUsed);
    else this.chunks.push(s.subarray(at, this.scratchUsed));
  }

  /**
   * The next complete frame, or undefined until more bytes arrive. The payload
   * may share memory with a pushed chunk, which is fine: sockets hand out a
   * fresh buffer per read (and short reads' copies are never written over). Throws FrameTooLargeError as soon as a header
   * announces an oversized frame, before buffering it.
   */
  next(): Buffer | undefined {
    if (this.need < 0) {
      if (this.buffered < FRAME_HEADER_BYTES) return undefined;
      const len = this.take(FRAME_HEADER_BYTES).readUInt32BE(0);
      if (len > this.limit) throw new FrameTooLargeError(len, this.limit);
      this.need = len;
    }
    if (this.buffered < this.need) return undefined;
    const frame = this.take(this.need);
    this.need = -1;
    return frame;
  }

  /** Up to the first `n` bytes of the payload under way, once its header is read (undefined between frames). */
  head(n: number): Buffer | undefined {
    if (this.need < 0 || this.buffered === 0) return undefined;
    const first = this.chunks[0]!;
    if (first.length >= n || this.chunks.length === 1) return first.subarray(0, n);
    const out: Buffer[] = [];
    for (let i = 0, got = 0; i < this.chunks.length && got < n; i++) {
      out.push(this.chunks[i]!);
      got += this.chunks[i]!.length;
    }
    return Buffer.concat(out).subarray(0, n);
  }

  /** Bytes held for an incomplete frame. */
  get pending(): number {
    return this.buffered;
  }

  private take(n: number): Buffer {
    if (n === 0) return EMPTY;
    this.buffered -= n;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      // The common case: the bytes sit in one chunk, hand out a view.
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    return out;
  }
}
