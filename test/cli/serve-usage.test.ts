// `raftlog serve --help` says which peer authentication flags go together.
import { afterEach, expect, it, vi } from 'vitest';
import { main as serve } from '../../src/cli/serve.js';

afterEach(() => {
  vi.restoreAllMocks();
});

it('shows the cluster secret and TLS as flags that may be given together, not as alternatives', async () => {
  const out = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  expect(await serve(['--help'])).toBe(0);
  const usage = String(out.mock.calls[0]?.[0]);
  expect(usage).toMatch(/\[--cluster-secret-file FILE\] \[--tls-cert FILE --tls-key FILE --tls-ca FILE\]/);
  expect(usage).not.toMatch(/--cluster-secret-file FILE \|/);
  expect(usage).toMatch(/or both \(the\s+secret proved over TLS\)/);
});

it('refuses each flag its usage says qualifies another when that other is not given, as the usage says', async () => {
  const out = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  expect(await serve(['--help'])).toBe(0);
  const usage = String(out.mock.calls[0]?.[0]).replace(/\s+/g, ' ');
  const sentence = /A flag that qualifies another is refused without it: (.*?)\./.exec(usage)?.[1];
  expect(sentence).toBeDefined();
  const pairs = [...sentence!.matchAll(/((?:--[a-z-]+(?:, | and |, and )?)+) without (--[a-z-]+(?: or --[a-z-]+)?)/g)].flatMap((m) =>
    [...m[1]!.matchAll(/--[a-z-]+/g)].map((f) => [f[0], m[2]!] as const),
  );
  expect(pairs.length).toBe(9);
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  for (const [flag, needs] of pairs) {
    err.mockClear();
    // The refusal comes before any file is read or made: a value that names nothing does.
    const value = flag === '--insecure' ? [] : ['7'];
    expect(await serve(['--id', '1', '--data', '/nonexistent/raftlog-usage', flag, ...value]), flag).toBe(2);
    const line = String(err.mock.calls[0]?.[0]).split('\n')[0];
    const other = needs.includes(' or ') ? `${needs}, neither of which is given` : `${needs}, which is not given`;
    expect(line).toBe(`raftlog serve: ${flag} applies to ${other}`);
  }
});
