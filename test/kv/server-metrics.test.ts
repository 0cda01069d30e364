// The RESP server's refusals on the admin endpoint's /metrics, by their code, driven with the
// server's own options (protected mode for a client not on loopback, the AUTH throttle).
import { afterEach, expect, it } from 'vitest';
import { serveAdmin } from '../../src/admin/server.js';
import { KvStateMachine } from '../../src/kv/kv-state-machine.js';
import { RESP_REFUSAL_CODES, serveResp, type RespServerOptions } from '../../src/kv/server.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { parsePrometheus } from '../admin/prometheus-text.js';
import { tempDir } from '../log/helpers.js';
import { RespClient } from './resp-client.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A RESP server with `options` and an admin endpoint showing it; `refused()` reads raftlog_resp_refused_total from /metrics. */
async function start(options: Partial<RespServerOptions>) {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const kv = new KvStateMachine();
  const log = await ReplicatedLog.open<unknown>({ dataDir: t.dir, stateMachine: kv as never });
  cleanups.push(() => log.close());
  const resp = await serveResp({ log, kv, address: '127.0.0.1:0', ...options });
  cleanups.push(() => resp.close());
  const admin = await serveAdmin({ log, address: '127.0.0.1:0', resp });
  cleanups.push(() => admin.close());
  const metrics = async (): Promise<Map<string, number>> => parsePrometheus(await (await fetch(`http://${admin.address}/metrics`)).text());
  const refused = async (): Promise<Record<string, number>> => {
    const out: Record<string, number> = {};
    for (const [k, v] of await metrics()) if (k.startsWith('raftlog_resp_refused_total{')) out[/code="([A-Z_]+)"/.exec(k)![1]!] = v;
    return out;
  };
  return { port: Number(resp.address.split(':').pop()), resp, metrics, refused };
}

const none = Object.fromEntries(RESP_REFUSAL_CODES.map((c) => [c, 0]));

it('counts a protected-mode refusal under KV_PROTECTED_MODE, every other code at 0', async () => {
  const { port, resp, refused } = await start({ isLoopback: () => false });
  expect(await refused()).toEqual(none);
  const c = await RespClient.connect(port);
  expect(await c.next()).toMatchObject({ message: expect.stringMatching(/^DENIED /) });
  await c.closed();
  expect(await refused()).toEqual({ ...none, KV_PROTECTED_MODE: 1 });
  expect(resp.stats().refusedBy).toEqual({ ...none, KV_PROTECTED_MODE: 1 });
  expect(resp.stats().refused).toBe(1);
});

it('counts a wrong AUTH, and the connection the throttle then refuses under KV_AUTH_THROTTLED', async () => {
  const { port, metrics, refused } = await start({ requirepass: 'the password', authThrottle: { failures: 1 } });
  const c = await RespClient.connect(port);
  expect(await c.call('AUTH', 'wrong')).toMatchObject({ message: expect.stringMatching(/^WRONGPASS /) });
  c.close();
  const next = await RespClient.connect(port);
  expect(await next.next()).toMatchObject({ message: expect.stringMatching(/^ERR TOO_MANY_AUTH_FAILURES /) });
  await next.closed();
  expect(await refused()).toEqual({ ...none, KV_AUTH_THROTTLED: 1 });
  expect((await metrics()).get('raftlog_resp_auth_failures_total')).toBe(1);
});
