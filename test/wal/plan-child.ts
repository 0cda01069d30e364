// Hands the open WAL's native handle jobs whose chunk ends inside a record (its header's
// length runs past the chunk), as a packing mistake would, and prints what submit did with
// each, as one JSON line. In a child: a submit that reads or writes past its buffer may
// crash the process. Usage: plan-child.ts <dir>
import { addon, type NativeHandle } from '../../src/wal/addon.js';
import { Wal } from '../../src/wal/index.js';

const [dir] = process.argv.slice(2);
if (dir === undefined) process.exit(2);
const native = addon();
const Native = native.WalHandle;
let handle: NativeHandle | undefined;
native.WalHandle = class extends Native {
  constructor(...args: ConstructorParameters<typeof Native>) {
    super(...args);
    handle = this;
  }
};
const wal = await Wal.open(dir, { segmentBytes: 1 << 20 });
native.WalHandle = Native;

const ENTRY = 2;
/** A job of one chunk, [0, end) of `size` bytes, holding an entry header that says `length`. */
function submit(size: number, end: number, length: number): string {
  const buf = new Uint8Array(size);
  new DataView(buf.buffer).setUint32(4, length, true);
  buf[8] = ENTRY;
  try {
    // Segment 1, the one the WAL writes to, well past its records.
    return `accepted ${handle!.submit([buf], new Float64Array([0, 0, end, 1, 64 * 1024, 1]), 1, false)}`;
  } catch (e) {
    return `refused ${(e as { code?: string }).code}: ${(e as Error).message}`;
  }
}
const outcomes = [
  submit(64, 24, 16), // the payload and padding lie past the chunk, inside the buffer
  submit(32, 32, 2 ** 30 - 16), // a payload of about 1 GiB, past the buffer's end
];
await wal.close();
process.stdout.write(JSON.stringify({ outcomes }) + '\n');
