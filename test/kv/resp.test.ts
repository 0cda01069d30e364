import { describe, expect, it } from 'vitest';
import { OK, RespParser, RespSimple, encode, encodedLength } from '../../src/kv/resp.js';

const str = (cmds: Buffer[][]): string[][] => cmds.map((c) => c.map((a) => a.toString()));

describe('RESP2 parser', () => {
  it('parses arrays of bulk strings, pipelined, split at every byte', () => {
    const wire = Buffer.from('*3\r\n$3\r\nSET\r\n$1\r\na\r\n$5\r\nhe\r\nl\r\n*1\r\n$4\r\nPING\r\n');
    const want = [['SET', 'a', 'he\r\nl'], ['PING']];
    for (let cut = 0; cut <= wire.length; cut++) {
      const p = new RespParser();
      const got = [...str(p.push(wire.subarray(0, cut))), ...str(p.push(wire.subarray(cut)))];
      expect(got, `cut at ${cut}`).toEqual(want);
    }
    const p = new RespParser();
    const oneByOne = [...wire].flatMap((b) => str(p.push(Buffer.from([b]))));
    expect(oneByOne).toEqual(want);
  });

  it('parses inline commands as typed into telnet', () => {
    const p = new RespParser();
    expect(str(p.push(Buffer.from('PING\r\nset  k   v\n\r\n')))).toEqual([['PING'], ['set', 'k', 'v']]);
  });

  it("reads an inline command's quotes and escapes as Redis does", () => {
    // Each line's arguments as Redis 7 reads them (checked against redis-server).
    const cases: Array<[string, string[]]> = [
      ['SET k "hello world"', ['SET', 'k', 'hello world']],
      ["SET k 'a b'", ['SET', 'k', 'a b']],
      ['SET k a"b c"', ['SET', 'k', 'ab c']],
      ["SET k 'it\\'s'", ['SET', 'k', "it's"]],
      ['SET k "\\q\\\\\\"\\r\\x4"', ['SET', 'k', 'q\\"\rx4']],
      ['SET k "\\xzz\\x4A\\n\\t\\b\\a"', ['SET', 'k', 'xzzJ\n\t\b\x07']],
      ["SET k 'a\\x41'", ['SET', 'k', 'a\\x41']],
      ['SET k ""', ['SET', 'k', '']],
      ['SET k "x"\v', ['SET', 'k', 'x']],
      ['SET k "\\xff\\x00"', ['SET', 'k', '\xff\x00']],
    ];
    for (const [line, want] of cases) {
      const p = new RespParser();
      expect(
        p.push(Buffer.from(`${line}\r\n`, 'latin1')).map((c) => c.map((a) => a.toString('latin1'))),
        line,
      ).toEqual([want]);
    }
    for (const line of ['SET k "unbalanced', "SET k 'unbalanced", 'SET k "a"b', "SET k 'a'b", 'SET k "a\\']) {
      const p = new RespParser();
      expect(() => p.push(Buffer.from(`${line}\r\nPING\r\n`)), line).toThrow(
        expect.objectContaining({ code: 'RESP_PROTOCOL', message: 'Protocol error: unbalanced quotes in request' }),
      );
    }
  });

  it.each([
    ['*x\r\n', 'invalid multibulk length'],
    ['*1\r\n:5\r\n', "expected '$'"],
    ['*1\r\n$-3\r\n', 'invalid bulk length'],
    ['*1\r\n$2\r\nabc\r\n', 'bulk string not followed by'],
    ['*1\r$2\r\n', 'expected \\r\\n'],
    // Lengths Redis's string2ll refuses (checked against redis-server 7.0): a leading zero, '-0'.
    ['*01\r\n$4\r\nPING\r\n', 'invalid multibulk length'],
    ['*-0\r\nPING\r\n', 'invalid multibulk length'],
    ['*00\r\nPING\r\n', 'invalid multibulk length'],
    ['*2\r\n$4\r\nECHO\r\n$01\r\nx\r\n', 'invalid bulk length'],
    ['*2\r\n$4\r\nECHO\r\n$00\r\n\r\n', 'invalid bulk length'],
    // Redis looks for an inline line's end as a C string, which ends at a NUL: it never runs the
    // command. Taken as a byte, SET a\0b stored a key a client never sent in Redis's protocol.
    ['SET a\0b v\r\nPING\r\n', 'NUL byte in inline request'],
    ['\0\r\n', 'NUL byte in inline request'],
    ['SET k "a\0"\r\n', 'NUL byte in inline request'],
  ])('rejects %j with a protocol error', (input, message) => {
    const p = new RespParser();
    expect(() => p.push(Buffer.from(input))).toThrow(expect.objectContaining({ code: 'RESP_PROTOCOL', message: expect.stringContaining(message) }));
  });

  it('takes a zero length, and skips an empty or negative array, as Redis does', () => {
    const p = new RespParser();
    const wire = '*0\r\n*-1\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n*1\r\n$10\r\n0123456789\r\n';
    expect(str(p.push(Buffer.from(wire)))).toEqual([['ECHO', ''], ['0123456789']]);
  });

  it('rejects a NUL byte in an inline line that arrives in pieces, and takes one in a bulk string', () => {
    const p = new RespParser();
    expect(p.push(Buffer.from('SET a\0'))).toEqual([]);
    expect(() => p.push(Buffer.from('b v\r\n'))).toThrow(expect.objectContaining({ code: 'RESP_PROTOCOL', message: expect.stringContaining('NUL byte') }));
    expect(new RespParser().push(Buffer.from('*2\r\n$3\r\nGET\r\n$3\r\na\0b\r\nGET "a\\x00b"\r\n')).map((c) => c.map(String))).toEqual([
      ['GET', 'a\0b'],
      ['GET', 'a\0b'],
    ]);
  });

  it('enforces its limits', () => {
    expect(() => new RespParser({ maxBulkBytes: 10 }).push(Buffer.from('*1\r\n$11\r\n'))).toThrow(/invalid bulk length/);
    expect(() => new RespParser({ maxArgs: 2 }).push(Buffer.from('*3\r\n'))).toThrow(/multibulk length/);
    expect(() => new RespParser({ maxInlineBytes: 8 }).push(Buffer.from('PINGPINGPING'))).toThrow(/too big inline/);
  });

  it('encodes every reply type', () => {
    expect(encode(OK).toString()).toBe('+OK\r\n');
    expect(encode(new RespSimple('PONG')).toString()).toBe('+PONG\r\n');
    expect(encode(new Error('ERR bad\r\nthing')).toString()).toBe('-ERR bad  thing\r\n');
    expect(encode(42).toString()).toBe(':42\r\n');
    expect(encode(null).toString()).toBe('$-1\r\n');
    expect(encode('hé').toString()).toBe('$3\r\nhé\r\n');
    expect(encode(['a', 1, null, []]).toString()).toBe('*4\r\n$1\r\na\r\n:1\r\n$-1\r\n*0\r\n');
  });

  it('knows the length of an encoded reply without encoding it', () => {
    const replies = [OK, new Error('ERR bad\r\nthing é'), 42, -7, 9223372036854775807n, null, 'hé', Buffer.alloc(12345), ['a', 1, null, [], ['x'.repeat(100)]]];
    for (const r of replies) expect(encodedLength(r), String(r)).toBe(encode(r).length);
  });
});
