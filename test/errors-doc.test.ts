// docs/errors.md is the one table of every code: a code added to a family's union
// (or raised or logged as a literal anywhere in src/) without a row there fails this test.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

it('every error code the library, the CLI and the admin endpoint produce has a row in docs/errors.md', () => {
  const doc = readFileSync(join(ROOT, 'docs/errors.md'), 'utf8');
  const codes = new Set<string>();
  for (const file of sources('src')) {
    const text = readFileSync(join(ROOT, file), 'utf8');
    // The families' literal unions, and the lists a union is derived from (TRANSPORT_ERROR_CODES) ...
    for (const union of text.matchAll(/type \w*ErrorCode =([^;]+);|const \w*_ERROR_CODES = \[([^\]]+)\]/g))
      for (const m of (union[1] ?? union[2])!.matchAll(/'([A-Z][A-Z0-9_]+)'/g)) codes.add(m[1]!);
    // ... and every code raised or logged as a literal: an error's constructor or super() call
    // (the CLI's, the admin endpoint's and any class outside the unions) and a `code` field.
    for (const m of text.matchAll(/(?:new \w+Error\(\s*(?:\d+, )?|super\(\s*|code: )'([A-Z][A-Z0-9_]+)'/g)) codes.add(m[1]!);
  }
  expect(codes.size).toBeGreaterThan(60);
  const missing = [...codes].filter((c) => !doc.includes(`\`${c}\``));
  expect(missing).toEqual([]);
});
