// `raftlog serve --resp --admin`: the admin endpoint's /metrics shows the RESP server, so that an
// operator can alert on its clients being refused, or failing AUTH, and see how many are connected.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/serve.js';
import { RESP_REFUSAL_CODES } from '../../src/kv/server.js';
import { parsePrometheus } from '../admin/prometheus-text.js';
import { RespClient } from '../kv/resp-client.js';
import { tempDir, waitFor } from '../log/helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it("shows the RESP server's clients, refusals by code and AUTH failures, every refusal code at 0 from the start", async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const pass = join(t.dir, 'pass');
  writeFileSync(pass, 'the resp password\n', { mode: 0o600 });
  const said = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  cleanups.push(() => said.mockRestore());
  // At most 3 clients, and so 1 not authenticated per address.
  const flags = ['--resp', '127.0.0.1:0', '--requirepass-file', pass, '--max-clients', '3', '--admin', '127.0.0.1:0', '--log-level', 'silent'];
  const running = main(['--id', '1', '--data', join(t.dir, 'data'), ...flags]);
  const upLine = (): string | undefined => said.mock.calls.map((c) => String(c[0])).find((l) => /^node 1 up/.test(l));
  await waitFor('the node to be up', () => upLine() !== undefined, 60_000);
  const [, respPort, admin] = /, resp 127\.0\.0\.1:(\d+), admin (127\.0\.0\.1:\d+)$/.exec(upLine()!)!;
  const connect = async (from?: string): Promise<RespClient> => {
    const c = await RespClient.connect(Number(respPort), '127.0.0.1', from);
    cleanups.push(() => c.close());
    return c;
  };
  /** Every raftlog_resp_ series on /metrics. */
  const resp = async (): Promise<Record<string, number>> => {
    const text = parsePrometheus(await (await fetch(`http://${admin}/metrics`)).text());
    return Object.fromEntries([...text].filter(([k]) => k.startsWith('raftlog_resp_')));
  };
  const refused = (counts: Record<string, number>): Record<string, number> =>
    Object.fromEntries(RESP_REFUSAL_CODES.map((c) => [`raftlog_resp_refused_total{code="${c}"}`, counts[c] ?? 0]));
  const quiet = {
    raftlog_resp_max_clients: 3,
    raftlog_resp_reads_refused_total: 0,
    raftlog_resp_idle_closed_total: 0,
    raftlog_resp_evicted_total: 0,
    raftlog_resp_dropped_commands_total: 0,
    raftlog_resp_pauses_total: 0,
    raftlog_resp_paused_clients: 0,
    raftlog_resp_buffered_bytes: 0,
    raftlog_resp_write_buffered_bytes: 0,
    raftlog_resp_max_write_buffered_bytes: 0,
  };
  expect(await resp()).toEqual({
    ...quiet,
    raftlog_resp_clients: 0,
    raftlog_resp_auth_failures_total: 0,
    raftlog_resp_max_inflight_commands: 0,
    ...refused({}),
  });

  // A client that gets its password wrong once, then right.
  const a = await connect();
  expect(await a.call('AUTH', 'wrong')).toMatchObject({ message: expect.stringMatching(/^WRONGPASS /) });
  expect(await a.call('AUTH', 'the resp password')).toBe('OK');
  // A stranger may hold one connection not authenticated: its second is refused.
  const stranger = await connect('127.0.0.3');
  expect(await stranger.call('PING')).toMatchObject({ message: expect.stringMatching(/^NOAUTH /) });
  const second = await connect('127.0.0.3');
  expect(await second.next()).toMatchObject({ message: expect.stringMatching(/^ERR TOO_MANY_CONNECTIONS /) });
  // A third client fills the server: a fourth is refused.
  const b = await connect();
  expect(await b.call('PING')).toMatchObject({ message: expect.stringMatching(/^NOAUTH /) });
  const fourth = await connect();
  expect(await fourth.next()).toMatchObject({ message: 'ERR max number of clients reached' });
  // A web page's request, sent to the RESP port: its connection closes at the POST.
  b.raw('POST / HTTP/1.1\r\n');
  await b.closed();
  let seen = await resp();
  for (let i = 0; i < 100 && seen.raftlog_resp_clients !== 2; i++) {
    await new Promise((r) => setTimeout(r, 20)); // until the server sees it close
    seen = await resp();
  }
  expect(seen).toEqual({
    ...quiet,
    raftlog_resp_clients: 2,
    raftlog_resp_auth_failures_total: 1,
    raftlog_resp_max_inflight_commands: 1,
    ...refused({ KV_TOO_MANY_CONNECTIONS: 1, KV_MAX_CLIENTS: 1, KV_CROSS_PROTOCOL: 1 }),
  });
  process.emit('SIGTERM');
  expect(await running).toBe(0);
}, 90_000);
