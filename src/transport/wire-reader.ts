// Reads the msgpack a frame is made of, one value at a time, as the field it must be.
// A general decoder builds whatever the bytes describe before anything is checked: a
// frame of empty arrays or maps became one object per byte, some 40 times the frame's
// size on the heap, and nested ones a call per level. Here nothing is built that is not
// a field of a frame, and a count is checked against the bytes left before anything is
// allocated for it.
import { MalformedFrameError } from './errors.js';

/** Every empty binary field: nothing can be written into it, so one serves them all. */
const EMPTY = Buffer.alloc(0);
const TWO_32 = 2 ** 32;

/**
 * The encodings of a number other than an unsigned integer below 2^32: a 64-bit one, a signed one
 * (another encoder's choice for a non-negative value) and the floats encoders write an integer past
 * 32 bits as. Each is taken if its value is a whole non-negative number.
 */
const OTHER_NUMBERS = new Map<number, { bytes: number; read: (v: DataView, at: number) => number }>([
  [0xcf, { bytes: 8, read: (v, at) => v.getUint32(at) * TWO_32 + v.getUint32(at + 4) }],
  [0xd0, { bytes: 1, read: (v, at) => v.getInt8(at) }],
  [0xd1, { bytes: 2, read: (v, at) => v.getInt16(at) }],
  [0xd2, { bytes: 4, read: (v, at) => v.getInt32(at) }],
  [0xd3, { bytes: 8, read: (v, at) => v.getInt32(at) * TWO_32 + v.getUint32(at + 4) }],
  [0xca, { bytes: 4, read: (v, at) => v.getFloat32(at) }],
  [0xcb, { bytes: 8, read: (v, at) => v.getFloat64(at) }],
]);

export class WireReader {
  private at = 0;
  private readonly view: DataView;

  constructor(private readonly b: Buffer) {
    this.view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  /** Throws unless every byte was read: a frame is one value. */
  end(): void {
    if (this.at !== this.b.length) throw new MalformedFrameError(`${this.b.length - this.at} bytes past the end of the frame`);
  }

  /** An array's length, each element taking at least `minBytes`: a count the bytes left cannot hold is refused. */
  array(field: string, minBytes = 1): number {
    const t = this.byte(field);
    let n: number;
    if (t >= 0x90 && t <= 0x9f) n = t & 0x0f;
    else if (t === 0xdc) n = this.u16(field);
    else if (t === 0xdd) n = this.u32(field);
    else throw new MalformedFrameError(`${field} is not an array`);
    if (n * minBytes > this.b.length - this.at) throw new MalformedFrameError(`${field} of ${n} elements runs past the end of the frame`);
    return n;
  }

  /** An array of exactly `n` fields. */
  tuple(n: number, field: string): void {
    const got = this.array(field);
    if (got !== n) throw new MalformedFrameError(`${field} has ${got} fields, expected ${n}`);
  }

  /** Takes a nil if one comes next. */
  nil(): boolean {
    if (this.b[this.at] !== 0xc0) return false;
    this.at++;
    return true;
  }

  uint(field: string): number {
    const t = this.byte(field);
    if (t <= 0x7f) return t;
    if (t === 0xce) return this.u32(field);
    if (t === 0xcd) return this.u16(field);
    if (t === 0xcc) return this.byte(field);
    const other = OTHER_NUMBERS.get(t);
    const v = other === undefined ? -1 : other.read(this.view, this.skip(other.bytes, field));
    if (!Number.isSafeInteger(v) || v < 0) throw new MalformedFrameError(`${field} is not a non-negative integer`);
    return v;
  }

  bool(field: string): boolean {
    const t = this.byte(field);
    if (t === 0xc2 || t === 0xc3) return t === 0xc3;
    throw new MalformedFrameError(`${field} is not a boolean`);
  }

  str(field: string): string {
    const t = this.byte(field);
    let n: number;
    if (t >= 0xa0 && t <= 0xbf) n = t & 0x1f;
    else if (t === 0xd9) n = this.byte(field);
    else if (t === 0xda) n = this.u16(field);
    else if (t === 0xdb) n = this.u32(field);
    else throw new MalformedFrameError(`${field} is not a string`);
    const from = this.skip(n, field);
    return this.b.toString('utf8', from, from + n);
  }

  /** A view of the frame's bytes, as a socket's reads are never reused. */
  bytes(field: string): Uint8Array {
    const t = this.byte(field);
    let n: number;
    if (t === 0xc4) n = this.byte(field);
    else if (t === 0xc5) n = this.u16(field);
    else if (t === 0xc6) n = this.u32(field);
    else throw new MalformedFrameError(`${field} is not binary`);
    if (n === 0) return EMPTY;
    const from = this.skip(n, field);
    return this.b.subarray(from, from + n);
  }

  /** Whole non-negative integers, as many as the array holds. */
  uints(field: string): number[] {
    const out = new Array<number>(this.array(field));
    for (let i = 0; i < out.length; i++) out[i] = this.uint(field);
    return out;
  }

  private byte(field: string): number {
    if (this.at >= this.b.length) throw new MalformedFrameError(`${field} runs past the end of the frame`);
    return this.b[this.at++]!;
  }
  private u16(field: string): number {
    return this.view.getUint16(this.skip(2, field));
  }
  private u32(field: string): number {
    return this.view.getUint32(this.skip(4, field));
  }
  /** Where `n` bytes start, having passed them. */
  private skip(n: number, field: string): number {
    const from = this.at;
    if (n > this.b.length - from) throw new MalformedFrameError(`${field} runs past the end of the frame`);
    this.at = from + n;
    return from;
  }
}
