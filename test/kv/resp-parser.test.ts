// The parser's edges: linear work on huge values, limits refused from headers alone,
// and hostile bytes answered only with coded RespProtocolErrors.
import { describe, expect, it } from 'vitest';
import { heapBytes as heap } from '../heap.js';
import { nextTurn } from '../setup/next-turn.js';
import { ARG_OVERHEAD, COMMAND_OVERHEAD, RespParser, RespProtocolError, type RespLimits } from '../../src/kv/resp.js';
import { seeded, testSeed } from '../seeded.js';

const wireOf = (cmds: string[][]): Buffer =>
  Buffer.concat(
    cmds.flatMap((c) => [
      Buffer.from(`*${c.length}\r\n`),
      ...c.flatMap((a) => [Buffer.from(`$${Buffer.byteLength(a, 'latin1')}\r\n`), Buffer.from(a, 'latin1'), Buffer.from('\r\n')]),
    ]),
  );
const str = (cmds: Buffer[][]): string[][] => cmds.map((c) => c.map((a) => a.toString('latin1')));

describe('RESP parser limits and linearity', () => {
  it('gathers a 24 MiB value sent in 64 KiB chunks with at most 2x its size copied', () => {
    const size = 24 * 1024 * 1024;
    // A pattern whose period (a prime number of bytes) no chunk boundary shares: a chunk lost,
    // repeated or out of order changes the value.
    const pattern = Buffer.allocUnsafe(65_521);
    for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 2654435761) >>> 24;
    const value = Buffer.allocUnsafe(size).fill(pattern);
    const wire = Buffer.concat([Buffer.from(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${size}\r\n`), value, Buffer.from('\r\n*1\r\n$4\r\nPING\r\n')]);
    const p = new RespParser({ maxBulkBytes: 64 * 1024 * 1024 });
    const got: Buffer[][] = [];
    for (let at = 0; at < wire.length; at += 64 * 1024) got.push(...p.push(wire.subarray(at, at + 64 * 1024)));
    expect(got.length).toBe(2);
    expect(got[0]![2]!.equals(value)).toBe(true);
    expect(str([got[1]!])).toEqual([['PING']]);
    expect(p.bytesCopied).toBeGreaterThanOrEqual(size);
    expect(p.bytesCopied).toBeLessThanOrEqual(2 * size);
  });

  it('holds a bulk string in proportion to the bytes that arrived, not the length its header announces', () => {
    const size = 4_000_000;
    const value = Buffer.alloc(size, 7);
    const p = new RespParser();
    expect(p.push(Buffer.from(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${size}\r\nab`))).toEqual([]);
    // The value's first buffer, and its Buffer and those of SET and k, and their array.
    expect(p.retainedBytes).toBeLessThanOrEqual(64 * 1024 + 16 + 3 * ARG_OVERHEAD + COMMAND_OVERHEAD);
    value.write('ab');
    const got: Buffer[][] = [];
    for (let at = 2, chunk = 1000; at < size; at += chunk, chunk *= 2) {
      got.push(...p.push(value.subarray(at, Math.min(size, at + chunk))));
      const arrived = Math.min(size, at + chunk);
      expect(p.retainedBytes).toBeLessThanOrEqual(Math.max(64 * 1024, 4 * arrived) + 16 + 3 * ARG_OVERHEAD + COMMAND_OVERHEAD);
    }
    expect(got).toEqual([]);
    const [cmd, ...rest] = p.push(Buffer.from('\r\n'));
    expect(rest).toEqual([]);
    expect(str([cmd!.slice(0, 2)])).toEqual([['SET', 'k']]);
    expect(cmd![2]!.equals(value)).toBe(true);
    expect(p.retainedBytes).toBe(0);
  });

  it('counts in retainedBytes what the arguments of an unfinished command cost the heap, however small they are', async () => {
    for (const size of [0, 1, 8, 100]) {
      await new Promise(setImmediate); // each size is a few hundred ms of CPU
      const arg = `$${size}\r\n${'k'.repeat(size)}\r\n`;
      const parsers: RespParser[] = [];
      const before = heap();
      let counted = 0;
      // 200 commands of 1000 arguments, none whole: 200,000 arguments held.
      for (let i = 0; i < 200; i++) {
        const p = new RespParser();
        expect(p.push(Buffer.from(`*1001\r\n${arg.repeat(1000)}`))).toEqual([]);
        counted += p.retainedBytes;
        parsers.push(p);
      }
      const held = heap() - before;
      // An argument of a few bytes costs a Buffer of about 110 bytes: counted at its length, 1000
      // one-byte arguments were 1000 bytes of a budget and held 115 KB.
      expect(held, `${size}-byte arguments: ${held} bytes held, ${counted} counted`).toBeLessThanOrEqual(1.1 * counted);
      if (size > 0) expect(held, `${size}-byte arguments: ${held} bytes held, ${counted} counted`).toBeGreaterThanOrEqual(0.5 * counted);
      expect(parsers).toHaveLength(200); // kept alive until measured
    }
    expect(ARG_OVERHEAD).toBe(128);
  });

  it('holds no more than the unfinished line between commands: a chunk that completes a line is not kept whole', () => {
    // Pipelined commands whose chunks end inside a header: the next chunk completes the line, and ends inside another.
    const one = wireOf([['SET', 'key', 'v'.repeat(100)]]);
    const wire = Buffer.concat(Array.from({ length: 2000 }, () => one));
    const p = new RespParser();
    const got: Buffer[][] = [];
    let at = 0;
    for (const end of [5, 5 + 64 * 1024, 5 + 128 * 1024]) {
      // Each cut lands on a line: the '*3' of a command (a multiple of its length, plus 2) or within it.
      const cut = end - (end % one.length) + 2;
      got.push(...p.push(wire.subarray(at, cut)));
      at = cut;
      // What is held is the two bytes of the line cut short, in a buffer of at most 256 bytes.
      expect(p.retainedBytes).toBeLessThanOrEqual(256);
    }
    got.push(...p.push(wire.subarray(at)));
    expect(got.length).toBe(2000);
    // And between commands, nothing: an idle client holds no buffer.
    expect(p.retainedBytes).toBe(0);
  });

  it('refuses a 200k-argument command from its header, before reading any argument', () => {
    const n = 200_000;
    const wire = Buffer.concat([Buffer.from(`*${n}\r\n`), Buffer.from('$1\r\na\r\n'.repeat(n))]);
    const p = new RespParser();
    expect(() => p.push(wire)).toThrow(expect.objectContaining({ code: 'RESP_TOO_MANY_ARGS' }));
    expect(p.bytesCopied).toBe(0);
    expect(p.retainedBytes).toBe(0);
    // The stream is not trusted after an error.
    expect(() => p.push(Buffer.from('PING\r\n'))).toThrow(RespProtocolError);

    // Inline: a long line is refused by its length, and within a long-line limit by the argument count.
    expect(() => new RespParser().push(Buffer.from('a '.repeat(n)))).toThrow(expect.objectContaining({ code: 'RESP_INLINE_TOO_LONG' }));
    const q = new RespParser({ maxInlineBytes: 4 * n, maxArgs: 1024 });
    expect(() => q.push(Buffer.from('a '.repeat(n) + '\r\n'))).toThrow(expect.objectContaining({ code: 'RESP_TOO_MANY_ARGS' }));
    expect(q.bytesCopied).toBeLessThanOrEqual(4 * n + 1024);
  });

  it('refuses a bulk string or a command past its byte limits from the header', () => {
    // Each argument counts 128 bytes more than its length, a command 192: SET k <100 bytes> counts 680.
    const p = new RespParser({ maxBulkBytes: 100, maxCommandBytes: 700 });
    expect(() => p.push(Buffer.from('*1\r\n$101\r\n'))).toThrow(expect.objectContaining({ code: 'RESP_BULK_TOO_LARGE' }));
    const q = new RespParser({ maxBulkBytes: 100, maxCommandBytes: 700 });
    expect(str(q.push(wireOf([['SET', 'k', 'v'.repeat(100)]])))).toEqual([['SET', 'k', 'v'.repeat(100)]]);
    expect(() => q.push(Buffer.from(`*3\r\n$3\r\nSET\r\n$${100}\r\n${'k'.repeat(100)}\r\n$100\r\n`))).toThrow(
      expect.objectContaining({ code: 'RESP_COMMAND_TOO_LARGE' }),
    );
    expect(() => new RespParser().push(Buffer.from(`*1\r\n$${'9'.repeat(40)}`))).toThrow(expect.objectContaining({ code: 'RESP_PROTOCOL' }));
  });

  it('returns the commands before a malformed one, then fails', () => {
    const p = new RespParser();
    expect(str(p.push(Buffer.from('*1\r\n$4\r\nPING\r\n*1\r\n$x\r\n')))).toEqual([['PING']]);
    expect(p.error).toMatchObject({ code: 'RESP_PROTOCOL' });
    expect(() => p.push(Buffer.from('PING\r\n'))).toThrow(p.error!);
  });

  it('stops after maxCommands and goes on from the kept bytes, under limits set in between', () => {
    const p = new RespParser({ maxBulkBytes: 4 });
    const wire = wireOf([['AUTH', 'pw'], ['SET', 'k', 'long-value'], ['PING']]);
    expect(str(p.push(wire, 1))).toEqual([['AUTH', 'pw']]);
    p.setLimits({ maxArgs: 8, maxBulkBytes: 100, maxCommandBytes: 1000, maxInlineBytes: 100 });
    expect(str(p.push(Buffer.alloc(0)))).toEqual([['SET', 'k', 'long-value'], ['PING']]);
  });

  it('parses many commands the same fed byte by byte as fed whole', () => {
    const seed = testSeed('resp byte-by-byte');
    const random = seeded(seed);
    const word = (max: number): string => String.fromCharCode(...Array.from({ length: Math.floor(random() * max) }, () => Math.floor(random() * 256)));
    const cmds: string[][] = Array.from({ length: 300 }, () => ['SET', word(20), word(300)]);
    const whole = new RespParser();
    const a = str(whole.push(wireOf(cmds)));
    const byByte = new RespParser();
    const wire = Buffer.concat([wireOf(cmds), Buffer.from('PING  x\r\n')]);
    const b: string[][] = [];
    for (let i = 0; i < wire.length; i++) b.push(...str(byByte.push(wire.subarray(i, i + 1))));
    expect(a).toEqual(cmds);
    expect(b).toEqual([...cmds, ['PING', 'x']]);
    // Linear even a byte at a time: kept-back header bytes are copied a bounded number of times.
    expect(byByte.bytesCopied).toBeLessThanOrEqual(4 * wire.length);
  });

  it('parses values of every size up to 300 KiB the same in random chunks as whole, holding at most 4x what arrived of each', async () => {
    const seed = testSeed('resp bulk growth');
    const random = seeded(seed);
    const maxValue = 300 * 1024;
    const limits = { maxBulkBytes: maxValue, maxCommandBytes: 4 * (maxValue + 64) };
    for (let round = 0; round < 40; round++) {
      await nextTurn(); // each round parses a few MiB: the worker must keep answering
      // Small sizes around the buffer's first size and its growth steps too, not only large ones.
      const size = (): number => {
        const r = random();
        if (r < 0.2) return Math.floor(random() * 8);
        if (r < 0.4) return 64 * 1024 + Math.floor(random() * 9) - 4;
        return Math.floor(random() * (maxValue + 1));
      };
      const cmds: Buffer[][] = Array.from({ length: 1 + Math.floor(random() * 6) }, () => [
        Buffer.from('SET'),
        ...Array.from({ length: 1 + Math.floor(random() * 3) }, () => {
          const v = Buffer.allocUnsafe(size());
          for (let i = 0; i < v.length; i++) v[i] = Math.floor(random() * 256);
          return v;
        }),
      ]);
      const encoded = cmds.map((c) =>
        Buffer.concat([Buffer.from(`*${c.length}\r\n`), ...c.flatMap((a) => [Buffer.from(`$${a.length}\r\n`), a, Buffer.from('\r\n')])]),
      );
      const wire = Buffer.concat(encoded);
      // Where each command starts in the wire.
      const starts = encoded.map((_, i) => encoded.slice(0, i).reduce((n, e) => n + e.length, 0));
      const whole = new RespParser(limits).push(wire);
      const p = new RespParser(limits);
      const got: Buffer[][] = [];
      for (let at = 0; at < wire.length;) {
        // Chunk sizes from 1 byte to 256 KiB, spread evenly over their orders of magnitude.
        const n = Math.max(1, Math.floor(Math.exp(random() * Math.log(256 * 1024))));
        got.push(...p.push(wire.subarray(at, at + n)));
        at += n;
        // The command under way is held in at most 4x its bytes that arrived, or 64 KiB, beside a kept-back header line.
        const arrived = got.length < cmds.length ? Math.min(at, wire.length) - starts[got.length]! : 0;
        expect(p.retainedBytes, `round ${round} (seed ${seed})`).toBeLessThanOrEqual(4 * arrived + 64 * 1024 + 16 * 1024);
      }
      const same = (a: Buffer[][]): boolean =>
        a.length === cmds.length && a.every((c, i) => c.length === cmds[i]!.length && c.every((x, j) => x.equals(cmds[i]![j]!)));
      expect(same(whole), `round ${round} (seed ${seed}): whole`).toBe(true);
      expect(same(got), `round ${round} (seed ${seed}): in chunks`).toBe(true);
    }
  });

  it('answers random bytes only with commands or a coded RespProtocolError, within its limits', async () => {
    const seed = testSeed('resp random-bytes');
    const random = seeded(seed);
    const limits: RespLimits = { maxArgs: 8, maxBulkBytes: 64, maxCommandBytes: 200, maxInlineBytes: 100 };
    const alphabet = Buffer.from('*$\r\n-0123456789 abcSET\t\x00\xff');
    const maxChunk = 40;
    const codes = new Set<string>();
    for (let round = 0; round < 2000; round++) {
      if (round % 100 === 99) await nextTurn(); // a loaded machine must not see the worker blocked
      // Half the rounds start from a valid command so the parser gets deep before the noise.
      const prefix = random() < 0.5 ? wireOf([['SET', 'k', 'v'.repeat(Math.floor(random() * 70))]]) : Buffer.alloc(0);
      const noise = Buffer.from(Array.from({ length: Math.floor(random() * 300) }, () => alphabet[Math.floor(random() * alphabet.length)]!));
      const input = Buffer.concat([prefix, noise]);
      const p = new RespParser(limits);
      let at = 0;
      try {
        while (at < input.length) {
          const n = 1 + Math.floor(random() * maxChunk);
          for (const cmd of p.push(input.subarray(at, at + n))) {
            expect(cmd.length).toBeGreaterThan(0);
            expect(cmd.length).toBeLessThanOrEqual(limits.maxArgs);
            for (const arg of cmd) expect(arg.length).toBeLessThanOrEqual(Math.max(limits.maxBulkBytes, limits.maxInlineBytes));
          }
          at += n;
          expect(p.retainedBytes).toBeLessThanOrEqual(limits.maxCommandBytes + 2 * (limits.maxInlineBytes + 2 + maxChunk) + 256);
        }
      } catch (err) {
        if (!(err instanceof RespProtocolError)) throw new Error(`round ${round} (seed ${seed}): ${String(err)}`);
        codes.add(err.code);
      }
    }
    // The noise reaches more than one kind of refusal.
    expect(codes.size).toBeGreaterThan(1);
  });
});
