// An argument or a flag the action does not use is refused before the node is asked, not ignored.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { main as inspect } from '../../src/cli/inspect.js';
import { main as leader } from '../../src/cli/leader.js';
import { main as member } from '../../src/cli/member.js';
import { main as snapshot } from '../../src/cli/snapshot.js';
import { main as status } from '../../src/cli/status.js';
import { listening } from './listening.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('member, leader, status and snapshot refuse what the action would ignore, before any request', async () => {
  let asked = 0;
  const server = createServer((_req, res) => {
    asked++;
    res.writeHead(503, { 'content-type': 'application/json' }).end('{"code":"NO_LEADER","message":"no leader"}');
  });
  const admin = await listening(server, cleanups);
  const dir = mkdtempSync(join(tmpdir(), 'raftlog-extra-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  for (const [name, command, args, message] of [
    ['member', member, ['remove', '3', '4'], "unexpected argument '4'"],
    ['member', member, ['promote', '3', '4'], "unexpected argument '4'"],
    ['member', member, ['add', '4', '127.0.0.1:7104', '5'], "unexpected argument '5'"],
    ['member', member, ['replace', '3', '4', '127.0.0.1:7104', '127.0.0.1:7105'], "unexpected argument '127.0.0.1:7105'"],
    ['member', member, ['list', 'all'], "unexpected argument 'all'"],
    ['member', member, ['remove', '3', '--learner'], '--learner belongs to member add'],
    ['member', member, ['promote', '3', '--learner'], '--learner belongs to member add'],
    ['leader', leader, ['transfer', '2', '3'], "unexpected argument '3'"],
    ['status', status, ['all'], "unexpected argument 'all'"],
    ['snapshot', snapshot, ['save', join(dir, 'b.snap'), '--data', dir], '--data belongs to snapshot restore'],
    ['snapshot', snapshot, ['save', join(dir, 'b.snap'), '--id', '1'], '--id belongs to snapshot restore'],
  ] as const) {
    err.mockClear();
    expect(await command([...args, '--admin', admin]), args.join(' ')).toBe(2);
    expect(String(err.mock.calls[0]?.[0]).split('\n')[0]).toBe(`raftlog ${name}: ${message}`);
  }
  expect(asked).toBe(0);
  // restore makes a data directory, and would ignore where a save is taken from.
  err.mockClear();
  expect(await snapshot(['restore', join(dir, 'b.snap'), '--data', join(dir, 'data'), '--id', '1', '--admin', admin])).toBe(2);
  expect(String(err.mock.calls[0]?.[0]).split('\n')[0]).toBe('raftlog snapshot: --admin belongs to snapshot save');
});

it('raftlog inspect refuses a second directory rather than inspecting the first alone', async () => {
  const a = mkdtempSync(join(tmpdir(), 'raftlog-extra-'));
  const b = mkdtempSync(join(tmpdir(), 'raftlog-extra-'));
  cleanups.push(
    () => rmSync(a, { recursive: true, force: true }),
    () => rmSync(b, { recursive: true, force: true }),
  );
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  expect(await inspect([a, b])).toBe(2);
  expect(String(err.mock.calls[0]?.[0]).split('\n')[0]).toBe(`raftlog inspect: unexpected argument '${b}' (one directory at a time)`);
});
