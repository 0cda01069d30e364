// Every error code the native addon can report has its class on the TypeScript
// side: the codes are read from the one table in native/wal_error.h.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { WalError, fromNative } from '../../src/wal/errors.js';

const NATIVE = resolve(dirname(fileURLToPath(import.meta.url)), '../../native');

function nativeTable(): { enumerators: string[]; codes: string[] } {
  const text = readFileSync(join(NATIVE, 'wal_error.h'), 'utf8');
  const table = /\/\/ native-codes: begin([\s\S]*?)\/\/ native-codes: end/.exec(text)?.[1] ?? '';
  const enumerators = (/enum class WalCode \{([^}]*)\}/.exec(table)?.[1] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const codes = [...table.matchAll(/case WalCode::\w+: return "([A-Z_]+)";/g)].map((m) => m[1]!);
  return { enumerators, codes };
}

describe('native error codes', () => {
  it('the table names each code once, one per enumerator', () => {
    const { enumerators, codes } = nativeTable();
    expect(codes.length).toBeGreaterThan(0);
    expect(codes.length).toBe(enumerators.length);
    expect(new Set(codes).size).toBe(codes.length);
  });

  it('every native code becomes a WalError of that code', () => {
    for (const code of nativeTable().codes) {
      const raw = Object.assign(new Error(`native ${code}`), { code, file: 'seg', offset: 7 });
      const e = fromNative(raw);
      expect(e, code).toBeInstanceOf(WalError);
      expect((e as WalError).code).toBe(code);
      expect(e.message).toBe(`native ${code}`);
    }
  });

  it('no native source spells a code outside the table', () => {
    const stray: string[] = [];
    for (const name of readdirSync(NATIVE).filter((n) => /\.(cc|h)$/.test(n))) {
      const text = readFileSync(join(NATIVE, name), 'utf8').replace(/\/\/ native-codes: begin[\s\S]*?\/\/ native-codes: end/, '');
      for (const m of text.matchAll(/"(WAL_[A-Z_]*)"/g)) stray.push(`${name}: ${m[1]}`);
    }
    expect(stray).toEqual([]);
  });

  it('an unknown code is not dressed up as a WAL error', () => {
    const raw = Object.assign(new Error('odd'), { code: 'WAL_SOMETHING_NEW' });
    expect(fromNative(raw)).toBe(raw);
  });
});
