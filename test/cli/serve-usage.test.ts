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
