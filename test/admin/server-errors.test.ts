// An 'error' a listening server emits (an accept that fails: EMFILE, ENFILE, ENOBUFS) is
// logged with its code, at a bounded rate, and the server keeps serving: without a listener
// it was thrown where nothing catches it, and the node died.
import { afterEach, expect, it } from 'vitest';
import { serveAdmin } from '../../src/admin/server.js';
import { KvStateMachine, serveResp } from '../../src/kv/index.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { REFUSAL_LOG_LINES } from '../../src/refusal-log.js';
import { RespClient } from '../kv/resp-client.js';
import { tempDir } from '../log/helpers.js';
import { RecordingLogger } from '../recording-logger.js';
import { failAccepts, serverAt } from '../listening-server.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function openLog(): Promise<{ log: ReplicatedLog<unknown>; kv: KvStateMachine }> {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const kv = new KvStateMachine();
  const log = await ReplicatedLog.open<unknown>({ dataDir: t.dir, stateMachine: kv as never, sync: 'none' });
  cleanups.push(() => log.close());
  return { log, kv };
}

function accepted(logger: RecordingLogger): number {
  return logger.lines.filter((l) => l.level === 'warn' && l.fields['code'] === 'EMFILE').length;
}

it('the admin server logs an accept failure with its code, at a bounded rate, and keeps serving', async () => {
  const { log } = await openLog();
  const logger = new RecordingLogger();
  const admin = await serveAdmin({ log, address: '127.0.0.1:0', logger });
  cleanups.push(() => admin.close());
  failAccepts(serverAt(admin.address), REFUSAL_LOG_LINES + 5);
  expect(accepted(logger)).toBe(REFUSAL_LOG_LINES);
  expect(logger.lines.find((l) => l.fields['code'] === 'EMFILE')!.message).toMatch(/admin: .*EMFILE/);
  expect((await fetch(`http://${admin.address}/health`)).status).toBe(200);
  await admin.close();
  expect(logger.lines.some((l) => l.fields['suppressed'] === 5)).toBe(true);
});

it('the RESP server logs an accept failure with its code, at a bounded rate, and keeps serving', async () => {
  const { log, kv } = await openLog();
  const logger = new RecordingLogger();
  const resp = await serveResp({ log, kv, address: '127.0.0.1:0', logger });
  cleanups.push(() => resp.close());
  failAccepts(serverAt(resp.address), REFUSAL_LOG_LINES + 5);
  expect(accepted(logger)).toBe(REFUSAL_LOG_LINES);
  expect(logger.lines.find((l) => l.fields['code'] === 'EMFILE')!.message).toMatch(/RESP server: .*EMFILE/);
  const client = await RespClient.connect(Number(resp.address.slice(resp.address.lastIndexOf(':') + 1)));
  cleanups.push(() => client.close());
  expect(await client.call('PING')).toBe('PONG');
  await resp.close();
  expect(logger.lines.some((l) => l.fields['suppressed'] === 5)).toBe(true);
});
