// The CLI's shared flag readers: secret files read one way, numbers parsed one way.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { firstLineOf, linesOf } from '../../src/cli/args.js';
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
