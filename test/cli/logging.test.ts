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
