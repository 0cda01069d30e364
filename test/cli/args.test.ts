// The CLI's shared flag readers: secret files read one way, numbers parsed one way.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { MAX_FLAG_FILE_BYTES, decimalArg, fileArg, firstLineOf, intArg, intListArg, linesOf, parseArgs, parseCommand } from '../../src/cli/args.js';
import { tempDir } from '../log/helpers.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function secretFile(text: string): Map<string, string | true> {
  const t = tempDir('raftlog-args-');
  cleanups.push(t.cleanup);
  const file = join(t.dir, 'secret');
  writeFileSync(file, text);
  return new Map([['secret-file', file]]);
}

it('a secret is its line without the LF or CRLF that ends it, byte for byte', () => {
  for (const text of ['pass word', 'pass word\n', 'pass word\r\n', 'pass word\nsecond line\n', 'pass word\r\nsecond\r\n'])
    expect(firstLineOf(secretFile(text), 'secret-file', 'the secret'), JSON.stringify(text)).toBe('pass word');
  expect(linesOf(secretFile('old secret\r\nnew secret\n'), 'secret-file', 'a secret')).toEqual(['old secret', 'new secret']);
  expect(firstLineOf(new Map(), 'secret-file', 'the secret')).toBeUndefined();
  expect(linesOf(new Map(), 'secret-file', 'a secret')).toBeUndefined();
});

it('an empty line, or one that begins or ends with whitespace, is refused, never trimmed', () => {
  for (const [text, line, why] of [
    ['', 1, 'is empty'],
    ['\n', 1, 'is empty'],
    ['\npass word\n', 1, 'is empty'],
    ['pass word \n', 1, 'begins or ends with whitespace'],
    [' pass word\n', 1, 'begins or ends with whitespace'],
    ['pass word\t\n', 1, 'begins or ends with whitespace'],
    ['pass word\r', 1, 'begins or ends with whitespace'], // a lone CR is no line ending
    ['\uFEFFpass word\n', 1, 'begins or ends with whitespace'],
  ] as const) {
    expect(() => firstLineOf(secretFile(text), 'secret-file', 'the secret'), JSON.stringify(text)).toThrow(
      expect.objectContaining({ code: 'USAGE', message: expect.stringMatching(new RegExp(`^--secret-file: line ${line} \\(the secret\\) ${why}`)) }),
    );
  }
  for (const [text, line] of [
    ['old secret\n\nnew secret\n', 2],
    ['old secret\nnew secret \n', 2],
    ['old secret\n\n', 2],
  ] as const) {
    expect(() => linesOf(secretFile(text), 'secret-file', 'a secret'), JSON.stringify(text)).toThrow(`--secret-file: line ${line} (a secret) `);
  }
});

it('a secret file that cannot be read is a usage error naming the flag', () => {
  expect(() => firstLineOf(new Map([['secret-file', '/nonexistent/secret']]), 'secret-file', 'the secret')).toThrow(
    expect.objectContaining({ code: 'USAGE', message: expect.stringMatching(/^--secret-file: ENOENT/) }),
  );
});

it('a flag file that is not a regular file, or is larger than any secret, key or certificate, is refused at once as a usage error naming it', () => {
  const t = tempDir('raftlog-args-');
  cleanups.push(t.cleanup);
  const refused = (path: string, why: RegExp): void => {
    const opts = new Map<string, string | true>([['secret-file', path]]);
    for (const read of [() => firstLineOf(opts, 'secret-file', 'the secret'), () => fileArg(opts, 'secret-file')])
      expect(read, path).toThrow(expect.objectContaining({ code: 'USAGE', message: expect.stringMatching(why) }));
  };
  // A FIFO held the synchronous read until a writer came: one comes after a while, so that a
  // read that waits for it ends (with the secret it writes) instead of hanging the test.
  const fifo = join(t.dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const writer = spawn('sh', ['-c', `sleep 5 && echo 'a secret of some length' > '${fifo}'`], { stdio: 'ignore' });
  writer.on('error', () => undefined);
  cleanups.push(() => writer.kill());
  refused(fifo, /^--secret-file: .*fifo is not a regular file$/);
  const huge = join(t.dir, 'huge');
  writeFileSync(huge, 'a secret of some length\n');
  truncateSync(huge, MAX_FLAG_FILE_BYTES + 1);
  refused(huge, new RegExp(`^--secret-file: .*huge holds more than ${MAX_FLAG_FILE_BYTES} bytes`));
  const dir = join(t.dir, 'dir');
  mkdirSync(dir);
  refused(dir, /^--secret-file: .*dir is not a regular file$/);
  refused('/dev/zero', /^--secret-file: \/dev\/zero is not a regular file$/);
});

it('a number flag is decimal digits alone: a list, a sign, a fraction, an exponent, hex or junk is refused, not read as another number', () => {
  const opts = (v: string): Map<string, string | true> => new Map([['n', v]]);
  expect(intArg(opts('0'), 'n')).toBe(0);
  expect(intArg(opts('12'), 'n', undefined, 1)).toBe(12);
  expect(intArg(new Map(), 'n', 7)).toBe(7);
  for (const v of ['', ' 5', '5 ', '1,2', '2,3', '1e3', '0x10', '0b1', '+5', '-1', '1.0', '1.5', '12abc', 'Infinity', '99999999999999999999'])
    expect(() => intArg(opts(v), 'n'), JSON.stringify(v)).toThrow(
      expect.objectContaining({ code: 'USAGE', message: `--n must be a non-negative integer, got '${v}'` }),
    );
  expect(() => intArg(opts('0'), 'n', undefined, 1)).toThrow("--n must be a positive integer, got '0'");

  expect(intListArg(opts('1,16,256'), 'n', '1')).toEqual([1, 16, 256]);
  expect(intListArg(new Map(), 'n', '100,1024')).toEqual([100, 1024]);
  for (const v of ['1,x', '1,,2', '1,', '0', '1e3', '1,-2', '1.5', '1, 2'])
    expect(() => intListArg(opts(v), 'n', '1'), JSON.stringify(v)).toThrow(`--n must be positive integers separated by commas, got '${v}'`);

  for (const [v, n] of [
    ['3', 3],
    ['0.5', 0.5],
    ['.5', 0.5],
    ['2.', 2],
  ] as const)
    expect(decimalArg(opts(v), 'n', 1)).toBe(n);
  expect(decimalArg(new Map(), 'n', 3)).toBe(3);
  for (const v of ['', '0', '0.0', '-1', '1e3', '0x10', 'Infinity', '1,2', '3s', ' 3', '.'])
    expect(() => decimalArg(opts(v), 'n', 1), JSON.stringify(v)).toThrow(`--n must be a positive number (like 3 or 0.5), got '${v}'`);
});

it('a switch given a value (--insecure=false, --yes=no) is refused, not taken as the switch', () => {
  const known = { yes: 'boolean', json: 'boolean', admin: 'string' } as const;
  expect(parseArgs(['--yes', '--json'], known)).toEqual(
    new Map([
      ['yes', true],
      ['json', true],
    ]),
  );
  for (const a of ['--yes=no', '--yes=', '--json=false', '--json=true'])
    expect(() => parseArgs([a], known), a).toThrow(
      expect.objectContaining({ code: 'USAGE', message: `--${a.slice(2, a.indexOf('='))} takes no value, got '${a}'` }),
    );
  expect(() => parseCommand(['list', '--json=false', '--admin', 'h:1'], known)).toThrow("--json takes no value, got '--json=false'");
});

it("a flag's value is taken whole and once: an empty one, a flag in its place, or a second value is refused", () => {
  const known = { data: 'string', join: 'boolean', 'cluster-id': 'string' } as const;
  expect(parseArgs(['--data=/tmp/a=b', '--cluster-id', 'x=y'], known)).toEqual(
    new Map([
      ['data', '/tmp/a=b'],
      ['cluster-id', 'x=y'],
    ]),
  );
  expect(parseArgs(['--data=--odd', '--join', '--join'], known)).toEqual(
    new Map<string, string | true>([
      ['data', '--odd'],
      ['join', true],
    ]),
  );
  for (const [args, message] of [
    [['--data='], '--data needs a value'],
    [['--data', ''], '--data needs a value'],
    [['--data'], '--data needs a value'],
    [['--data', '--join'], "--data needs a value, got the flag '--join' (give --data=--join if that is the value)"],
    [['--data', 'a', '--data', 'b'], "--data is given twice ('a' and 'b')"],
    [['--data=a', '--join', '--data=a'], "--data is given twice ('a' and 'a')"],
  ] as const) {
    expect(() => parseArgs([...args], known), args.join(' ')).toThrow(expect.objectContaining({ code: 'USAGE', message }));
  }
  expect(() => parseCommand(['add', '4', 'h:1', '--admin', '--json'], { admin: 'string', json: 'boolean' })).toThrow(
    "--admin needs a value, got the flag '--json'",
  );
});
