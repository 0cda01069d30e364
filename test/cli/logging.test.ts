// The CLI's pino logger: JSON lines with time, level and the node's bindings, or
// readable lines; levels filter.
import { afterEach, expect, it, vi } from 'vitest';
import { cliLogger, parseLogOptions, prettyLine } from '../../src/cli/logging.js';

afterEach(() => vi.restoreAllMocks());

it('pretty: one readable line per record, fields as key=value, errors by code and message', () => {
  const line = JSON.stringify({
    level: 40,
    time: '2026-01-01T00:00:00.000Z',
    node: 2,
    msg: 'peer lost',
    peer: 3,
    err: { code: 'TRANSPORT_IDLE_TIMEOUT', message: 'no frame' },
  });
  expect(prettyLine(line)).toBe('2026-01-01T00:00:00.000Z WARN peer lost node=2 peer=3 err="TRANSPORT_IDLE_TIMEOUT: no frame"\n');
});

it('pretty writes to stderr, filtered by level, with the child bindings', () => {
  const writes: string[] = [];
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (writes.push(String(s)), true));
  const log = cliLogger('info', 'pretty').child({ node: 7 });
  log.debug({ x: 1 }, 'hidden');
  log.info({ term: 3 }, 'leader is now 7');
  expect(writes).toHaveLength(1);
  expect(writes[0]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z INFO leader is now 7 node=7 term=3\n$/);
});

it('rejects unknown levels and formats as usage errors', () => {
  expect(parseLogOptions('debug', 'json')).toEqual({ level: 'debug', format: 'json' });
  expect(() => parseLogOptions('loud', 'json')).toThrow(/--log-level/);
  expect(() => parseLogOptions('info', 'xml')).toThrow(/--log-format/);
});

it('pretty: a record is one line whatever its text holds, and no control character reaches the terminal', () => {
  // A refusal's reason comes from whoever answers at a peer's address, before it is authenticated.
  const evil = 'refused: X\x1b[2J\x1b]0;owned\x07\r\n2026-01-01T00:00:00.000Z FATAL node stopped\u202e';
  const line = JSON.stringify({ level: 40, time: '2026-01-01T00:00:00.000Z', msg: `transport: ${evil}`, reason: `a${evil}`, plain: 'x\x1by' });
  const out = prettyLine(line);
  expect(out.endsWith('\n')).toBe(true);
  expect(out.slice(0, -1)).not.toMatch(/[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
  expect(out).toContain('transport: refused: X\\x1b[2J');
  expect(out).toContain('plain=x\\x1by');
});
