// Clients of the RESP and admin endpoints come and go, many of them in the middle of
// something: commands in flight, half a command sent, a backup half read. The server must
// give back each connection's socket, timers, budget and snapshot once it is gone.
import { createServer, get, type IncomingMessage } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { adminHandler } from '../../src/admin/handler.js';
import { KvStateMachine, encodeCommand } from '../../src/kv/kv-state-machine.js';
import { serveResp, type KvLog } from '../../src/kv/server.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import type { LogEntry } from '../../src/log/state-machine.js';
import { tempDir, waitFor } from '../log/helpers.js';
import { Census, quiesce } from './census.js';
import { QUICK, collect } from './cluster.js';

const census = new Census();
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  const warnings = [...census.warnings];
  census.stop();
  expect(warnings).toEqual([]);
});

async function embedded(): Promise<{ log: ReplicatedLog; kv: KvStateMachine }> {
  const d = tempDir('raftlog-churn-kv-');
  const kv = new KvStateMachine();
  const log = await ReplicatedLog.open({ dataDir: d.dir, stateMachine: kv, ...QUICK });
  cleanups.push(d.cleanup, () => log.close());
  return { log, kv };
}

const later = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Connects, sends `bytes`, and leaves as `how` says ('stay': once the server closes), without waiting for any reply. */
async function hitAndRun(port: number, bytes: string, how: 'destroy' | 'end' | 'after-first-reply' | 'stay'): Promise<void> {
  const s = net.connect({ host: '127.0.0.1', port });
  s.on('error', () => undefined);
  await new Promise<void>((resolve) => s.once('connect', () => resolve()).once('close', () => resolve()));
  s.write(bytes);
  if (how === 'destroy') s.destroy();
  else if (how === 'end')
    s.end().resume(); // replies read and dropped: the server's close is seen
  else if (how === 'stay') s.resume();
  else s.once('data', () => s.destroy());
  await new Promise<void>((resolve) => (s.closed ? resolve() : s.once('close', () => resolve())));
}

const cmd = (...args: string[]): string => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;

describe('server churn', () => {
  it('RESP clients that leave with commands in flight, paused, half a command sent or replies unread, 240 of them, leave nothing held', async () => {
    const { log, kv } = await embedded();
    // Answers a few ms late: most clients are gone before their commands are.
    const slow: KvLog = {
      append: async (d) => (await later(5), log.append(d)),
      barrier: async () => (await later(5), log.barrier()),
      status: () => log.status(),
    };
    census.start();
    const server = await serveResp({ log: slow, kv, address: '127.0.0.1:0', idleTimeoutMs: 60_000, highWaterMark: { commands: 16 } });
    cleanups.push(() => server.close());
    const port = Number(server.address.split(':').pop());
    const pipeline = (i: number): string => {
      let out = '';
      for (let k = 0; k < 20; k++) out += cmd('SET', `k${i % 7}`, `v${k}`) + cmd('GET', `k${i % 7}`) + cmd('INCR', `n${i % 5}`);
      return out;
    };
    const half = (i: number): string => cmd('SET', `k${i}`, 'v') + `*3\r\n$3\r\nSET\r\n$5\r\nkey${i % 10}\r\n$100000\r\n${'x'.repeat(1000)}`;
    const many = (i: number): string => cmd('GET', `k${i % 7}`).repeat(300);
    const ways = [
      (i: number) => hitAndRun(port, many(i), 'destroy'),
      (i: number) => hitAndRun(port, many(i), 'after-first-reply'),
      (i: number) => hitAndRun(port, pipeline(i), 'destroy'),
      (i: number) => hitAndRun(port, pipeline(i), 'end'),
      (i: number) => hitAndRun(port, pipeline(i), 'after-first-reply'),
      (i: number) => hitAndRun(port, half(i), 'destroy'),
      (i: number) => hitAndRun(port, half(i), 'after-first-reply'),
      (i: number) => hitAndRun(port, 'PING\r\n' + cmd('GET', 'k1') + 'QUIT\r\n' + cmd('SET', 'never', 'run'), 'end'),
    ];
    const growth = await census.growth({
      cycles: 30,
      warmUp: 5,
      cycle: (i) => Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((k) => ways[(8 * i + k) % ways.length]!(8 * i + k))),
      settle: async () => {
        await waitFor('every client gone', () => server.stats().clients === 0);
        await later(50); // the last answers, for clients already gone
        await quiesce();
      },
    });
    expect(growth).toEqual({});
    const st = server.stats();
    expect({ buffered: st.buffered, paused: st.paused, writeBuffered: st.writeBuffered }).toEqual({ buffered: 0, paused: 0, writeBuffered: 0 });
    // The cycles did cut in: some commands were never started, some clients were paused.
    expect(st.dropped).toBeGreaterThan(0);
    expect(st.pauses).toBeGreaterThan(0);
    expect(kv.get(Buffer.from('never'))).toBeUndefined();
  });

  it('RESP clients refused (over maxClients, wrong passwords, no AUTH in time), 180 of them, leave nothing held', async () => {
    const { log, kv } = await embedded();
    census.start();
    const server = await serveResp({ log, kv, address: '127.0.0.1:0', requirepass: 'churn password', maxClients: 3, authTimeoutMs: 100 });
    cleanups.push(() => server.close());
    const port = Number(server.address.split(':').pop());
    // Three clients that hold every slot for a while, then leave.
    const holders = async (): Promise<void> => {
      await Promise.all([0, 1, 2].map(() => hitAndRun(port, cmd('AUTH', 'wrong') + cmd('AUTH', 'wrong again'), 'after-first-reply')));
    };
    const ways = [
      () => hitAndRun(port, cmd('AUTH', 'a') + cmd('AUTH', 'b') + cmd('AUTH', 'c') + cmd('SET', 'k', 'v'), 'end'), // closed at the third wrong password
      () => hitAndRun(port, '', 'stay'), // says nothing: the AUTH deadline closes it (or maxClients refuses it)
      () => hitAndRun(port, cmd('AUTH', 'churn password') + cmd('SET', 'k', 'v'), 'after-first-reply'),
    ];
    const growth = await census.growth({
      cycles: 30,
      warmUp: 5,
      cycle: (i) => Promise.all([holders(), ...[0, 1, 2, 3, 4, 5].map((k) => ways[(6 * i + k) % ways.length]!())]),
      settle: async () => {
        await waitFor('every client gone', () => server.stats().clients === 0);
        await quiesce();
      },
    });
    expect(growth).toEqual({});
    const st = server.stats();
    expect(st.refused).toBeGreaterThan(0);
    expect(st.authFailures).toBeGreaterThan(0);
    expect(st.idleClosed).toBeGreaterThan(0);
    expect(st.buffered).toBe(0);
  });

  it('admin clients that leave mid-request, mid-body or mid-backup, 72 of them, leave no request, backup, snapshot or resource held', async () => {
    const { log, kv } = await embedded();
    const value = Buffer.alloc(2048, 7);
    for (let i = 0; i < 2000; i += 100)
      await Promise.all(Array.from({ length: 100 }, (_, k) => log.append(encodeCommand(['SET', Buffer.from(`key${i + k}`), value]))));
    // Backups stream the map's own snapshot; `live` counts those not yet ended or stopped.
    let live = 0;
    const stateMachine = {
      apply: (e: LogEntry) => kv.apply(e),
      restore: (d: AsyncIterable<Uint8Array>) => kv.restore(d),
      snapshot: () => {
        live++;
        return (async function* () {
          try {
            yield* kv.snapshot();
          } finally {
            live--;
          }
        })();
      },
    };
    census.start();
    const handler = adminHandler(log as ReplicatedLog<unknown>, { stateMachine });
    // Mounted as an embedder would: every request it was handed is held weakly, to see it let go.
    const requests: Array<WeakRef<IncomingMessage>> = [];
    const server = createServer((req, res) => {
      requests.push(new WeakRef(req));
      handler(req, res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => (server.close(() => r()), server.closeAllConnections())));
    const { port } = server.address() as AddressInfo;
    const head = (method: string, path: string, extra = ''): string => `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}\r\n`;
    const post = (path: string, body: string, declared = Buffer.byteLength(body)): string =>
      head('POST', path, `Content-Type: application/json\r\nContent-Length: ${declared}\r\n`) + body;
    /** Sends `text`, then leaves once it has read `leaveAfter` bytes of the answer (0: at once). */
    const visit = async (text: string, leaveAfter: number): Promise<void> => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.on('error', () => undefined);
      await new Promise<void>((resolve) => s.once('connect', () => resolve()));
      s.write(text);
      let got = 0;
      if (leaveAfter === 0) setImmediate(() => s.destroy());
      else
        s.on('data', (d: Buffer) => {
          got += d.length;
          if (got >= leaveAfter) s.destroy();
        });
      await new Promise<void>((resolve) => (s.closed ? resolve() : s.once('close', () => resolve())));
    };
    const ways = [
      () => visit(head('GET', '/snapshot'), 1), // at the head of the answer
      () => visit(head('GET', '/snapshot'), 256 * 1024), // mid-backup
      () => visit(head('GET', '/snapshot'), 0), // before any answer
      () => visit(post('/members/add', '{"id": 9', 500), 0), // mid-body
      () => visit(post('/leader/transfer', '{"id": 1}'), 0), // before the answer
      () => visit(head('GET', '/metrics') + head('GET', '/status'), 1), // pipelined, leaves at the first answer
    ];
    const growth = await census.growth({
      cycles: 72,
      warmUp: 12,
      cycle: (i) => ways[i % ways.length]!(),
      settle: async () => {
        await waitFor('every backup to end', () => live === 0);
        await quiesce();
      },
    });
    expect(growth).toEqual({});
    await collect();
    expect(requests.filter((r) => r.deref() !== undefined)).toEqual([]);
    // And the endpoint still serves a whole backup.
    const res = await new Promise<IncomingMessage>((resolve, reject) => get(`http://127.0.0.1:${port}/snapshot`, resolve).on('error', reject));
    expect(res.statusCode).toBe(200);
    let bytes = 0;
    for await (const c of res as AsyncIterable<Buffer>) bytes += c.length;
    expect(bytes).toBeGreaterThan(2000 * 2048);
  });
});
