// A build on a system without Linux's durability semantics stops with the reason,
// instead of producing a WAL that quietly promises less.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const WRITER = fileURLToPath(new URL('../../native/writer.cc', import.meta.url));
const compile = (extra: string[]): { status: number | null; stderr: string } => {
  // Preprocessing is enough: the guard is the first thing every file that syncs or locks includes.
  const r = spawnSync('c++', ['-E', '-std=c++17', ...extra, WRITER, '-o', '/dev/null'], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
};

it('the native WAL refuses to build off Linux, saying why', () => {
  const elsewhere = compile(['-U__linux__']);
  expect(elsewhere.status).not.toBe(0);
  expect(elsewhere.stderr).toMatch(/supports Linux only.*fdatasync/);
  expect(compile([]).status).toBe(0);
});
