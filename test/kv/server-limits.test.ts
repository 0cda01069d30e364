// The RESP server's bounds: backpressure on a client that does not read, the client
// limit, the idle timeout, AUTH, protected mode, cross-protocol (HTTP) requests, protocol
// limits, and close().
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { setImmediate as turn } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvStateMachine } from '../../src/kv/kv-state-machine.js';
import { isLoopbackAddress, serveResp, type RespServer, type RespServerOptions } from '../../src/kv/server.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { heapBytes } from '../heap.js';
import { BrokenLogger, looseErrors } from '../broken-logger.js';
import { ManualClock } from '../manual-clock.js';
import { RecordingLogger } from '../recording-logger.js';
import { RespClient } from './resp-client.js';

/** Polls a condition every few milliseconds; fails after `ms` rather than hanging until the test timeout. */
async function until(cond: () => boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${cond.toString()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

// For the tests of 100,000s of commands, whose work a loaded 2-core machine stretches to minutes.
const LONG_MS = 240_000;

const portOf = (s: RespServer): number => Number(s.address.split(':').pop());

/** A socket that reads nothing until told to. */
function rawConnect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.pause();
    s.once('error', reject);
  });
}

/** Sends bytes on a new connection; what came back, and whether the server closed it within `ms`. */
function sendAndWatch(port: number, bytes: string, ms = 3_000): Promise<{ closed: boolean; received: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    let received = '';
    s.on('data', (d: Buffer) => (received += d.toString('latin1')));
    s.once('error', reject);
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ closed: false, received });
    }, ms);
    s.once('close', () => {
      clearTimeout(timer);
      resolve({ closed: true, received });
    });
  });
}

const multibulk = (...args: string[]): string => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;

/** A raw connection that sends `count` GETs of a 4000-byte value, then `after`, and reads nothing. */
async function unreadGets(server: RespServer, count: number, after = ''): Promise<net.Socket> {
  const setter = await RespClient.connect(portOf(server));
  expect(await setter.call('SET', 'unread', 'v'.repeat(4000))).toBe('OK');
  setter.close();
  const sock = await rawConnect(portOf(server));
  sock.on('error', () => undefined);
  sock.write(Buffer.from(multibulk('GET', 'unread').repeat(count) + after));
  return sock;
}

/** Sends a line end every 100 ms until the server has closed `sock` for idleness, its `idleClosed`th such close. */
async function dripUntilIdleClosed(server: RespServer, sock: net.Socket, idleClosed: number): Promise<void> {
  const drip = setInterval(() => sock.writable && sock.write('\r\n'), 100);
  try {
    await until(() => server.stats().idleClosed === idleClosed && server.stats().clients === 0, 20_000);
  } finally {
    clearInterval(drip);
    sock.destroy();
  }
}

describe('RESP server limits', () => {
  let dir: string;
  let log: ReplicatedLog;
  let kv: KvStateMachine;
  const servers: RespServer[] = [];
  const start = async (o: Partial<RespServerOptions> = {}): Promise<RespServer> => {
    const s = await serveResp({ log, kv, address: '127.0.0.1:0', ...o });
    servers.push(s);
    return s;
  };
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'raftlog-kv-limits-'));
    kv = new KvStateMachine();
    log = await ReplicatedLog.open({ dataDir: dir, stateMachine: kv, sync: 'none' });
  });
  afterAll(async () => {
    for (const s of servers) await s.close();
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(
    'stops reading a client that pipelines 100k commands, then answers all of them in order',
    async () => {
      // 100k appends through the log: 19 s on a quiet 2-core machine, 54 s beside stress-ng.
      const server = await start({ highWaterMark: { commands: 64, bytes: 16 * 1024 } });
      const sock = await rawConnect(portOf(server));
      const n = 100_000;
      const one = Buffer.from('*2\r\n$4\r\nINCR\r\n$3\r\nbp1\r\n');
      sock.write(Buffer.concat(Array.from({ length: n }, () => one)));
      await until(() => server.stats().pauses > 0);
      expect(server.stats().maxInflight).toBeLessThanOrEqual(64);

      // The handler only collects: an expect failing inside it would be thrown from the socket's event.
      let text = '';
      const replies: string[] = [];
      let done = (): void => undefined;
      const finished = new Promise<void>((r) => (done = r));
      sock.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        let nl: number;
        let at = 0;
        while ((nl = text.indexOf('\r\n', at)) !== -1) {
          replies.push(text.slice(at, nl));
          at = nl + 2;
        }
        text = text.slice(at);
        if (replies.length >= n) done();
      });
      sock.resume();
      await finished;
      expect(replies).toEqual(Array.from({ length: n }, (_, i) => `:${i + 1}`));
      expect(server.stats().maxInflight).toBeLessThanOrEqual(64);
      sock.destroy();
    },
    LONG_MS,
  );

  it('stops reading a client whose unread replies pass the byte high-water mark', async () => {
    const hw = { commands: 8, bytes: 256 * 1024 };
    const server = await start({ highWaterMark: hw });
    const value = 'v'.repeat(64 * 1024);
    const setter = await RespClient.connect(portOf(server));
    expect(await setter.call('SET', 'big', value)).toBe('OK');
    setter.close();

    const sock = await rawConnect(portOf(server));
    const gets = 500;
    sock.write(Buffer.from('*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n'.repeat(gets)));
    await until(() => server.stats().paused > 0 && server.stats().writeBuffered >= hw.bytes);
    const reply = value.length + 16;
    expect(server.stats().writeBuffered).toBeLessThanOrEqual(hw.bytes + hw.commands * reply);
    expect(server.stats().maxWriteBuffered).toBeLessThanOrEqual(hw.bytes + hw.commands * reply);

    let got = 0;
    let wrong = 0;
    let pending = Buffer.alloc(0);
    const want = Buffer.from(`$${value.length}\r\n${value}\r\n`);
    await new Promise<void>((resolve) => {
      sock.on('data', (d: Buffer) => {
        pending = Buffer.concat([pending, d]);
        while (pending.length >= want.length) {
          if (!pending.subarray(0, want.length).equals(want)) wrong++; // asserted below, not in the handler
          pending = pending.subarray(want.length);
          got++;
        }
        if (got === gets) resolve();
      });
      sock.resume();
    });
    expect(got).toBe(gets);
    expect(wrong).toBe(0);
    sock.destroy();
  }, 120_000);

  it('holds no more than its byte mark of unsent replies for a client that pipelines GETs of a small value and reads nothing', async () => {
    // A small value is kept as a string and each GET's reply was a copy of it: the 1024 reads a
    // connection may have in flight left 4 MB of replies unsent for 20 KB of GETs, whatever the mark.
    const hw = { commands: 1024, bytes: 64 * 1024 };
    const server = await start({ highWaterMark: hw });
    const value = 'v'.repeat(4000);
    const other = await RespClient.connect(portOf(server));
    expect(await other.call('SET', 'small', value)).toBe('OK');

    const sock = await rawConnect(portOf(server));
    const gets = 3000;
    sock.write(Buffer.from('*2\r\n$3\r\nGET\r\n$5\r\nsmall\r\n'.repeat(gets)));
    await until(() => server.stats().paused > 0 && server.stats().writeBuffered >= hw.bytes);
    // A read asked after them is answered after them: by then they have all been answered.
    expect(await other.call('GET', 'small')).toBe(value);
    await turn();
    const reply = value.length + 9;
    expect(server.stats().writeBuffered).toBeLessThanOrEqual(hw.bytes + reply);
    expect(server.stats().maxWriteBuffered).toBeLessThanOrEqual(hw.bytes + reply);

    let received = 0;
    sock.on('data', (d: Buffer) => (received += d.length));
    sock.resume();
    await until(() => received === gets * reply);
    sock.destroy();
    other.close();
  });

  it('holds one copy of a large value however many unread GETs of it are in flight', async () => {
    // A client that pipelines GETs of one large value and reads nothing: each GET started while the
    // buffer was under its mark adds a reply, and a reply that copied the value cost its size each.
    const server = await start({ highWaterMark: { commands: 256 } });
    const value = Buffer.alloc(1024 * 1024, 'v');
    const setter = await RespClient.connect(portOf(server));
    expect(await setter.call('SET', 'huge', value.toString())).toBe('OK');

    const before = process.memoryUsage().arrayBuffers;
    const sock = await rawConnect(portOf(server));
    const gets = 256;
    sock.write(Buffer.from('*2\r\n$3\r\nGET\r\n$4\r\nhuge\r\n'.repeat(gets)));
    // The replies past the byte mark wait in their slots; the kernel takes a few MiB of them.
    await until(() => server.stats().paused > 0 && server.stats().maxInflight === gets);
    // A read asked after them is answered after them: by then they all hold their value.
    expect(((await setter.call('GET', 'huge')) as string).length).toBe(value.length);
    const grown = process.memoryUsage().arrayBuffers - before;
    sock.destroy();
    setter.close();
    expect(grown).toBeLessThan(64 * 1024 * 1024); // 256 copies were 256 MiB
  });

  it('holds no more than maxWriteBufferedBytes of unsent replies over all clients, plus one reply each, and answers a client that reads', async () => {
    // Each client's mark (1 MiB) bounds only its own share: 10,000 clients that pipelined GETs and
    // read nothing held 10 GB of replies.
    const budget = 1024 * 1024;
    const server = await start({ maxWriteBufferedBytes: budget });
    const value = 'v'.repeat(64 * 1024);
    const reply = value.length + 10;
    const reader = await RespClient.connect(portOf(server));
    expect(await reader.call('SET', 'budget', value)).toBe('OK');

    // Past what the kernel takes of a connection whose client does not read (a few MiB) and the mark.
    const n = 12;
    const gets = 200;
    const hoarders = await Promise.all(Array.from({ length: n }, () => rawConnect(portOf(server))));
    for (const s of hoarders) s.write(Buffer.from(multibulk('GET', 'budget').repeat(gets)));
    let most = 0;
    await until(() => {
      most = Math.max(most, server.stats().writeBuffered);
      return server.stats().paused === n;
    });
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 10));
      most = Math.max(most, server.stats().writeBuffered);
    }
    expect(most).toBeGreaterThanOrEqual(budget);
    expect(most).toBeLessThanOrEqual(budget + n * reply);

    // A client that reads is answered all the same, and so is each of the others once it reads.
    const answers = await Promise.all(Array.from({ length: 50 }, () => reader.call('GET', 'budget')));
    expect(answers.every((a) => a === value)).toBe(true);
    const received = hoarders.map(() => 0);
    hoarders.forEach((s, i) => {
      s.on('data', (d: Buffer) => (received[i]! += d.length));
      s.resume();
    });
    await until(() => received.every((r) => r === gets * reply));
    for (const s of hoarders) s.destroy();
    reader.close();
    await until(() => server.stats().clients === 0);
    expect(server.stats().writeBuffered).toBe(0);
  }, 120_000);

  it(
    'counts replies finished and waiting for their turn (INFO, ECHO: copies) against the budget, however many are pipelined',
    async () => {
      // Such replies waited among the 1024 commands a connection answers in order, counted nowhere:
      // INFO's 14 bytes are answered with some 400, and 16 clients that pipelined INFOs and read
      // nothing held 1024 replies each past a budget of 256 KiB.
      const budget = 256 * 1024;
      const server = await start({ maxWriteBufferedBytes: budget });
      const probe = await RespClient.connect(portOf(server));
      const reply = Buffer.byteLength((await probe.call('INFO')) as string) + 10;
      probe.close();
      const n = 16;
      const infos = 12_000;
      const pipeline = Buffer.from(multibulk('INFO').repeat(infos));
      const hoarders = await Promise.all(Array.from({ length: n }, () => rawConnect(portOf(server))));
      const before = heapBytes();
      for (const s of hoarders) s.write(pipeline);
      // The kernel takes a share of each connection's replies before the server holds any, so many
      // INFOs are answered before every client is paused: over 60 s beside stress-ng.
      await until(() => server.stats().paused === n, LONG_MS);
      for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 10));
      const grown = heapBytes() - before;
      // The budget and a reply each; the commands read and not started, which maxBufferedBytes
      // bounds; and what a connection costs besides: the chunk its paused socket read, its parser's
      // and sockets' bookkeeping. Uncounted, 1024 replies each made some 10 MB here.
      expect(grown).toBeLessThanOrEqual(budget + server.stats().buffered + n * (reply + 192 * 1024));
      expect(server.stats().writeBuffered).toBeLessThanOrEqual(budget + n * reply);

      // Every INFO is answered once its client reads: '# Raft' begins each, counted across chunks.
      // One client at a time: 16 at once kept the loop busy with loopback reads for seconds on end.
      for (const s of hoarders) {
        let answered = 0;
        let tail = '';
        s.setEncoding('latin1');
        s.on('data', (d: string) => {
          const text = tail + d;
          answered += text.split('# Raft').length - 1;
          tail = text.slice(-5);
        });
        s.resume();
        await until(() => answered === infos, LONG_MS);
      }
      for (const s of hoarders) s.destroy();
      await until(() => server.stats().clients === 0);
      expect(server.stats().writeBuffered).toBe(0);
    },
    2 * LONG_MS,
  );

  it('serves a paused client again once it reads, with a byte mark below the socket buffer mark of 16 KiB', async () => {
    // Waiting commands start again at 'drain', which Node emits only after a write that reached
    // the socket's own mark: the replies must reach it before this server's mark pauses reading.
    const server = await start({ highWaterMark: { commands: 4, bytes: 1024 } });
    const value = 'v'.repeat(2000);
    const setter = await RespClient.connect(portOf(server));
    expect(await setter.call('SET', 'small-mark', value)).toBe('OK');
    setter.close();

    const sock = await rawConnect(portOf(server));
    const gets = 20_000; // 40 MB of replies: past what the kernel holds for a client that does not read
    sock.write(Buffer.from('*2\r\n$3\r\nGET\r\n$10\r\nsmall-mark\r\n'.repeat(gets)));
    await until(() => server.stats().paused > 0 && server.stats().writeBuffered >= 1024);
    let received = 0;
    sock.on('data', (d: Buffer) => (received += d.length));
    sock.resume();
    await until(() => received === gets * (value.length + 9), 20_000);
    sock.destroy();
  });

  it('refuses clients past maxClients with a Redis error, and serves again when one leaves', async () => {
    const server = await start({ maxClients: 2 });
    const a = await RespClient.connect(portOf(server));
    const b = await RespClient.connect(portOf(server));
    expect(await a.call('PING')).toBe('PONG');
    expect(await b.call('PING')).toBe('PONG');
    const c = await RespClient.connect(portOf(server));
    expect(await c.next()).toEqual(new Error('ERR max number of clients reached'));
    await c.closed();
    expect(server.stats().refused).toBe(1);
    a.close();
    await until(() => server.stats().clients === 1);
    const d = await RespClient.connect(portOf(server));
    expect(await d.call('PING')).toBe('PONG');
    b.close();
    d.close();
  });

  it('a logger that throws loses its lines, not the server: a refused client is still told why and the others served', async () => {
    const logger = new BrokenLogger();
    const loose = looseErrors();
    const server = await start({ maxClients: 1, logger });
    const a = await RespClient.connect(portOf(server));
    expect(await a.call('PING')).toBe('PONG');
    const b = await RespClient.connect(portOf(server));
    expect(await b.next()).toEqual(new Error('ERR max number of clients reached'));
    await b.closed();
    await until(() => logger.calls > 0);
    expect(await a.call('PING')).toBe('PONG');
    a.close();
    expect(loose).toEqual([]);
  });

  it('by default serves thousands of clients, within the open-file limit', async () => {
    const server = await start();
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const soft = Number(/^Max open files\s+(\d+)/m.exec(limits)![1]);
    expect(server.stats().maxClients).toBe(Math.min(10_000, soft - 256));
  });

  it('closes a connection idle past idleTimeoutMs', async () => {
    // Long enough that a loaded machine still answers the PING before the limit.
    const server = await start({ idleTimeoutMs: 500 });
    const c = await RespClient.connect(portOf(server));
    expect(await c.call('PING')).toBe('PONG');
    await c.closed();
    expect(server.stats().idleClosed).toBe(1);
    // So is one that stopped reading: its replies past the mark wait for it, not for the log.
    const setter = await RespClient.connect(portOf(server));
    expect(await setter.call('SET', 'idle', 'v'.repeat(4000))).toBe('OK');
    setter.close();
    const sock = await rawConnect(portOf(server));
    sock.write(Buffer.from('*2\r\n$3\r\nGET\r\n$4\r\nidle\r\n'.repeat(3000)));
    await until(() => server.stats().idleClosed === 2 && server.stats().clients === 0, 10_000);
    sock.destroy();
  });

  it('closes a connection that reads none of its replies for idleTimeoutMs, whatever it sends meanwhile', async () => {
    const server = await start({ idleTimeoutMs: 500 });
    const closedBefore = server.stats().idleClosed;
    const sock = await unreadGets(server, 3000);
    await until(() => server.stats().paused > 0);
    // Read into the paused socket's buffer, each byte put the idle timeout off: the client held
    // its connection and a megabyte of replies for as long as it trickled.
    await dripUntilIdleClosed(server, sock, closedBefore + 1);
  });

  it('closes a connection that reads none of its last replies after QUIT, or does not close once it has, for idleTimeoutMs, whatever it sends', async () => {
    // A mark above what the kernel takes: QUIT is read with replies unsent and the socket not paused.
    const server = await start({ idleTimeoutMs: 500, highWaterMark: { bytes: 64 * 1024 * 1024 } });
    const closedBefore = server.stats().idleClosed;
    const sock = await unreadGets(server, 5000, multibulk('QUIT'));
    await until(() => server.stats().writeBuffered > 0);
    await dripUntilIdleClosed(server, sock, closedBefore + 1);
    // So is one that read them all but does not close its end.
    const reader = net.connect({ port: portOf(server), host: '127.0.0.1', allowHalfOpen: true });
    reader.on('error', () => undefined);
    let received = '';
    reader.on('data', (d: Buffer) => (received += d.toString('latin1')));
    reader.write(multibulk('PING') + multibulk('QUIT'));
    await until(() => received === '+PONG\r\n+OK\r\n');
    await dripUntilIdleClosed(server, reader, closedBefore + 2);
  });

  it('closes a connection that has not authenticated within authTimeoutMs, however it trickles', async () => {
    const server = await start({ requirepass: 'pw', authTimeoutMs: 300, idleTimeoutMs: 60_000 });
    const s = await rawConnect(portOf(server));
    s.on('error', () => undefined);
    const closed = new Promise<number>((resolve) => s.once('close', () => resolve(Date.now())));
    const opened = Date.now();
    // A byte of an unfinished command every 50 ms: the idle timeout never comes.
    const trickle = setInterval(() => s.write('*'), 50);
    const at = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 5_000))]);
    clearInterval(trickle);
    expect(at, 'closed within the deadline').toBeGreaterThan(0);
    expect(at - opened).toBeLessThan(3_000);
    expect(server.stats().idleClosed).toBe(1);
    // An authenticated client stays past it.
    const c = await RespClient.connect(portOf(server));
    expect(await c.call('AUTH', 'pw')).toBe('OK');
    await new Promise((r) => setTimeout(r, 600));
    expect(await c.call('PING')).toBe('PONG');
    c.close();
  });

  it('requires AUTH when requirepass is set', async () => {
    const server = await start({ requirepass: 's3cret' });
    const c = await RespClient.connect(portOf(server));
    expect(await c.call('PING')).toEqual(new Error('NOAUTH Authentication required.'));
    expect(await c.call('SET', 'auth-k', 'x')).toEqual(new Error('NOAUTH Authentication required.'));
    expect(await c.call('AUTH', 'wrong')).toEqual(new Error('WRONGPASS invalid username-password pair or user is disabled.'));
    expect(await c.call('AUTH', 'alice', 's3cret')).toEqual(new Error('WRONGPASS invalid username-password pair or user is disabled.'));
    expect(await c.call('AUTH', 'default', 's3cret')).toBe('OK');
    expect(await c.call('PING')).toBe('PONG');
    c.close();
    // AUTH pipelined with the commands after it, in one write.
    const d = await RespClient.connect(portOf(server));
    const replies = [d.next(), d.next(), d.next()];
    d.raw('*2\r\n$4\r\nAUTH\r\n$6\r\ns3cret\r\n*3\r\n$3\r\nSET\r\n$6\r\nauth-k\r\n$1\r\ny\r\n*2\r\n$3\r\nGET\r\n$6\r\nauth-k\r\n');
    expect(await Promise.all(replies)).toEqual(['OK', 'OK', 'y']);
    d.close();
    expect(kv.get(Buffer.from('auth-k'))?.toString()).toBe('y');

    // Before AUTH a client may send only small commands; right after it, the full limits apply,
    // even to a command that arrived in the same write.
    const big = 'b'.repeat(100 * 1024);
    const e = await RespClient.connect(portOf(server));
    expect(await e.call('SET', 'auth-big', big)).toEqual(
      expect.objectContaining({ message: expect.stringMatching(/^ERR Protocol error: invalid bulk length/) }),
    );
    await e.closed();
    const f = await RespClient.connect(portOf(server));
    const both = [f.next(), f.next()];
    f.raw(
      Buffer.concat([Buffer.from('*2\r\n$4\r\nAUTH\r\n$6\r\ns3cret\r\n'), Buffer.from(`*3\r\n$3\r\nSET\r\n$8\r\nauth-big\r\n$${big.length}\r\n${big}\r\n`)]),
    );
    expect(await Promise.all(both)).toEqual(['OK', 'OK']);
    f.close();
    expect(kv.get(Buffer.from('auth-big'))?.length).toBe(big.length);
  });

  it('before AUTH answers an unknown command, a wrong number of arguments or an unknown CONFIG subcommand as Redis 7 does, the rest NOAUTH', async () => {
    // What redis-server 7.0 with requirepass answers a client that has not authenticated: it looks
    // the command up and checks its arity before AUTH. A client that tries a command Redis 5 did
    // not have (HELLO, then falls back) is told it is unknown, not that it must authenticate.
    const server = await start({ requirepass: 's3cret' });
    const c = await RespClient.connect(portOf(server));
    const arity = (name: string) => new Error(`ERR wrong number of arguments for '${name}' command`);
    const noauth = new Error('NOAUTH Authentication required.');
    const cases: Array<[string[], Error]> = [
      [['FOO', 'bar'], new Error("ERR unknown command 'FOO', with args beginning with: 'bar' ")],
      [['HELLO', '3'], new Error("ERR unknown command 'HELLO', with args beginning with: '3' ")],
      [['GET'], arity('get')],
      [['ECHO'], arity('echo')],
      [['SET', 'k'], arity('set')],
      [['INCR', 'a', 'b'], arity('incr')],
      [['DBSIZE', 'x'], arity('dbsize')],
      [['EXISTS'], arity('exists')],
      [['DEL'], arity('del')],
      [['CONFIG'], arity('config')],
      [['CONFIG', 'GET'], arity('config|get')],
      [['CONFIG', 'FOO'], new Error("ERR unknown subcommand 'FOO'. Try CONFIG HELP.")],
      [['PING'], noauth],
      [['PING', 'a', 'b'], noauth],
      [['GET', 'a'], noauth],
      [['SET', 'k', 'v', 'EX', '10'], noauth],
      [['SELECT', 'x'], noauth],
      [['CONFIG', 'GET', 'save'], noauth],
      [['INFO', 'a', 'b'], noauth],
      [['RAFT.MEMBERS'], noauth],
    ];
    for (const [args, reply] of cases) expect(await c.call(...args), args.join(' ')).toEqual(reply);
    expect(await c.call('AUTH', 's3cret')).toBe('OK');
    c.close();
  });

  it("answers AUTH in Redis 7's words, with a password configured or not", async () => {
    // What redis-server 7.0 answers, without and with requirepass: the default user then has
    // no password (nopass), and takes any.
    const wrongpass = new Error('WRONGPASS invalid username-password pair or user is disabled.');
    const open = await start();
    const c = await RespClient.connect(portOf(open));
    expect(await c.call('AUTH', 'x')).toEqual(
      new Error('ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?'),
    );
    expect(await c.call('AUTH', 'default', 'anything')).toBe('OK');
    expect(await c.call('AUTH', 'alice', 'x')).toEqual(wrongpass);
    expect(await c.call('AUTH', 'a', 'b', 'c')).toEqual(new Error('ERR syntax error'));
    expect(await c.call('AUTH')).toEqual(new Error("ERR wrong number of arguments for 'auth' command"));
    expect(await c.call('PING')).toBe('PONG');
    c.close();
    const closed = await start({ requirepass: 'pw' });
    const d = await RespClient.connect(portOf(closed));
    expect(await d.call('AUTH', 'default', 'pw', 'c')).toEqual(new Error('ERR syntax error'));
    expect(await d.call('AUTH')).toEqual(new Error("ERR wrong number of arguments for 'auth' command"));
    expect(await d.call('AUTH', 'pw')).toBe('OK');
    d.close();
    expect(closed.stats().authFailures).toBe(0);
  });

  it('in protected mode refuses non-loopback clients unless a password is set', async () => {
    const remote = (): boolean => false;
    const guarded = await start({ isLoopback: remote });
    const c = await RespClient.connect(portOf(guarded));
    expect(await c.next()).toEqual(expect.objectContaining({ message: expect.stringMatching(/^DENIED .*protected mode/) }));
    await c.closed();

    const withPass = await start({ isLoopback: remote, requirepass: 'pw' });
    const d = await RespClient.connect(portOf(withPass));
    expect(await d.call('PING')).toEqual(new Error('NOAUTH Authentication required.'));
    d.close();

    const open = await start({ isLoopback: remote, protectedMode: false });
    const e = await RespClient.connect(portOf(open));
    expect(await e.call('PING')).toBe('PONG');
    e.close();
  });

  it('closes a connection that sends an HTTP POST (a web page on this host), running nothing in its body', async () => {
    const logger = new RecordingLogger();
    const server = await start({ logger }); // protected mode, no password: loopback clients are served
    const port = portOf(server);
    const body = multibulk('SET', 'smuggled-by-web', 'yes');
    // What a browser sends for fetch('http://127.0.0.1:port/', { method: 'POST', mode: 'no-cors', body }).
    const request = [
      'POST / HTTP/1.1',
      `Host: 127.0.0.1:${port}`,
      'Connection: keep-alive',
      `Content-Length: ${body.length}`,
      'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
      'Content-Type: text/plain;charset=UTF-8',
      'Accept: */*',
      'Origin: http://attacker.example',
      'Sec-Fetch-Site: cross-site',
      'Sec-Fetch-Mode: no-cors',
      'Referer: http://attacker.example/',
      'Accept-Encoding: gzip, deflate, br',
      'Accept-Language: en-US,en;q=0.9',
      '',
      body,
    ].join('\r\n');
    const r = await sendAndWatch(port, request);
    const c = await RespClient.connect(port);
    expect(await c.call('GET', 'smuggled-by-web')).toBeNull(); // a read after a barrier: a SET run would show
    c.close();
    expect(kv.has(Buffer.from('smuggled-by-web'))).toBe(false);
    expect(r.closed).toBe(true);
    expect(r.received).toBe(''); // closed at the request line: not even an unknown-command error
    const warning = logger.lines.find((l) => l.level === 'warn');
    expect(warning?.message).toMatch(/cross-protocol request from 127\.0\.0\.1:\d+/);
    expect(warning?.fields).toMatchObject({ remoteAddress: '127.0.0.1' });
  });

  it('logs refused connections at a bounded rate: 10, then the count of the rest when the interval ends or the server closes', async () => {
    const logger = new RecordingLogger();
    const clock = new ManualClock();
    const server = await start({ logger, refusalLogClock: clock, isLoopback: () => false }); // protected mode: every client is refused
    for (let i = 0; i < 12; i++) expect((await sendAndWatch(portOf(server), '')).closed).toBe(true);
    for (let i = 0; i < 3; i++) await sendAndWatch(portOf(server), 'POST / HTTP/1.1\r\n'); // refused as protected mode too
    await until(() => server.stats().refused === 15);
    expect(logger.lines).toHaveLength(10);
    expect(logger.lines[0]!.message).toMatch(/^RESP server refused a connection from 127\.0\.0\.1:\d+: protected mode/);
    // The node as the log's own lines name it, given a logger without it.
    expect(logger.lines[0]!.fields).toMatchObject({ node: 1, remoteAddress: '127.0.0.1' });
    clock.fire();
    expect(logger.lines.at(-1)!.fields).toEqual({ node: 1, code: 'KV_PROTECTED_MODE', suppressed: 5 });
    expect(logger.lines.at(-1)!.message).toMatch(/^RESP server: refused connections: 5 more KV_PROTECTED_MODE not logged/);
    // Cross-protocol requests go through the same limit, and close() logs what is still counted.
    const loopback = await start({ logger, refusalLogClock: clock });
    for (let i = 0; i < 12; i++) expect((await sendAndWatch(portOf(loopback), 'POST / HTTP/1.1\r\n')).closed).toBe(true);
    expect(logger.lines.filter((l) => /cross-protocol/.test(l.message))).toHaveLength(10);
    await loopback.close();
    expect(logger.lines.at(-1)!.fields).toEqual({ node: 1, code: 'KV_CROSS_PROTOCOL', suppressed: 2 });
  });

  it('logs every refusal with a code field: protected mode, maxClients, a cross-protocol request, repeated wrong passwords', async () => {
    const logger = new RecordingLogger();
    const denied = await start({ logger, isLoopback: () => false });
    expect((await sendAndWatch(portOf(denied), '')).closed).toBe(true);
    const full = await start({ logger, maxClients: 1 });
    const first = await RespClient.connect(portOf(full));
    expect(await first.call('PING')).toBe('PONG');
    const second = await RespClient.connect(portOf(full));
    await second.closed();
    first.close();
    await until(() => full.stats().clients === 0);
    expect((await sendAndWatch(portOf(full), 'POST / HTTP/1.1\r\n')).closed).toBe(true);
    const guarded = await start({ logger, requirepass: 'the right password' });
    const guesser = await RespClient.connect(portOf(guarded));
    for (let i = 0; i < 3; i++) await guesser.call('AUTH', `wrong ${i}`).catch(() => undefined);
    await guesser.closed();
    await until(() => logger.lines.length >= 4);
    expect(logger.lines.map((l) => l.fields.code)).toEqual(['KV_PROTECTED_MODE', 'KV_MAX_CLIENTS', 'KV_CROSS_PROTOCOL', 'KV_AUTH_FAILED']);
  });

  it("closes on a 'Host:' line in any case, and before AUTH; 'post' as an argument is only data", async () => {
    const server = await start();
    const port = portOf(server);
    const r = await sendAndWatch(port, `GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n${multibulk('SET', 'smuggled-by-host', 'yes')}`);
    const c = await RespClient.connect(port);
    expect(await c.call('GET', 'smuggled-by-host')).toBeNull();
    expect(r.closed).toBe(true);
    expect(await c.call('SET', 'post', 'Host:')).toBe('OK');
    expect(await c.call('GET', 'post')).toBe('Host:');
    c.close();

    const withPass = await start({ requirepass: 'pw' });
    const p = await sendAndWatch(portOf(withPass), 'post /x HTTP/1.1\r\n\r\nAUTH pw\r\nSET smuggled-with-auth yes\r\n');
    expect(kv.has(Buffer.from('smuggled-with-auth'))).toBe(false);
    expect(p.closed).toBe(true);
    expect(p.received).toBe('');
  });

  it('refuses a bad option with INVALID_ARGUMENT, as every bad argument of the library is refused', async () => {
    for (const bad of [
      { maxClients: 0 },
      { maxArgs: 1.5 },
      { highWaterMark: { bytes: -1 } },
      { idleTimeoutMs: -1 },
      // Over a Node timer's 2^31 - 1 ms these were accepted, and their timers fire after 1 ms: a client
      // not yet authenticated, or one behind on reading its replies, would be cut off at once.
      { idleTimeoutMs: 2 ** 31 },
      { authTimeoutMs: 2 ** 31 },
      // Raw TypeErrors from Node: parsing the address, hashing the password.
      { address: 6379 as unknown as string },
      { requirepass: 5 as unknown as string },
      { maxUnauthenticatedPerAddress: 0 },
      { maxPendingReads: 0 },
      { maxWriteBufferedBytes: 0 },
      { sync: 'never' as 'none' },
      { authThrottle: { failures: 0 } },
      { authThrottle: { windowMs: -1 } },
    ]) {
      await expect(start(bad)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/^serveResp: /) });
    }
    await expect(serveResp(null as never)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('tells CONFIG GET appendfsync what the log does: no, for a log that does not fsync before it answers', async () => {
    // This file's log is opened with sync: 'none'; each write is in its file, left to the kernel.
    const c = await RespClient.connect(portOf(await start({ sync: 'none' })));
    expect(await c.call('CONFIG', 'GET', 'append*')).toEqual(['appendonly', 'yes', 'appendfsync', 'no']);
    c.close();
    const d = await RespClient.connect(portOf(await start()));
    expect(await d.call('CONFIG', 'GET', 'appendfsync')).toEqual(['appendfsync', 'always']);
    d.close();
  });

  it('knows loopback addresses', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) expect(isLoopbackAddress(a), a).toBe(true);
    for (const a of ['10.0.0.1', '::ffff:10.0.0.1', '::', '0.0.0.0', '128.0.0.1', 'fe80::1', undefined]) expect(isLoopbackAddress(a), String(a)).toBe(false);
  });

  it('refuses a value past maxBulkBytes with an error and closes the connection', async () => {
    const server = await start({ maxBulkBytes: 1024, maxArgs: 3 });
    const c = await RespClient.connect(portOf(server));
    // 3 arguments of 408 bytes, each counted 128 more, and the command 192: 984 bytes of the 1024.
    expect(await c.call('SET', 'small', 'x'.repeat(400))).toBe('OK');
    expect(await c.call('SET', 'large', 'x'.repeat(1025))).toEqual(
      expect.objectContaining({ message: expect.stringMatching(/^ERR Protocol error: invalid bulk length/) }),
    );
    await c.closed();
    const d = await RespClient.connect(portOf(server));
    expect(await d.call('DEL', 'a', 'b', 'c')).toEqual(
      expect.objectContaining({ message: expect.stringMatching(/^ERR Protocol error: invalid multibulk length/) }),
    );
    await d.closed();
  });

  it('holds no more than maxBufferedBytes of unfinished commands over all clients, closing strangers first, then the client holding the most', async () => {
    const logger = new RecordingLogger();
    const server = await start({ requirepass: 'pw', maxBulkBytes: 128 * 1024, maxBufferedBytes: 128 * 1024, authTimeoutMs: 600_000, logger });
    const a = await RespClient.connect(portOf(server));
    expect(await a.call('AUTH', 'pw')).toBe('OK');
    const value = 'v'.repeat(100 * 1024);
    const setHead = (v: string): string => `*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${v.length}\r\n`;
    a.raw(setHead(value) + value.slice(0, 90_000));
    await until(() => server.stats().buffered >= 90_000, 30_000);

    // Strangers each send most of a 16,000-byte password: past the budget, they are closed, not the client that authenticated.
    const strangers = await Promise.all(Array.from({ length: 12 }, () => rawConnect(portOf(server))));
    const strangersClosed = strangers.map((s) => new Promise<void>((resolve) => s.once('close', () => resolve())));
    for (const s of strangers) {
      s.on('error', () => undefined);
      s.write(`*2\r\n$4\r\nAUTH\r\n$16000\r\n${'p'.repeat(15_000)}`);
    }
    await until(() => server.stats().evicted >= 4, 30_000);
    expect(server.stats().buffered).toBeLessThanOrEqual(128 * 1024);
    expect(
      logger.messages.some((m) =>
        /held \d+ bytes of commands not started, more than maxBufferedBytes \(131072\), and it held \d+ before authenticating$/.test(m),
      ),
    ).toBe(true);
    for (const s of strangers) s.destroy();
    await Promise.all(strangersClosed);
    // The server may read a stranger's last bytes after the stranger is gone: count once it saw them all go.
    await until(() => server.stats().clients === 1, 30_000);
    const evictedStrangers = server.stats().evicted;

    // Among clients that authenticated, the one holding the most goes: a, not b with its smaller value.
    const b = await RespClient.connect(portOf(server));
    expect(await b.call('AUTH', 'pw')).toBe('OK');
    const small = 'w'.repeat(80_000);
    b.raw(setHead(small) + small.slice(0, 70_000));
    await a.closed();
    expect(server.stats().evicted).toBe(evictedStrangers + 1);
    b.raw(small.slice(70_000) + '\r\n');
    expect(await b.next()).toBe('OK');
    expect(server.stats().buffered).toBe(0);
    b.close();
  });

  it('counts an unfinished command of tiny arguments at what it costs: 129 bytes an argument of one byte', async () => {
    // Each argument is a Buffer of about 110 bytes of heap: counted at their length, 8 clients
    // holding 1000 one-byte arguments each were 8000 bytes of a 512 KiB budget, and held 900 KB.
    const server = await start({ maxBulkBytes: 256 * 1024, maxBufferedBytes: 512 * 1024 });
    const clients = await Promise.all(Array.from({ length: 8 }, () => rawConnect(portOf(server))));
    for (const c of clients) {
      c.on('error', () => undefined);
      c.write(`*1024\r\n${'$1\r\nk\r\n'.repeat(1000)}`);
    }
    // Four such commands fit (4 x 129,192 bytes, the command's array counted 192); each one past them closes a client.
    const each = 1000 * 129 + 192;
    await until(() => server.stats().evicted === 4 && server.stats().buffered === 4 * each, 10_000);
    await new Promise((r) => setTimeout(r, 100));
    expect(server.stats().evicted).toBe(4);
    expect(server.stats().buffered).toBe(4 * each);
    for (const c of clients) c.destroy();
  });

  it('lets a lone client send the largest value within a maxBufferedBytes of maxBulkBytes, after a command cut inside a line', async () => {
    const server = await start({ maxBulkBytes: 128 * 1024, maxBufferedBytes: 128 * 1024 });
    const c = await RespClient.connect(portOf(server));
    // A PING whose header arrives in two parts: the parser keeps the first for the second.
    c.raw('*1\r\n$');
    await until(() => server.stats().buffered > 0);
    c.raw('4\r\nPING\r\n');
    expect(await c.next()).toBe('PONG');
    // The largest SET: its three arguments, the 128 bytes counted for each and the command's 192 fill maxBulkBytes.
    const value = 'v'.repeat(128 * 1024 - 192 - 3 * 128 - 4);
    c.raw(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${value.length}\r\n${value}`);
    await until(() => server.stats().buffered >= value.length || server.stats().evicted > 0);
    c.raw('\r\n');
    expect(await c.next()).toBe('OK');
    expect(server.stats().evicted).toBe(0);
    c.close();
  });

  it('with the default limits, the largest SET fits a log record: committed and read back; one byte more is refused before the log', async () => {
    const server = await start();
    const c = await RespClient.connect(portOf(server));
    const limit = 4 * 1024 * 1024 - 64 * 1024; // the default maxBulkBytes, also the command's limit
    // Its three arguments, 128 bytes counted for each and 192 for the command fill the limit.
    const value = Buffer.alloc(limit - 192 - 3 * 128 - 3 - 1, 'v');
    expect(await c.call('SET', 'k', value)).toBe('OK');
    // Compared as a boolean: a diff of two 4 MiB values would take minutes to print.
    expect(Buffer.from((await c.call('GET', 'k')) as string).equals(value)).toBe(true);
    const applied = log.status().applied;
    c.raw(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${value.length + 1}\r\n`);
    expect(String(await c.next())).toMatch(/command larger than/);
    expect(log.status().applied).toBe(applied);
    c.close();
  });

  it('closes the connection of a client that sent more after QUIT or a protocol error once it closes, not at the idle timeout', async () => {
    const server = await start();
    for (const [first, reply] of [
      ['QUIT\r\n', '+OK\r\n'],
      ['*1\r\n$x\r\n', '-ERR Protocol error'],
    ] as const) {
      // Half-open: the client may still send once the server has ended its side, as bytes in flight do.
      const s = net.connect({ port: portOf(server), host: '127.0.0.1', allowHalfOpen: true });
      s.on('error', () => undefined);
      const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
      let received = '';
      let ended = false;
      s.on('data', (d: Buffer) => (received += d.toString('latin1')));
      s.on('end', () => (ended = true));
      s.write(first);
      await until(() => ended);
      expect(received.startsWith(reply), received).toBe(true);
      // Bytes the client sent before it read the answer, as a pipelining client does; then it closes.
      s.end('PING\r\n');
      await closed;
      await until(() => server.stats().clients === 0, 10_000);
    }
  });

  it('refuses a maxBufferedBytes below maxBulkBytes', async () => {
    await expect(serveResp({ log, kv, address: '127.0.0.1:0', maxBulkBytes: 1024, maxBufferedBytes: 1023 })).rejects.toThrow(
      /maxBufferedBytes must be at least maxBulkBytes/,
    );
  });

  it('close() closes every client connection and settles', async () => {
    const server = await serveResp({ log, kv, address: '127.0.0.1:0' });
    const a = await RespClient.connect(portOf(server));
    const b = await RespClient.connect(portOf(server));
    expect(await a.call('PING')).toBe('PONG');
    await server.close();
    await Promise.all([a.closed(), b.closed()]);
    expect(server.stats().clients).toBe(0);
  });
});
