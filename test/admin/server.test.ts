// The admin endpoint over HTTP: health, status in words, Prometheus text, the token,
// and the limits (body size, connection cap).
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent, createServer, get, request, type IncomingMessage } from 'node:http';
import { crc32c } from '../../src/wal/index.js';
import type { AddressInfo } from 'node:net';
import { ADMIN_REFUSAL_CODES, adminHandler, serveAdmin, type AdminServer } from '../../src/admin/index.js';
import { KvStateMachine } from '../../src/kv/index.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { OutcomeUnknownError } from '../../src/log/errors.js';
import { enc, freePorts, tempDir } from '../log/helpers.js';
import { parsePrometheus } from './prometheus-text.js';
import { until } from '../transport/helpers.js';
import { BrokenLogger, looseErrors } from '../broken-logger.js';
import { ManualClock } from '../manual-clock.js';
import { RecordingLogger } from '../recording-logger.js';
import type { Logger } from '../../src/logger.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function node(
  opts: {
    token?: string;
    maxConnections?: number;
    maxConnectionsPerAddress?: number;
    address?: string;
    logger?: Logger;
    refusalLogClock?: ManualClock;
    authThrottle?: { failures?: number; windowMs?: number };
  } = {},
): Promise<{ log: ReplicatedLog<unknown>; admin: AdminServer; url: string }> {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const kv = new KvStateMachine();
  // A peer port, so that members can be added (they are never there: learners need no answer).
  const log = await ReplicatedLog.open<unknown>({ dataDir: t.dir, stateMachine: kv as never, listen: '127.0.0.1:0', insecure: true });
  cleanups.push(() => log.close());
  // With a peer port, open() may return before the leader's first entry commits: wait for it,
  // so what the tests count starts from a settled log.
  await log.barrier();
  const admin = await serveAdmin({
    log,
    address: opts.address ?? '127.0.0.1:0',
    token: opts.token,
    stateMachine: kv as never,
    maxConnections: opts.maxConnections,
    maxConnectionsPerAddress: opts.maxConnectionsPerAddress,
    maxBodyBytes: 1024,
    logger: opts.logger,
    refusalLogClock: opts.refusalLogClock,
    authThrottle: opts.authThrottle,
  });
  cleanups.push(() => admin.close());
  return { log, admin, url: `http://${admin.address}` };
}

const JSON_TYPE = { 'content-type': 'application/json' };

/** A request with exactly these headers (fetch() may not set Host), bounded in time. */
function send(
  address: string,
  method: 'GET' | 'POST',
  path: string,
  headers: Record<string, string>,
  body?: string,
  from?: string,
): Promise<{ status: number; json: Record<string, unknown> | null; headers: IncomingMessage['headers'] }> {
  const at = address.lastIndexOf(':');
  const [host, port] = [address.slice(0, at).replace(/^\[|\]$/g, ''), Number(address.slice(at + 1))];
  return new Promise((resolve, reject) => {
    const req = request({ host, port, method, path, headers, timeout: 10_000, ...(from !== undefined ? { localAddress: from, agent: false } : {}) }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        let json: Record<string, unknown> | null = null;
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {
          // a snapshot or the status page: only the status matters then
        }
        resolve({ status: res.statusCode!, json, headers: res.headers });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Sends `text` on a connection of its own; the status and code answered, once answered or closed. */
async function rawAnswer(address: string, text: string): Promise<[string, unknown]> {
  const i = address.lastIndexOf(':');
  const s = connect(Number(address.slice(i + 1)), address.slice(0, i));
  cleanups.push(() => void s.destroy());
  s.on('error', () => undefined);
  let got = '';
  s.on('data', (d: Buffer) => (got += d.toString('latin1')));
  s.write(text);
  await until(() => s.destroyed || /\r\n\r\n\{.*\}$/s.test(got), 'an answer');
  let code: unknown = null;
  try {
    code = (JSON.parse(got.slice(got.indexOf('\r\n\r\n') + 4)) as { code?: unknown }).code ?? 'no code';
  } catch {
    code = `not JSON: ${JSON.stringify(got.slice(0, 60))}`;
  }
  return [got.slice(9, 12), code];
}

describe('the admin endpoint', () => {
  it('health, status with words, and metrics that parse and move with writes', async () => {
    const { log, url } = await node();
    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ health: true, leader: 1 });
    const status = (await (await fetch(`${url}/status`)).json()) as Record<string, unknown>;
    expect(status.role).toBe('leader');
    expect(status).not.toHaveProperty('state');
    const first = parsePrometheus(await (await fetch(`${url}/metrics`)).text());
    for (const name of [
      'raftlog_term',
      'raftlog_is_leader',
      'raftlog_has_leader',
      'raftlog_wal_segments',
      'raftlog_wal_cached_bytes',
      'raftlog_wal_slab_bytes',
      'raftlog_leader_changes_total',
      'raftlog_append_duration_seconds_count',
    ])
      expect(first.has(name), name).toBe(true);
    expect(first.get('raftlog_is_leader')).toBe(1);
    for (let i = 0; i < 5; i++) await log.append(enc(`SET k${i} v`));
    const second = parsePrometheus(await (await fetch(`${url}/metrics`)).text());
    expect(second.get('raftlog_commit_index')).toBe(first.get('raftlog_commit_index')! + 5);
    expect(second.get('raftlog_proposals_committed_total')).toBe(5);
    expect(second.get('raftlog_append_duration_seconds_count')).toBe(5);
    expect(second.get('raftlog_append_duration_seconds_bucket{le="+Inf"}')).toBe(5);
    expect(second.get('raftlog_wal_fsync_duration_seconds_count')).toBeGreaterThan(0);
    expect(second.get('raftlog_wal_cached_bytes')).toBeGreaterThan(0);
    expect(second.get('raftlog_wal_slab_bytes')).toBeGreaterThanOrEqual(1024 * 1024); // the slab the appends were packed into
    // Nothing moves between the scrape and this: every gauge /status also reports agrees with it.
    const now = (await (await fetch(`${url}/status`)).json()) as Record<string, number>;
    const agree: Array<[string, number]> = [
      ['raftlog_term', now.term!],
      ['raftlog_commit_index', now.commit!],
      ['raftlog_applied_index', now.applied!],
      ['raftlog_snapshot_index', now.snapshotIndex!],
      ['raftlog_peers_connected', 0],
    ];
    for (const [metric, value] of agree) expect(second.get(metric), metric).toBe(value);
  });

  it('a backup: the state machine after a barrier, with its index and checksum', async () => {
    const { log, url } = await node();
    await log.append(new TextEncoder().encode(JSON.stringify(['SET', 'a', '1'])));
    // Streamed: the checksum of what was sent arrives as a trailer, after the body.
    const res = await new Promise<IncomingMessage>((resolve, reject) => get(`${url}/snapshot`, resolve).on('error', reject));
    expect(res.statusCode).toBe(200);
    expect(Number(res.headers['x-raftlog-index'])).toBe(log.status().applied);
    const parts: Buffer[] = [];
    for await (const c of res as AsyncIterable<Buffer>) parts.push(c);
    const body = Buffer.concat(parts);
    expect(body.byteLength).toBeGreaterThan(0);
    expect(Number(res.trailers['x-raftlog-crc32c'])).toBe(crc32c(body));
  });

  it('a backup whose client leaves while a chunk is being made ends, and lets its state machine stream go', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const log = await ReplicatedLog.open<unknown>({ dataDir: t.dir });
    cleanups.push(() => log.close());
    let leave!: () => void;
    const left = new Promise<void>((r) => (leave = r));
    let released = false;
    const stateMachine = {
      apply: () => undefined,
      restore: async () => undefined,
      snapshot: () =>
        (async function* () {
          try {
            yield new Uint8Array(16); // the head of the response goes out with it
            await left;
            yield new Uint8Array(8 << 20); // more than the socket takes: write() says to wait
          } finally {
            released = true;
          }
        })(),
    };
    const admin = await serveAdmin({ log, address: '127.0.0.1:0', stateMachine: stateMachine as never });
    cleanups.push(() => admin.close());
    const req = get(`http://${admin.address}/snapshot`);
    req.on('error', () => undefined);
    const res = await new Promise<IncomingMessage>((resolve) => req.once('response', resolve));
    expect(res.statusCode).toBe(200);
    req.destroy();
    await new Promise((r) => setTimeout(r, 200)); // the server has seen the client go
    leave();
    await until(() => released, 'the backup to end and release its stream');
  });

  it('a backup of many chunks adds no listener to its response per chunk', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const log = await ReplicatedLog.open<unknown>({ dataDir: t.dir });
    cleanups.push(() => log.close());
    const stateMachine = {
      apply: () => undefined,
      restore: async () => undefined,
      snapshot: () =>
        (async function* () {
          for (let i = 0; i < 16; i++) yield new Uint8Array(1 << 20); // each more than the response takes: write() says to wait
        })(),
    };
    const admin = await serveAdmin({ log, address: '127.0.0.1:0', stateMachine: stateMachine as never });
    cleanups.push(() => admin.close());
    const warnings: Error[] = [];
    const onWarning = (w: Error): number => warnings.push(w);
    process.on('warning', onWarning);
    cleanups.push(() => void process.off('warning', onWarning));
    const res = await new Promise<IncomingMessage>((resolve, reject) => get(`http://${admin.address}/snapshot`, resolve).on('error', reject));
    let bytes = 0;
    for await (const c of res as AsyncIterable<Buffer>) bytes += c.length;
    expect(bytes).toBe(16 << 20);
    await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    expect(warnings.map((w) => w.message)).toEqual([]);
  });

  it('one backup at a time: the others are answered 503 BACKUP_IN_PROGRESS and hold no snapshot', async () => {
    // Each backup holds a snapshot of the state machine (a copy of the state, for many) until
    // its client has read it; clients that never read held one each, up to the connection cap.
    const t = tempDir();
    cleanups.push(t.cleanup);
    const log = await ReplicatedLog.open<unknown>({ dataDir: t.dir });
    cleanups.push(() => log.close());
    let live = 0;
    let most = 0;
    const stateMachine = {
      apply: () => undefined,
      restore: async () => undefined,
      snapshot: () => {
        most = Math.max(most, ++live);
        return (async function* () {
          try {
            for (let i = 0; i < 64; i++) yield new Uint8Array(1 << 20);
          } finally {
            live--;
          }
        })();
      },
    };
    const admin = await serveAdmin({ log, address: '127.0.0.1:0', stateMachine: stateMachine as never });
    cleanups.push(() => admin.close());
    const i = admin.address.lastIndexOf(':');
    const [host, port] = [admin.address.slice(0, i), Number(admin.address.slice(i + 1))];
    const readers: Array<{ socket: Socket; head: () => string }> = [];
    for (let k = 0; k < 5; k++) {
      const socket = connect(port, host);
      cleanups.push(() => void socket.destroy());
      socket.on('error', () => undefined);
      let text = '';
      socket.on('data', (d: Buffer) => {
        if (text.length < 200) text += d.toString('latin1');
        socket.pause(); // reads the head and no more
      });
      await new Promise((r) => socket.once('connect', r));
      socket.write('GET /snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      readers.push({ socket, head: () => text });
      await until(() => text !== '', 'an answer');
    }
    expect(most).toBe(1);
    expect(readers[0]!.head()).toMatch(/^HTTP\/1\.1 200/);
    for (const r of readers.slice(1)) {
      expect(r.head()).toMatch(/^HTTP\/1\.1 503/);
      expect(r.head()).toContain('BACKUP_IN_PROGRESS');
    }
    // The first one's client leaves: the next backup is served.
    readers[0]!.socket.destroy();
    await until(() => live === 0, 'the backup to end');
    const res = await new Promise<IncomingMessage>((resolve, reject) => get(`http://${admin.address}/snapshot`, resolve).on('error', reject));
    expect(res.statusCode).toBe(200);
    res.destroy();
  });

  it('a state machine that throws something other than an Error is answered 500 INTERNAL, and the process lives on', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const log = await ReplicatedLog.open<unknown>({ dataDir: t.dir });
    cleanups.push(() => log.close());
    const rejections: unknown[] = [];
    const onRejection = (r: unknown): number => rejections.push(r);
    process.on('unhandledRejection', onRejection);
    cleanups.push(() => void process.off('unhandledRejection', onRejection));
    for (const thrown of [null, undefined, 'a string', 42]) {
      const stateMachine = {
        apply: () => undefined,
        restore: async () => undefined,
        snapshot: () => {
          throw thrown;
        },
      };
      const admin = await serveAdmin({ log, address: '127.0.0.1:0', stateMachine: stateMachine as never });
      cleanups.push(() => admin.close());
      const r = await send(admin.address, 'GET', '/snapshot', {});
      expect(r.status, String(thrown)).toBe(500);
      expect(r.json).toMatchObject({ code: 'INTERNAL', message: expect.any(String) });
    }
    await new Promise((r) => setImmediate(r));
    expect(rejections).toEqual([]);
  });

  it('logs a request that fails inside the node (500 INTERNAL, a backup whose stream breaks) at error with its code', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const log = await ReplicatedLog.open<unknown>({ dataDir: t.dir });
    cleanups.push(() => log.close());
    const logger = new RecordingLogger();
    let broken: 'at once' | 'midway' = 'at once';
    const stateMachine = {
      apply: () => undefined,
      restore: async () => undefined,
      snapshot: () => {
        if (broken === 'at once') throw new TypeError('snapshot() is broken');
        return (async function* () {
          yield new Uint8Array(1024);
          throw new TypeError('the stream broke');
        })();
      },
    };
    const admin = await serveAdmin({ log, address: '127.0.0.1:0', stateMachine: stateMachine as never, logger });
    cleanups.push(() => admin.close());
    expect((await send(admin.address, 'GET', '/snapshot', {})).status).toBe(500);
    broken = 'midway';
    await expect(send(admin.address, 'GET', '/snapshot', {})).rejects.toThrow();
    await until(() => logger.lines.length >= 2, 'both failures in the log');
    expect(logger.lines.map((l) => [l.level, l.fields.code])).toEqual([
      ['error', 'INTERNAL'],
      ['error', 'INTERNAL'],
    ]);
    expect(logger.lines[0]!.message).toMatch(/GET \/snapshot .*snapshot\(\) is broken/);
    expect(logger.lines[1]!.message).toMatch(/GET \/snapshot .*the stream broke/);
  });

  it('a logger that throws loses its lines, not the endpoint: a refused request is still answered 401, the next one served', async () => {
    const logger = new BrokenLogger();
    const loose = looseErrors();
    const { admin } = await node({ token: 'the-admin-token', logger });
    expect((await send(admin.address, 'GET', '/status', { host: admin.address, authorization: 'Bearer wrong' })).status).toBe(401);
    expect(logger.calls).toBeGreaterThan(0);
    expect((await send(admin.address, 'GET', '/status', { host: admin.address, authorization: 'Bearer the-admin-token' })).status).toBe(200);
    expect(loose).toEqual([]);
  });

  it('with a token: 401 without it or with a wrong one, and nothing changes', async () => {
    const { log, url } = await node({ token: 'the-admin-token' });
    for (const auth of [undefined, 'Bearer wrong', 'the-admin-token']) {
      const headers: Record<string, string> = auth === undefined ? {} : { authorization: auth };
      expect((await fetch(`${url}/status`, { headers })).status).toBe(401);
      const add = await fetch(`${url}/members/add`, { method: 'POST', headers, body: JSON.stringify({ id: 2, address: '127.0.0.1:9', learner: true }) });
      expect(add.status).toBe(401);
    }
    expect(Object.keys(log.status().members)).toEqual(['1']);
    const ok = await fetch(`${url}/status`, { headers: { authorization: 'Bearer the-admin-token' } });
    expect(ok.status).toBe(200);
    // The scheme is case-insensitive (RFC 9110 11.1), and one or more spaces follow it (RFC 6750).
    for (const auth of ['bearer the-admin-token', 'BEARER the-admin-token', 'Bearer  the-admin-token'])
      expect((await fetch(`${url}/status`, { headers: { authorization: auth } })).status, auth).toBe(200);
    for (const auth of ['Bearer the-admin-token2', 'Bearer the-admin-toke', 'Basic the-admin-token', 'Bearerthe-admin-token'])
      expect((await fetch(`${url}/status`, { headers: { authorization: auth } })).status, auth).toBe(401);
  });

  it('answers 429 TOO_MANY_AUTH_FAILURES, without checking the token, to an address that sent wrong ones too often, until they are old', async () => {
    const clock = new ManualClock();
    const { log, admin } = await node({ token: 'the-admin-token', refusalLogClock: clock, authThrottle: { failures: 3, windowMs: 60_000 } });
    const status = (from: string, token?: string) =>
      send(admin.address, 'GET', '/status', token === undefined ? {} : { authorization: `Bearer ${token}` }, undefined, from);
    // Requests without a token guess nothing: never counted.
    for (let i = 0; i < 5; i++) expect((await status('127.0.0.2')).status).toBe(401);
    for (let i = 0; i < 3; i++) expect((await status('127.0.0.2', `guess-${i}`)).status).toBe(401);
    for (const token of ['guess-3', 'the-admin-token', undefined]) {
      const r = await status('127.0.0.2', token);
      expect(r.status, token).toBe(429);
      expect(r.json).toMatchObject({ code: 'TOO_MANY_AUTH_FAILURES' });
      expect(r.headers['retry-after']).toBe('120');
    }
    const add = await send(
      admin.address,
      'POST',
      '/members/add',
      { ...JSON_TYPE, authorization: 'Bearer the-admin-token' },
      JSON.stringify({ id: 2, address: '127.0.0.1:9', learner: true }),
      '127.0.0.2',
    );
    expect(add.status).toBe(429);
    expect(Object.keys(log.status().members)).toEqual(['1']);
    // Another address is served, and its wrong tokens are its own.
    expect((await status('127.0.0.1', 'the-admin-token')).status).toBe(200);
    expect((await status('127.0.0.1', 'wrong')).status).toBe(401);
    // The failures are dropped one to two windows after they were made.
    clock.fire();
    const r = await status('127.0.0.2', 'the-admin-token');
    expect([r.status, r.headers['retry-after']]).toEqual([429, '60']);
    clock.fire();
    expect((await status('127.0.0.2', 'the-admin-token')).status).toBe(200);
    expect((await status('127.0.0.2', 'wrong')).status).toBe(401);
  });

  it('holds no timer once closed: the wrong tokens it counted are forgotten with it', async () => {
    const clock = new ManualClock();
    const { admin } = await node({ token: 'the-admin-token', refusalLogClock: clock });
    expect((await send(admin.address, 'GET', '/status', { authorization: 'Bearer guess' })).status).toBe(401);
    expect(clock.pending).toContain(60_000); // the window that counts it
    await admin.close();
    expect(clock.pending).toEqual([]);
  });

  it('by default an address may send 10 wrong tokens a minute; requests with the right one are all served', async () => {
    const { admin } = await node({ token: 'the-admin-token', refusalLogClock: new ManualClock() });
    for (let i = 0; i < 10; i++)
      expect((await send(admin.address, 'GET', '/health', { authorization: `Bearer guess-${i}` }, undefined, '127.0.0.2')).status).toBe(401);
    expect((await send(admin.address, 'GET', '/health', { authorization: 'Bearer guess-10' }, undefined, '127.0.0.2')).status).toBe(429);
    // 200 requests with the token from one address, all served.
    for (let i = 0; i < 200; i++) expect((await send(admin.address, 'GET', '/health', { authorization: 'Bearer the-admin-token' })).status).toBe(200);
  });

  it('with a token, no spelling of a route is served without it: methods, slashes, encodings, queries, absolute forms', async () => {
    // Hundreds of wrong tokens from one address: not throttled here.
    const { log, admin } = await node({ token: 'the-admin-token', authThrottle: { failures: 100_000 } });
    const paths = ['/status', '/snapshot', '/metrics', '/health', '/members/add', '/members/change', '/leader/transfer'];
    const spellings = paths.flatMap((p) => [
      p,
      `${p}/`,
      `/${p}`,
      `${p}?token=the-admin-token`,
      `${p}%2f`,
      p.replace(/[a-z]$/, (c) => `%${c.charCodeAt(0).toString(16)}`),
      p.toUpperCase(),
      `/.${p}`,
      `http://127.0.0.1${p}`,
    ]);
    const at = admin.address.lastIndexOf(':');
    const add = JSON.stringify({ id: 2, address: '127.0.0.1:9', learner: true });
    for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'])
      for (const path of [...spellings, '*', '//', '/./']) {
        const body = method === 'GET' || method === 'HEAD' ? '' : add;
        // The length is given: Node's client frames no body of a DELETE or an OPTIONS without it.
        const headers = { ...JSON_TYPE, authorization: 'Bearer wrong', 'content-length': String(body.length) };
        const status = await new Promise<number>((resolve, reject) =>
          request({ host: admin.address.slice(0, at), port: Number(admin.address.slice(at + 1)), method, path, headers }, (res) => {
            res.resume();
            resolve(res.statusCode!);
          })
            .on('error', (e) => reject(new Error(`${method} ${path}: ${e.message}`)))
            .end(body),
        );
        expect(status, `${method} ${path}`).toBe(401);
      }
    expect(Object.keys(log.status().members)).toEqual(['1']);
    // The status page alone (it holds no data) is served without the token.
    for (const path of ['/', '/?x=1']) expect((await send(admin.address, 'GET', path, {})).status, path).toBe(200);
  });

  it('logs refused requests with the address and code, at most 10 every 10 s and then their count; served ones not at all', async () => {
    const logger = new RecordingLogger();
    const clock = new ManualClock();
    const { admin } = await node({ logger, refusalLogClock: clock });
    const port = admin.address.split(':').pop()!;
    expect((await send(admin.address, 'GET', '/status', { host: `127.0.0.1:${port}` })).status).toBe(200);
    expect(logger.lines).toEqual([]);
    expect((await send(admin.address, 'GET', '/status', { host: `127.0.0.1:${port}`, origin: 'http://attacker.example' })).status).toBe(403);
    expect((await send(admin.address, 'GET', '/status', { host: 'rebind.attacker.example' })).status).toBe(403);
    expect((await send(admin.address, 'POST', '/leader/transfer', { host: `127.0.0.1:${port}`, 'content-type': 'text/plain' }, '{"id":2}')).status).toBe(415);
    expect(logger.lines.map((l) => [l.level, l.fields.code, l.fields.status])).toEqual([
      ['warn', 'CROSS_ORIGIN', 403],
      ['warn', 'HOST_NOT_ALLOWED', 403],
      ['warn', 'UNSUPPORTED_MEDIA_TYPE', 415],
    ]);
    expect(logger.lines[1]!.message).toMatch(
      /^admin: refused GET \/status from 127\.0\.0\.1:\d+: 403 HOST_NOT_ALLOWED: Host 'rebind\.attacker\.example' is refused/,
    );
    // The node as the log's own lines name it, given a logger without it.
    expect(logger.lines[2]!.fields).toMatchObject({ node: 1, remoteAddress: '127.0.0.1' });
    for (let i = 0; i < 12; i++) {
      expect((await send(admin.address, 'GET', '/health', { host: `127.0.0.1:${port}`, origin: 'http://attacker.example' })).status).toBe(403);
    }
    expect(logger.lines).toHaveLength(10);
    clock.fire();
    expect(logger.lines.at(-1)!.fields).toEqual({ node: 1, code: 'CROSS_ORIGIN', suppressed: 5 });
    expect(logger.lines.at(-1)!.message).toMatch(/^admin: refused requests: 5 more CROSS_ORIGIN not logged/);

    const withToken = await node({ token: 'the-admin-token', logger, refusalLogClock: clock, authThrottle: { failures: 100 } });
    expect((await send(withToken.admin.address, 'GET', '/status', { authorization: 'Bearer wrong' })).status).toBe(401);
    expect(logger.lines.at(-1)!.message).toMatch(/^admin: refused GET \/status from 127\.0\.0\.1:\d+: 401 UNAUTHORIZED/);
    // close() logs what is still counted, as the peer port and the RESP server do: a process that exits
    // after it would never reach the interval's end.
    for (let i = 0; i < 11; i++) expect((await send(withToken.admin.address, 'GET', '/status', { authorization: 'Bearer wrong' })).status).toBe(401);
    expect(logger.lines.at(-1)!.fields).toMatchObject({ status: 401 });
    await withToken.admin.close();
    expect(logger.lines.at(-1)!.fields).toEqual({ node: 1, code: 'UNAUTHORIZED', suppressed: 2 });
  });

  it('refuses a token that a request cannot carry, which no client could then send', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const log = await ReplicatedLog.open<unknown>({ dataDir: t.dir });
    cleanups.push(() => log.close());
    // A header is read as Latin-1: a token with other characters never matched what curl sends
    // (its UTF-8), and one with control characters or spaces at its ends could not be sent at all.
    for (const token of ['caf\u00e9-token', 'euro-\u20ac', 'tab\there', 'nul\u0000', ' spaced', 'spaced ', '\u007f'])
      await expect(serveAdmin({ log, address: '127.0.0.1:0', token }), JSON.stringify(token)).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.not.stringContaining(token),
      });
    expect(() => adminHandler(log, { token: 'caf\u00e9' })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    const admin = await serveAdmin({ log, address: '127.0.0.1:0', token: 'a token with spaces ~!@#$%^&*()' });
    cleanups.push(() => admin.close());
    expect((await send(admin.address, 'GET', '/status', { authorization: 'Bearer a token with spaces ~!@#$%^&*()' })).status).toBe(200);
  });

  it('refuses limits that would turn themselves off', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const log = await ReplicatedLog.open<unknown>({ dataDir: t.dir });
    cleanups.push(() => log.close());
    // Node takes 0 as no limit: requestTimeoutMs 0 left a silent connection open for ever, and
    // maxConnections 0 took any number.
    for (const [option, value] of [
      ['requestTimeoutMs', 0],
      ['requestTimeoutMs', -1],
      ['requestTimeoutMs', Number.NaN],
      ['requestTimeoutMs', Infinity],
      ['maxConnections', 0],
      ['maxConnections', 2.5],
      ['maxConnectionsPerAddress', 0],
      ['maxBodyBytes', -1],
      ['maxBodyBytes', Number.NaN],
      ['maxBackups', 0],
      ['authThrottle', { failures: 0 }],
      ['authThrottle', { windowMs: Infinity }],
      // A number failed hashing, as a raw TypeError.
      ['token', 5],
    ] as const)
      await expect(serveAdmin({ log, address: '127.0.0.1:0', [option]: value }), `${option} ${value}`).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.stringContaining(option),
      });
    // Each failed with a raw TypeError, reading a property of null or a list of host names.
    await expect(serveAdmin(null as never)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    for (const options of [null, { token: 5 }, { allowedHosts: 'localhost' }, { allowedHosts: [1] }])
      expect(() => adminHandler(log, options as never), JSON.stringify(options)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('refuses to listen off loopback without a token', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const log = await ReplicatedLog.open<unknown>({ dataDir: t.dir });
    cleanups.push(() => log.close());
    await expect(serveAdmin({ log, address: '0.0.0.0:0' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(serveAdmin({ log, address: '127.0.0.1:65536' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('bad requests: an oversized body, bad JSON, bad ids, unknown routes, a follower-only error', async () => {
    const { url } = await node();
    const big = await fetch(`${url}/members/add`, { method: 'POST', headers: JSON_TYPE, body: 'x'.repeat(5000) });
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ code: 'TOO_LARGE' });
    expect((await fetch(`${url}/members/remove`, { method: 'POST', headers: JSON_TYPE, body: '{nope' })).status).toBe(400);
    const badId = await fetch(`${url}/members/remove`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ id: -1 }) });
    expect(badId.status).toBe(400);
    expect(await badId.json()).toMatchObject({ code: 'INVALID_ARGUMENT' });
    const badPort = await fetch(`${url}/members/add`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ id: 2, address: '127.0.0.1:99999' }) });
    expect(badPort.status).toBe(400);
    expect(await badPort.json()).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/a port up to 65535/) });
    expect((await fetch(`${url}/nothing`)).status).toBe(404);
    const last = await fetch(`${url}/members/remove`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ id: 1 }) });
    expect(last.status).toBe(400);
    expect(await last.json()).toMatchObject({ code: 'RAFT_INVALID_CONF_CHANGE' });
    // A node the configuration does not hold: the request conflicts with the cluster as it is.
    for (const [route, body] of [
      ['promote', { id: 7 }],
      ['remove', { id: 7 }],
      ['change', { changes: [{ promote: 9 }] }],
    ] as const) {
      const res = await fetch(`${url}/members/${route}`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify(body) });
      expect(res.status, route).toBe(409);
      expect(await res.json()).toMatchObject({ code: 'NOT_MEMBER' });
    }
    for (const changes of [undefined, {}, [], [{ add: 4 }], [{ remove: 1, promote: 2 }]]) {
      const res = await fetch(`${url}/members/change`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ changes }) });
      expect(res.status, JSON.stringify(changes)).toBe(400);
      expect(await res.json()).toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
  });

  it('a membership change whose outcome is unknown is answered 503, as a timeout is: the node cannot tell now', async () => {
    const { log, url } = await node();
    log.addMember = () => Promise.reject(new OutcomeUnknownError('leadership changed before the membership change was known to commit'));
    const res = await fetch(`${url}/members/add`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ id: 2, address: '127.0.0.1:9' }) });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: 'APPEND_OUTCOME_UNKNOWN' });
  });

  it('members/add with a learner flag that is not a boolean is refused, not taken as a voter', async () => {
    const { log, url } = await node();
    for (const learner of ['true', 1, 'yes', null, {}]) {
      const res = await fetch(`${url}/members/add`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ id: 2, address: '127.0.0.1:9', learner }) });
      expect(res.status, JSON.stringify(learner)).toBe(400);
      expect(await res.json()).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/learner/) });
    }
    expect(log.status().conf).toEqual({ voters: [1], learners: [] });
    const res = await fetch(`${url}/members/add`, {
      method: 'POST',
      headers: JSON_TYPE,
      body: JSON.stringify({ id: 2, address: '127.0.0.1:9', learner: true }),
    });
    expect(res.status).toBe(200);
    expect(log.status().conf).toEqual({ voters: [1], learners: [2] });
  });

  it('a route asked with another method: 405 METHOD_NOT_ALLOWED with the method it takes, not 404', async () => {
    const { log, admin } = await node();
    const host = { host: admin.address };
    for (const [method, path, allow] of [
      ['GET', '/members/add', 'POST'],
      ['GET', '/leader/transfer', 'POST'],
      ['POST', '/status', 'GET, HEAD'],
      ['HEAD', '/snapshot', 'GET'],
      ['DELETE', '/snapshot', 'GET'],
      ['OPTIONS', '/metrics', 'GET, HEAD'],
      ['POST', '/', 'GET, HEAD'],
      ['PUT', '/members/remove?id=1', 'POST'],
    ] as const) {
      const r = await new Promise<IncomingMessage>((resolve, reject) => {
        const i = admin.address.lastIndexOf(':');
        request({ host: admin.address.slice(0, i), port: Number(admin.address.slice(i + 1)), method, path, headers: host }, resolve)
          .on('error', reject)
          .end();
      });
      const text = await new Promise<string>((resolve) => {
        let t = '';
        r.on('data', (c: Buffer) => (t += c.toString()));
        r.on('end', () => resolve(t));
      });
      expect(r.statusCode, `${method} ${path}`).toBe(405);
      expect(r.headers.allow, `${method} ${path}`).toBe(allow);
      if (method !== 'HEAD') expect(JSON.parse(text)).toMatchObject({ code: 'METHOD_NOT_ALLOWED', message: expect.stringContaining(allow) });
    }
    // A path that is no route stays 404, whatever the method.
    for (const [method, path] of [
      ['GET', '/status/'],
      ['GET', '//status'],
      ['GET', '/%73tatus'],
      ['POST', '/members'],
    ] as const)
      expect((await send(admin.address, method as 'GET' | 'POST', path, host)).json, `${method} ${path}`).toMatchObject({ code: 'NOT_FOUND' });
    expect(Object.keys(log.status().members)).toEqual(['1']);
  });

  it("HEAD of /health, /status, /metrics and the page is answered as GET without the body: a probe's HEAD /health sees 200, or 503", async () => {
    const { log, admin } = await node();
    const at = admin.address.lastIndexOf(':');
    const ask = (method: 'GET' | 'HEAD', path: string) =>
      new Promise<{ status: number; type: string | undefined; body: string }>((resolve, reject) => {
        request({ host: admin.address.slice(0, at), port: Number(admin.address.slice(at + 1)), method, path, headers: { host: admin.address } }, (r) => {
          let body = '';
          r.on('data', (c: Buffer) => (body += c.toString()));
          r.on('end', () => resolve({ status: r.statusCode!, type: r.headers['content-type'], body }));
        })
          .on('error', reject)
          .end();
      });
    for (const path of ['/health', '/status', '/metrics', '/']) {
      const [head, get] = [await ask('HEAD', path), await ask('GET', path)];
      expect(head, path).toEqual({ status: 200, type: get.type, body: '' });
      expect(get.status, path).toBe(200);
      expect(get.body.length, path).toBeGreaterThan(0);
    }
    await log.close();
    expect(await ask('HEAD', '/health')).toMatchObject({ status: 503, body: '' });
  });

  /** /health of a node whose status reads as a real node's with `status(id)` over it, and whose reads never come back. */
  async function healthOf(status: (id: number) => object): Promise<{ status: number; body: unknown }> {
    const { log } = await node();
    const removed = {
      id: log.id,
      status: () => ({ ...log.status(), ...status(log.id) }),
      metrics: () => log.metrics(),
      barrier: () => new Promise<void>(() => undefined),
    } as unknown as ReplicatedLog<unknown>;
    const admin = await serveAdmin({ log: removed, address: '127.0.0.1:0' });
    cleanups.push(() => admin.close());
    const res = await fetch(`http://${admin.address}/health`);
    return { status: res.status, body: await res.json() };
  }

  it('/health of a node removed from the cluster is 503 NOT_MEMBER, not a TIMEOUT blaming the leader', async () => {
    // As a removed node's status reads (seen on one removed from three): the configuration it
    // applied without it, the leader it last heard still named, and reads that never come back.
    const res = await healthOf(() => ({ role: 'follower', lead: 2, conf: { voters: [2, 3], learners: [] } }));
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ health: false, reason: 'NOT_MEMBER', message: expect.stringMatching(/removed/) });
  });

  it('/health of a node a member refuses as removed, before it applied its removal, is 503 NOT_MEMBER, not NO_LEADER', async () => {
    // As such a node's status reads: still in the configuration it applied, no leader, and the
    // member that refused it named.
    const res = await healthOf((id) => ({ role: 'pre-candidate', lead: 0, conf: { voters: [id, 2, 3], learners: [] }, removedBy: 2 }));
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ health: false, reason: 'NOT_MEMBER', message: expect.stringMatching(/node 2 refuses .* removed/) });
  });

  it('an oversized body sent without a length (chunked) is answered 413, not cut off', async () => {
    const { admin } = await node();
    const big = await send(admin.address, 'POST', '/members/add', { ...JSON_TYPE, 'transfer-encoding': 'chunked' }, 'x'.repeat(5000));
    expect(big.status).toBe(413);
    expect(big.json).toMatchObject({ code: 'TOO_LARGE' });
  });

  it('several membership changes in one request', async () => {
    const { log, url } = await node();
    const res = await fetch(`${url}/members/change`, {
      method: 'POST',
      headers: JSON_TYPE,
      body: JSON.stringify({
        changes: [
          { addLearner: 2, address: '127.0.0.1:1' },
          { addLearner: 3, address: '127.0.0.1:2' },
        ],
      }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, voters: [1], learners: [2, 3] });
    expect(log.status().members).toMatchObject({ 2: '127.0.0.1:1', 3: '127.0.0.1:2' });
  });

  // A web page in a browser on the node's host reaches a loopback endpoint without a token.
  describe('refuses what a web page could send', () => {
    const add = JSON.stringify({ id: 2, address: '127.0.0.1:9', learner: true });

    it('any request with an Origin header: 403 CROSS_ORIGIN, and nothing changes', async () => {
      const { log, admin } = await node();
      const host = { host: admin.address };
      // A cross-site form or fetch POST as text/plain needs no CORS preflight; a JSON one is refused too.
      for (const type of ['text/plain;charset=UTF-8', 'application/json']) {
        const r = await send(admin.address, 'POST', '/members/add', { ...host, origin: 'http://attacker.example', 'content-type': type }, add);
        expect(r.status, type).toBe(403);
        expect(r.json).toMatchObject({ code: 'CROSS_ORIGIN' });
      }
      for (const path of ['/status', '/snapshot']) {
        const r = await send(admin.address, 'GET', path, { ...host, origin: 'null' });
        expect(r.status, path).toBe(403);
        expect(r.json).toMatchObject({ code: 'CROSS_ORIGIN' });
      }
      expect(Object.keys(log.status().members)).toEqual(['1']);
    });

    it('a GET a page makes without Origin (<img src>, a no-cors fetch) from another site: 403 CROSS_ORIGIN, and no backup is taken', async () => {
      // Browsers send Origin with a GET only in CORS mode; an <img src> or a no-cors fetch of
      // /snapshot took a barrier and a snapshot. They send Sec-Fetch-Site to loopback (a
      // trustworthy origin): 'cross-site', or 'same-site' from another port of localhost.
      const t = tempDir();
      cleanups.push(t.cleanup);
      const log = await ReplicatedLog.open<unknown>({ dataDir: t.dir });
      cleanups.push(() => log.close());
      let snapshots = 0;
      const stateMachine = {
        apply: () => undefined,
        restore: async () => undefined,
        snapshot: () => (snapshots++, new Uint8Array(4)),
      };
      const admin = await serveAdmin({ log, address: '127.0.0.1:0', stateMachine: stateMachine as never });
      cleanups.push(() => admin.close());
      const page = { host: admin.address, 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image', referer: 'http://attacker.example/' };
      for (const site of ['cross-site', 'same-site', 'CROSS-SITE'])
        for (const path of ['/snapshot', '/status', '/metrics']) {
          const r = await send(admin.address, 'GET', path, { ...page, 'sec-fetch-site': site });
          expect(r.status, `${site} ${path}`).toBe(403);
          expect(r.json).toMatchObject({ code: 'CROSS_ORIGIN' });
        }
      expect(snapshots).toBe(0);
      // A page cannot navigate to a backup either ...
      const navigate = { host: admin.address, 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };
      expect((await send(admin.address, 'GET', '/snapshot', navigate)).status).toBe(403);
      expect(snapshots).toBe(0);
      // ... but a link to the status page (which holds no data) from elsewhere is followed.
      expect((await send(admin.address, 'GET', '/', navigate)).status).toBe(200);
      expect((await send(admin.address, 'GET', '/', { ...navigate, 'sec-fetch-mode': 'no-cors' })).status).toBe(403);
      // The status page's own requests (same-origin), and an address typed in the bar (none), are served.
      for (const site of ['same-origin', 'none'])
        expect((await send(admin.address, 'GET', '/snapshot', { host: admin.address, 'sec-fetch-site': site })).status, site).toBe(200);
      expect(snapshots).toBe(2);
    });

    it('a Host that is not loopback, an IP address or the listen host (DNS rebinding): 403 HOST_NOT_ALLOWED', async () => {
      const { log, admin } = await node();
      for (const host of ['rebind.attacker.example', `rebind.attacker.example:${admin.address.split(':').pop()}`, 'localhost.attacker.example']) {
        for (const [method, path] of [
          ['GET', '/status'],
          ['GET', '/snapshot'],
          ['GET', '/'],
        ] as const) {
          const r = await send(admin.address, method, path, { host });
          expect(r.status, `${host} ${path}`).toBe(403);
          expect(r.json).toMatchObject({ code: 'HOST_NOT_ALLOWED' });
        }
        const r = await send(admin.address, 'POST', '/members/add', { host, ...JSON_TYPE }, add);
        expect(r.status, host).toBe(403);
        expect(r.json).toMatchObject({ code: 'HOST_NOT_ALLOWED' });
      }
      expect(Object.keys(log.status().members)).toEqual(['1']);
    });

    it('a body that is not Content-Type: application/json: 415 UNSUPPORTED_MEDIA_TYPE', async () => {
      const { log, admin } = await node();
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', undefined]) {
        const headers: Record<string, string> = { host: admin.address, ...(type === undefined ? {} : { 'content-type': type }) };
        const r = await send(admin.address, 'POST', '/members/add', headers, add);
        expect(r.status, type).toBe(415);
        expect(r.json).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE' });
      }
      expect(Object.keys(log.status().members)).toEqual(['1']);
    });

    it("an operator's request (no Origin, Host 127.0.0.1:port or localhost, JSON) is served", async () => {
      const { log, admin } = await node();
      const port = admin.address.split(':').pop()!;
      const r = await send(admin.address, 'POST', '/members/add', { host: `127.0.0.1:${port}`, 'content-type': 'application/json; charset=utf-8' }, add);
      expect(r.status).toBe(200);
      expect(r.json).toEqual({ ok: true });
      expect(log.status().members).toMatchObject({ 2: '127.0.0.1:9' });
      for (const host of [`localhost:${port}`, 'LOCALHOST', `[::1]:${port}`, '10.0.0.7:80'])
        expect((await send(admin.address, 'GET', '/status', { host })).status, host).toBe(200);
      // A POST without a body needs no content type: it is refused for its missing id, not its type.
      expect((await send(admin.address, 'POST', '/members/remove', { host: `127.0.0.1:${port}` })).json).toMatchObject({ code: 'INVALID_ARGUMENT' });
    });

    it('the listen host is served by name; with a token any name is (a page cannot send the token)', async () => {
      const named = await node({ address: 'localhost:0' });
      expect((await send(named.admin.address, 'GET', '/status', { host: `LocalHost:${named.admin.address.split(':').pop()}` })).status).toBe(200);
      const { admin } = await node({ token: 'the-admin-token' });
      const auth = { authorization: 'Bearer the-admin-token' };
      expect((await send(admin.address, 'GET', '/status', { host: 'node1.example.internal:7481', ...auth })).status).toBe(200);
      // An Origin is refused even with the token.
      expect((await send(admin.address, 'GET', '/status', { host: admin.address, origin: 'http://attacker.example', ...auth })).status).toBe(403);
    });
  });

  /**
   * A log-only endpoint and a raw connection to it that sends `first`, then `drip` every 100 ms;
   * whether the server closed it within `ms`, and what it was answered.
   */
  async function dripping(requestTimeoutMs: number, first: string, drip: string, ms: number): Promise<{ closed: boolean; answer: string }> {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const log = await ReplicatedLog.open<unknown>({ dataDir: t.dir });
    cleanups.push(() => log.close());
    const admin = await serveAdmin({ log, address: '127.0.0.1:0', requestTimeoutMs });
    cleanups.push(() => admin.close());
    const i = admin.address.lastIndexOf(':');
    const s = connect(Number(admin.address.slice(i + 1)), admin.address.slice(0, i));
    cleanups.push(() => void s.destroy());
    let answer = '';
    s.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    const closed = new Promise<boolean>((resolve) => s.once('close', () => resolve(true)));
    await new Promise((r) => s.once('connect', r));
    s.write(first);
    const dripping = setInterval(() => s.writable && s.write(drip), 100);
    cleanups.push(() => clearInterval(dripping));
    const out = await Promise.race([closed, new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);
    clearInterval(dripping);
    return { closed: out, answer };
  }

  it('answers a body trickled without end with 408 once the request timeout has passed, not up to 30 s later', async () => {
    const post = 'POST /members/add HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n';
    const { answer } = await dripping(1_000, post, '{', 10_000);
    // Answered within 10 s: Node's first check at its default interval comes 30 s after listen.
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  });

  it('answers headers trickled a byte at a time, or only line ends, 408 at the request timeout, and headers over 16 KiB 431', async () => {
    const trickled = await dripping(300, 'GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ', 'a', 10_000);
    expect(trickled).toEqual({ closed: true, answer: expect.stringMatching(/^HTTP\/1\.1 408/) as unknown });
    const blank = await dripping(300, '', '\r\n', 10_000);
    expect(blank).toEqual({ closed: true, answer: expect.stringMatching(/^HTTP\/1\.1 408/) as unknown });
    const huge = await dripping(300, `GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: ${'a'.repeat(20_000)}\r\n\r\n`, '', 10_000);
    expect(huge).toEqual({ closed: true, answer: expect.stringMatching(/^HTTP\/1\.1 431/) as unknown });
  });

  it('closes a connection that has sent only line ends since its answer, at the keep-alive timeout, not never', async () => {
    // The parser skips line ends between requests, and each one put off the keep-alive timeout:
    // a stranger held a connection for ever, and 4 of them every connection of the endpoint.
    const { closed, answer } = await dripping(300, 'GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', '\r\n', 20_000);
    expect(closed).toBe(true);
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
  });

  it('closes a connection that sends only line ends after its answer at the keep-alive and headers timeouts, however long the request timeout', async () => {
    // It waited 3 times requestTimeoutMs: 180 s here, where a connection that asks nothing is
    // owed the keep-alive timeout (5 s) and a request begun within it its headers timeout (10 s).
    const { closed, answer } = await dripping(60_000, 'GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', '\r\n', 25_000);
    expect(closed).toBe(true);
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
  }, 40_000);

  it('answers a request whose answer takes longer than 3 times a small request timeout, on a kept-alive connection', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const log = await ReplicatedLog.open<unknown>({ dataDir: t.dir });
    cleanups.push(() => log.close());
    // A node that names a leader but whose linearizable reads never come back: /health answers
    // 503 TIMEOUT after its 2 s. The connection's idle timeout (1.5 s here) dropped it first.
    const stale = { status: () => ({ ...log.status(), role: 'follower', lead: 2 }), barrier: () => new Promise<void>(() => undefined) };
    const admin = await serveAdmin({ log: stale as unknown as ReplicatedLog<unknown>, address: '127.0.0.1:0', requestTimeoutMs: 500 });
    cleanups.push(() => admin.close());
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(() => agent.destroy());
    const ask = (path: string) =>
      new Promise<{ status: number; body: string; reused: boolean }>((resolve, reject) => {
        const req = get(`http://${admin.address}${path}`, { agent }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, body, reused: req.reusedSocket }));
          res.on('error', reject);
        });
        req.on('error', reject);
      });
    expect((await ask('/status')).status).toBe(200);
    const health = await ask('/health');
    expect(health).toMatchObject({ status: 503, reused: true });
    expect(JSON.parse(health.body)).toMatchObject({ health: false, reason: 'TIMEOUT' });
  });

  it('closes a connection that sends requests without reading the answers, and serves only a few of them', async () => {
    // Node parses every request a connection sends (HTTP pipelining) and queues each answer until
    // the client reads the one before: 8 unread connections of 1 MiB of GET /metrics held 350 MB.
    const { log, admin } = await node();
    let served = 0;
    const status = log.status.bind(log);
    log.status = () => {
      served++;
      return status();
    };
    const i = admin.address.lastIndexOf(':');
    const s = connect(Number(admin.address.slice(i + 1)), admin.address.slice(0, i));
    cleanups.push(() => void s.destroy());
    s.on('error', () => undefined); // the server resets it
    await new Promise((r) => s.once('connect', r));
    s.pause();
    const one = 'GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
    s.write(one.repeat(20_000));
    await new Promise((r) => setTimeout(r, 1_000)); // the server reads what it will
    let answers = 0;
    s.on('data', (d: Buffer) => (answers += d.toString('latin1').split('HTTP/1.1 200').length - 1));
    const closed = new Promise<boolean>((resolve) => s.once('close', () => resolve(true)));
    s.resume();
    expect(await Promise.race([closed, new Promise<boolean>((r) => setTimeout(() => r(false), 5_000))])).toBe(true);
    expect(served).toBeLessThanOrEqual(8);
    expect(answers).toBeLessThanOrEqual(8);
    // An operator's requests, one after another on one connection, are all served.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(() => agent.destroy());
    for (let k = 0; k < 20; k++) {
      const res = await new Promise<IncomingMessage>((resolve, reject) => get(`http://${admin.address}/health`, { agent }, resolve).on('error', reject));
      res.resume();
      expect(res.statusCode).toBe(200);
    }
  });

  it('counts, logs and names the closes of a connection that pipelines too many requests and of one that reads nothing; others are served', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    // A snapshot without end: a backup no client that reads nothing can take the whole of.
    const endless = {
      apply: () => undefined,
      restore: async () => undefined,
      snapshot: () =>
        (async function* () {
          for (;;) yield new Uint8Array(64 * 1024);
        })(),
    };
    const log = await ReplicatedLog.open<unknown>({ dataDir: t.dir, stateMachine: endless as never });
    cleanups.push(() => log.close());
    const logger = new RecordingLogger();
    // requestTimeoutMs 300: a client that takes none of an answer for 900 ms is dropped.
    const admin = await serveAdmin({
      log,
      address: '127.0.0.1:0',
      stateMachine: endless as never,
      requestTimeoutMs: 300,
      logger,
      refusalLogClock: new ManualClock(),
    });
    cleanups.push(() => admin.close());
    const i = admin.address.lastIndexOf(':');
    const raw = async (): Promise<{ s: Socket; text: () => string; closed: Promise<void> }> => {
      const s = connect(Number(admin.address.slice(i + 1)), admin.address.slice(0, i));
      cleanups.push(() => void s.destroy());
      s.on('error', () => undefined);
      await new Promise((r) => s.once('connect', r));
      let text = '';
      s.pause();
      s.on('data', (d: Buffer) => (text += d.toString('latin1')));
      return { s, text: () => text, closed: new Promise((r) => s.once('close', () => r())) };
    };
    // A well-behaved client on its own connection, asking one request after another throughout.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(() => agent.destroy());
    const ask = (path: string): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) =>
        get(`http://${admin.address}${path}`, { agent }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        }).on('error', reject),
      );
    const refusedNow = async (): Promise<Record<string, number>> => {
      const out: Record<string, number> = {};
      for (const [k, v] of parsePrometheus((await ask('/metrics')).body))
        if (k.startsWith('raftlog_admin_refused_total{')) out[/code="([A-Z_]+)"/.exec(k)![1]!] = v;
      return out;
    };
    let operatorDone = false;
    cleanups.push(() => void (operatorDone = true));
    const operator = (async () => {
      const statuses: Array<number | string> = [];
      while (!operatorDone) {
        statuses.push(
          await ask('/health').then(
            (r) => r.status,
            (err: Error) => err.message,
          ),
        );
        await new Promise((r) => setTimeout(r, 20));
      }
      return statuses;
    })();

    // Neither reads: the one sends 20 requests at once, the other asks for a backup.
    const piped = await raw();
    piped.s.write('GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'.repeat(20));
    const unread = await raw();
    unread.s.write(`GET /snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    const want = { ...Object.fromEntries(ADMIN_REFUSAL_CODES.map((c) => [c, 0])), TOO_MANY_PIPELINED: 1, ANSWERS_UNREAD: 1 };
    let refused = await refusedNow();
    for (let k = 0; k < 100 && JSON.stringify(refused) !== JSON.stringify(want); k++) {
      await new Promise((r) => setTimeout(r, 100));
      refused = await refusedNow();
    }
    expect(refused).toEqual(want);
    operatorDone = true;
    const statuses = await operator;
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);

    // Both were closed; the pipelining client reads 8 answers and then why.
    piped.s.resume();
    unread.s.resume();
    await Promise.all([piped.closed, unread.closed]);
    const answers = piped.text().split(/(?=HTTP\/1\.1 )/);
    expect(answers.map((a) => a.slice(0, 12))).toEqual([...Array<string>(8).fill('HTTP/1.1 200'), 'HTTP/1.1 429']);
    const refusal = answers[8]!;
    expect(refusal).toMatch(/\r\nconnection: close\r\n/i);
    expect(JSON.parse(refusal.slice(refusal.indexOf('\r\n\r\n') + 4))).toMatchObject({ code: 'TOO_MANY_PIPELINED' });
    // Counted once each, however long they took to close.
    expect(await refusedNow()).toEqual(want);
    // One line for each connection, at warn, with the client's address.
    const lines = logger.lines.filter((l) => /TOO_MANY_PIPELINED|ANSWERS_UNREAD/.test(String(l.fields.code)));
    expect(lines.map((l) => [l.level, l.fields.code, l.fields.remoteAddress])).toEqual([
      ['warn', 'TOO_MANY_PIPELINED', '127.0.0.1'],
      ['warn', 'ANSWERS_UNREAD', '127.0.0.1'],
    ]);
    expect(lines[0]!.message).toMatch(/^admin: closed a connection from 127\.0\.0\.1:\d+: /);
  });

  it('names, counts and logs the requests it closes a connection for: too slow, headers or body too large, not HTTP', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const log = await ReplicatedLog.open<unknown>({ dataDir: t.dir });
    cleanups.push(() => log.close());
    const logger = new RecordingLogger();
    const admin = await serveAdmin({ log, address: '127.0.0.1:0', requestTimeoutMs: 300, maxBodyBytes: 1024, logger, refusalLogClock: new ManualClock() });
    cleanups.push(() => admin.close());
    const i = admin.address.lastIndexOf(':');
    /** Sends `first`, then `drip` every 100 ms, until the server closes the connection; what it was answered. */
    const exchange = async (first: string, drip = ''): Promise<string> => {
      const s = connect(Number(admin.address.slice(i + 1)), admin.address.slice(0, i));
      cleanups.push(() => void s.destroy());
      s.on('error', () => undefined);
      let text = '';
      s.on('data', (d: Buffer) => (text += d.toString('latin1')));
      await new Promise((r) => s.once('connect', r));
      s.write(first);
      const dripping = setInterval(() => s.writable && drip !== '' && s.write(drip), 100);
      cleanups.push(() => clearInterval(dripping));
      await Promise.race([new Promise((r) => s.once('close', r)), new Promise((r) => setTimeout(r, 15_000))]);
      clearInterval(dripping);
      return text;
    };
    /** The status and code of the last answer in `text`. */
    const last = (text: string): [string, unknown] => {
      const at = text.lastIndexOf('HTTP/1.1 ');
      const body = text.slice(text.indexOf('\r\n\r\n', at) + 4);
      let code: unknown = null;
      try {
        code = (JSON.parse(body) as { code?: unknown }).code;
      } catch {
        code = `not JSON: ${body.slice(0, 40)}`;
      }
      return [text.slice(at + 9, at + 12), code];
    };
    const get = 'GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
    expect(last(await exchange('GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ', 'a'))).toEqual(['408', 'REQUEST_TIMEOUT']);
    expect(last(await exchange('POST /members/add HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n', '{'))).toEqual(
      ['408', 'REQUEST_TIMEOUT'],
    );
    // Only line ends after an answer: closed at the keep-alive and headers timeouts.
    const waited = await exchange(get, '\r\n');
    expect(waited.startsWith('HTTP/1.1 200')).toBe(true);
    expect(last(waited)).toEqual(['408', 'REQUEST_TIMEOUT']);
    expect(last(await exchange(`GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: ${'a'.repeat(20_000)}\r\n\r\n`))).toEqual(['431', 'HEADERS_TOO_LARGE']);
    expect(last(await exchange('POST /members/add HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n'))).toEqual([
      '413',
      'TOO_LARGE',
    ]);
    expect(last(await exchange('HELLO there\r\n\r\n'))).toEqual(['400', 'MALFORMED_REQUEST']);

    const refused: Record<string, number> = {};
    const metrics = await fetch(`http://${admin.address}/metrics`);
    for (const [k, v] of parsePrometheus(await metrics.text())) if (k.startsWith('raftlog_admin_refused_total{')) refused[/code="([A-Z_]+)"/.exec(k)![1]!] = v;
    expect(refused).toEqual({
      ...Object.fromEntries(ADMIN_REFUSAL_CODES.map((c) => [c, 0])),
      REQUEST_TIMEOUT: 3,
      HEADERS_TOO_LARGE: 1,
      TOO_LARGE: 1,
      MALFORMED_REQUEST: 1,
    });
    const lines = logger.lines.filter((l) => l.level === 'warn' && l.fields.remoteAddress === '127.0.0.1');
    expect(lines.map((l) => l.fields.code)).toEqual([
      'REQUEST_TIMEOUT',
      'REQUEST_TIMEOUT',
      'REQUEST_TIMEOUT',
      'HEADERS_TOO_LARGE',
      'TOO_LARGE',
      'MALFORMED_REQUEST',
    ]);
  }, 40_000);

  it('answers with a code and counts the requests Node used to refuse bare: no Host, two Hosts, CONNECT; serves an unknown Expect', async () => {
    const { admin } = await node();
    const answer = (text: string): Promise<[string, unknown]> => rawAnswer(admin.address, text);
    expect(await answer('GET /status HTTP/1.1\r\n\r\n')).toEqual(['400', 'MALFORMED_REQUEST']);
    expect(await answer('GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: rebind.attacker.example\r\n\r\n')).toEqual(['400', 'MALFORMED_REQUEST']);
    expect(await answer('CONNECT attacker.example:443 HTTP/1.1\r\nHost: attacker.example:443\r\n\r\n')).toEqual(['400', 'MALFORMED_REQUEST']);
    expect(await answer('GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: something\r\n\r\n')).toEqual(['200', 'no code']);
    // HTTP/1.0 has no Host to require.
    expect(await answer('GET /status HTTP/1.0\r\n\r\n')).toEqual(['200', 'no code']);
    const metrics = parsePrometheus(await (await fetch(`http://${admin.address}/metrics`)).text());
    expect(metrics.get('raftlog_admin_refused_total{code="MALFORMED_REQUEST"}')).toBe(3);
  }, 40_000);

  it('refuses a request line it cannot serve with a stable code: a path too long, control characters, a method it does not serve', async () => {
    const { admin, log } = await node({ token: 'the-admin-token' });
    const auth = 'Host: 127.0.0.1\r\nAuthorization: Bearer the-admin-token\r\n\r\n';
    const answer = (line: string): Promise<[string, unknown]> => rawAnswer(admin.address, `${line}${auth}`);
    /** The message of the answer to `text`, sent on a connection of its own. */
    const message = async (text: string): Promise<string> => {
      const i = admin.address.lastIndexOf(':');
      const s = connect(Number(admin.address.slice(i + 1)), admin.address.slice(0, i));
      cleanups.push(() => void s.destroy());
      s.on('error', () => undefined);
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString('latin1')));
      s.write(text);
      await until(() => s.destroyed || /\r\n\r\n\{.*\}$/s.test(got), 'an answer');
      return String((JSON.parse(got.slice(got.indexOf('\r\n\r\n') + 4)) as { message?: unknown }).message);
    };
    const long = `GET /${'a'.repeat(20_000)} HTTP/1.1\r\n`;
    expect(await answer(long)).toEqual(['431', 'HEADERS_TOO_LARGE']);
    // The headers were a few bytes: the answer names the path too.
    expect(await message(`${long}${auth}`)).toMatch(/request line and headers are over 16 KiB/);
    for (const c of ['\x00', '\x01', '\t', '\x1b[31m', '\x7f', '\x9b31m'])
      expect([JSON.stringify(c), await answer(`GET /sta${c}tus HTTP/1.1\r\n`)]).toEqual([JSON.stringify(c), ['400', 'MALFORMED_REQUEST']]);
    expect(await answer('FOO /status HTTP/1.1\r\n')).toEqual(['400', 'MALFORMED_REQUEST']);
    expect(await answer('DELETE /members/remove HTTP/1.1\r\n')).toEqual(['405', 'METHOD_NOT_ALLOWED']);
    // A removal sent with another method changes nothing.
    expect(
      await rawAnswer(
        admin.address,
        `PUT /members/remove HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer the-admin-token\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{"id":1}`,
      ),
    ).toEqual(['405', 'METHOD_NOT_ALLOWED']);
    expect(log.status().conf.voters).toEqual([1]);
  });

  it('reads every header it checks: two Authorization headers are refused, and none is dropped past the 2000th', async () => {
    const { admin } = await node({ token: 'the-admin-token' });
    const answer = (text: string): Promise<[string, unknown]> => rawAnswer(admin.address, text);
    const right = 'Authorization: Bearer the-admin-token\r\n';
    const wrong = 'Authorization: Bearer wrong\r\n';
    expect(await answer(`GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n${right}\r\n`)).toEqual(['200', 'no code']);
    expect(await answer(`GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n${right}${wrong}\r\n`)).toEqual(['400', 'MALFORMED_REQUEST']);
    expect(await answer(`GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n${wrong}${right}\r\n`)).toEqual(['400', 'MALFORMED_REQUEST']);
    const filler = 'x:y\r\n'.repeat(2100);
    expect(await answer(`GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n${right}${filler}Origin: http://attacker.example\r\n\r\n`)).toEqual([
      '403',
      'CROSS_ORIGIN',
    ]);
    expect(await answer(`GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n${right}${filler}${wrong}\r\n`)).toEqual(['400', 'MALFORMED_REQUEST']);
  });

  it('caps connections, counting and logging each closed past the cap', async () => {
    const logger = new RecordingLogger();
    const { admin, url } = await node({ maxConnections: 2, logger, refusalLogClock: new ManualClock() });
    const [host, port] = [admin.address.slice(0, admin.address.lastIndexOf(':')), Number(admin.address.slice(admin.address.lastIndexOf(':') + 1))];
    const held: Socket[] = [];
    cleanups.push(() => held.forEach((s) => s.destroy()));
    for (let i = 0; i < 2; i++) {
      const s = connect(port, host);
      held.push(s);
      await new Promise((r) => s.once('connect', r));
    }
    // The third is accepted by the kernel and closed by the server at once.
    const third = connect(port, host);
    held.push(third);
    await new Promise<void>((resolve) => third.once('close', () => resolve()));
    held.splice(0).forEach((s) => s.destroy());
    // The server counts the freed connections when it sees them close. A connection it closes
    // before then, unanswered, Node's fetch waits on for ever: each try has a deadline.
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++)
      status = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1_000) }).then(
        (r) => r.status,
        () => new Promise<number>((r) => setTimeout(() => r(0), 50)),
      );
    expect(status).toBe(200);
    const metrics = parsePrometheus(await (await fetch(`${url}/metrics`)).text());
    // The third, and any try above that came before the server saw the two close.
    const closed = logger.lines.map((l) => l.message).filter((m) => m.includes('maxConnections'));
    expect(closed.length).toBeGreaterThanOrEqual(1);
    for (const m of closed) expect(m).toMatch(/^admin: closed a connection from 127\.0\.0\.1 at once: 2 connections are open/);
    expect(metrics.get('raftlog_admin_refused_total{code="TOO_MANY_CONNECTIONS"}')).toBe(closed.length);
  });

  it('caps the connections of one address, answering the one past it 503 TOO_MANY_CONNECTIONS, so that others are still served', async () => {
    const logger = new RecordingLogger();
    const { admin } = await node({ maxConnections: 8, maxConnectionsPerAddress: 3, logger, refusalLogClock: new ManualClock() });
    const at = admin.address.lastIndexOf(':');
    const [host, port] = [admin.address.slice(0, at), Number(admin.address.slice(at + 1))];
    const open = (from: string): Promise<Socket> =>
      new Promise((resolve, reject) => {
        const s = connect({ host, port, localAddress: from }, () => resolve(s));
        cleanups.push(() => void s.destroy());
        s.once('error', reject);
      });
    /** What the server sends on a connection that sends nothing, until it closes it (or 5 s pass). */
    const answer = (s: Socket): Promise<string> =>
      new Promise((resolve) => {
        let text = '';
        s.on('data', (d: Buffer) => (text += d.toString('latin1')));
        const timer = setTimeout(() => resolve(`still open after 5 s: ${text}`), 5_000);
        s.once('close', () => {
          clearTimeout(timer);
          resolve(text);
        });
      });
    // A stranger holds as many idle connections as it may: the next one is refused at once.
    const held = [];
    for (let i = 0; i < 3; i++) held.push(await open('127.0.0.2'));
    const over = await answer(await open('127.0.0.2'));
    expect(over).toMatch(/^HTTP\/1\.1 503 /);
    expect(over).toMatch(/\r\nconnection: close\r\n/i);
    expect(JSON.parse(over.slice(over.indexOf('\r\n\r\n') + 4))).toMatchObject({ code: 'TOO_MANY_CONNECTIONS' });
    // A request sent at once on such a connection gets the answer too, not a reset.
    const refused = await send(admin.address, 'GET', '/health', {}, undefined, '127.0.0.2');
    expect(refused.status).toBe(503);
    expect(refused.json).toMatchObject({ code: 'TOO_MANY_CONNECTIONS' });
    expect(logger.lines.at(-1)!.message).toMatch(/^admin: refused a connection from 127\.0\.0\.2:\d+: 3 connections from 127\.0\.0\.2/);
    // An operator elsewhere is served, and so is the stranger once it lets one go.
    expect((await send(admin.address, 'GET', '/health', {}, undefined, '127.0.0.1')).status).toBe(200);
    held.pop()!.destroy();
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = (await send(admin.address, 'GET', '/health', {}, undefined, '127.0.0.2')).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 20)); // until the server sees it close
    }
    expect(status).toBe(200);
  });

  it('counts every refusal on /metrics by its code, each code there at 0 from the start', async () => {
    const token = 'the admin metrics token';
    const bearer = { authorization: `Bearer ${token}` };
    const refusedOn = async (address: string, headers: Record<string, string>): Promise<Record<string, number>> => {
      const res = await fetch(`http://${address}/metrics`, { headers });
      expect(res.status).toBe(200);
      const text = parsePrometheus(await res.text());
      const out: Record<string, number> = {};
      for (const [k, v] of text) if (k.startsWith('raftlog_admin_refused_total{')) out[/code="([A-Z_]+)"/.exec(k)![1]!] = v;
      return out;
    };
    const none = Object.fromEntries(ADMIN_REFUSAL_CODES.map((c) => [c, 0]));
    const { admin } = await node({ token, maxConnectionsPerAddress: 2, authThrottle: { failures: 2 } });
    expect(await refusedOn(admin.address, bearer)).toEqual(none);

    expect((await send(admin.address, 'GET', '/status', { ...bearer, origin: 'http://evil.example' })).status).toBe(403);
    expect((await send(admin.address, 'GET', '/status', {})).status).toBe(401);
    for (let i = 0; i < 2; i++)
      expect((await send(admin.address, 'GET', '/status', { authorization: 'Bearer wrong' }, undefined, '127.0.0.3')).status).toBe(401);
    expect((await send(admin.address, 'GET', '/status', { authorization: 'Bearer wrong' }, undefined, '127.0.0.3')).status).toBe(429);
    expect((await send(admin.address, 'POST', '/members/remove', { ...bearer, 'content-type': 'text/plain' }, '{"id":2}')).status).toBe(415);
    // Two idle connections from one address, the most it may hold: the third is refused.
    const at = admin.address.lastIndexOf(':');
    const held: Socket[] = [];
    cleanups.push(() => held.forEach((s) => s.destroy()));
    for (let i = 0; i < 3; i++) {
      const s = connect({ host: admin.address.slice(0, at), port: Number(admin.address.slice(at + 1)), localAddress: '127.0.0.2' });
      s.on('error', () => undefined);
      s.resume();
      held.push(s);
      await new Promise((r) => s.once('connect', r));
    }
    await new Promise((r) => (held[2]!.destroyed ? r(undefined) : held[2]!.once('close', r)));
    expect(await refusedOn(admin.address, bearer)).toEqual({
      ...none,
      CROSS_ORIGIN: 1,
      UNAUTHORIZED: 3,
      TOO_MANY_AUTH_FAILURES: 1,
      UNSUPPORTED_MEDIA_TYPE: 1,
      TOO_MANY_CONNECTIONS: 1,
    });

    // Without a token, a Host that names no address of this node's is refused.
    const open = await node();
    expect((await send(open.admin.address, 'GET', '/status', { host: 'rebound.example' })).status).toBe(403);
    expect(await refusedOn(open.admin.address, {})).toEqual({ ...none, HOST_NOT_ALLOWED: 1 });
  });

  it('by default one address holds at most 16 of the 64 connections', async () => {
    const { admin } = await node();
    const at = admin.address.lastIndexOf(':');
    const held: Socket[] = [];
    cleanups.push(() => held.forEach((s) => s.destroy()));
    const closed: boolean[] = [];
    for (let i = 0; i < 20; i++) {
      const s = connect({ host: admin.address.slice(0, at), port: Number(admin.address.slice(at + 1)), localAddress: '127.0.0.2' });
      s.on('error', () => undefined);
      closed.push(false);
      s.once('close', () => (closed[i] = true));
      s.resume();
      held.push(s);
      await new Promise((r) => s.once('connect', r));
    }
    await until(() => closed.filter(Boolean).length >= 4, 'the connections past 16 to close');
    await new Promise((r) => setTimeout(r, 100));
    expect(closed.slice(0, 16)).toEqual(Array.from({ length: 16 }, () => false));
    expect(closed.slice(16)).toEqual([true, true, true, true]);
    expect((await send(admin.address, 'GET', '/health', {}, undefined, '127.0.0.1')).status).toBe(200);
  });

  it('503 from /health without a leader, and after LOG_FATAL', async () => {
    const ports = await freePorts(3);
    const t = tempDir();
    cleanups.push(t.cleanup);
    const peers = { 1: `127.0.0.1:${ports[0]}`, 2: `127.0.0.1:${ports[1]}`, 3: `127.0.0.1:${ports[2]}` };
    const alone = await ReplicatedLog.open<unknown>({ dataDir: t.dir, id: 1, peers, clusterSecret: 'a secret of sixteen bytes or more' });
    cleanups.push(() => alone.close());
    const admin = await serveAdmin({ log: alone, address: '127.0.0.1:0' });
    cleanups.push(() => admin.close());
    const res = await fetch(`http://${admin.address}/health`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ health: false, reason: 'NO_LEADER' });

    // A node that stopped on a storage failure still knows its last leader: it is not healthy.
    const dead = {
      status: () => ({ ...alone.status(), lead: 2, role: 'fatal', fatal: { code: 'LOG_FATAL', message: 'disk gone' } }),
      metrics: () => alone.metrics(),
    };
    const handler = adminHandler(dead as unknown as ReplicatedLog<unknown>);
    const server = createServer(handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const fatal = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/health`);
    expect(fatal.status).toBe(503);
    expect(await fatal.json()).toMatchObject({ reason: 'LOG_FATAL' });
  });

  it('503 from /health once the log is closed, though it was the leader', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const log = await ReplicatedLog.open<unknown>({ dataDir: t.dir });
    const admin = await serveAdmin({ log, address: '127.0.0.1:0' });
    cleanups.push(() => admin.close());
    expect((await fetch(`http://${admin.address}/health`)).status).toBe(200);
    await log.close();
    expect(log.status().role).toBe('closed');
    expect(log.metrics()).toMatchObject({ isLeader: false, hasLeader: false });
    const res = await fetch(`http://${admin.address}/health`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ health: false, reason: 'LOG_CLOSED' });
  });
});
