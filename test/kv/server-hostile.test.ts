// The RESP server against clients that misbehave (evicted or gone with commands waiting,
// garbage after a pipeline, reads held by a slow barrier, strangers that read nothing or guess
// passwords), on a log the test holds: it sees every write proposed and every barrier asked,
// and answers none until told to, so what the server does on behalf of a client is counted exactly.
import net from 'node:net';
import { setImmediate as turn } from 'node:timers/promises';
import { unpack } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { KvStateMachine } from '../../src/kv/kv-state-machine.js';
import { serveResp, type KvLog, type RespServer, type RespServerOptions } from '../../src/kv/server.js';
import { heapBytes as heap } from '../heap.js';
import { ManualClock } from '../manual-clock.js';
import { RecordingLogger } from '../recording-logger.js';
import { CONNECTION_CLOSED, RespClient } from './resp-client.js';

/** Polls a condition every few milliseconds; fails after `ms` rather than hanging until the test timeout. */
async function until(cond: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${cond.toString()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A log that records each write proposed to it (its key), and answers writes and barriers only when released. */
class HeldLog implements KvLog {
  /** The key of every write proposed, in order. */
  readonly proposed: string[] = [];
  private held: Array<() => void> = [];
  private holding = true;

  append(data: Uint8Array): Promise<{ index: number; term: number; result: unknown }> {
    const cmd = unpack(data) as [string, Buffer];
    this.proposed.push(cmd[1].toString());
    const index = this.proposed.length;
    return new Promise((resolve) => {
      const answer = (): void => resolve({ index, term: 1, result: { ok: 'OK' } });
      if (this.holding) this.held.push(answer);
      else answer();
    });
  }

  /** Barriers asked for, answered or not. */
  barriers = 0;

  barrier(): Promise<void> {
    this.barriers++;
    return new Promise((resolve) => {
      if (this.holding) this.held.push(resolve);
      else resolve();
    });
  }

  status(): object {
    return {};
  }

  /** Answers every write held, and from now on answers at once. */
  release(): void {
    this.holding = false;
    for (const answer of this.held.splice(0)) answer();
  }
}

const portOf = (s: RespServer): number => Number(s.address.split(':').pop());
/** An error reply's text; anything else as it prints, so that a test naming it fails. */
const errorText = (v: unknown): string => (v instanceof Error ? v.message : `not an error: ${String(v)}`);
const set = (k: string, v = '1'): string => `*3\r\n$3\r\nSET\r\n$${k.length}\r\n${k}\r\n$${v.length}\r\n${v}\r\n`;
/** A SET whose value is announced as `announced` bytes and cut after `sent` of them. */
const unfinishedSet = (k: string, announced: number, sent: number): string => `*3\r\n$3\r\nSET\r\n$${k.length}\r\n${k}\r\n$${announced}\r\n${'v'.repeat(sent)}`;
const sets = (prefix: string, n: number): string => Array.from({ length: n }, (_, i) => set(`${prefix}${i}`)).join('');

describe('the RESP server on a held log', () => {
  let log: HeldLog;
  const servers: RespServer[] = [];
  const start = async (o: Partial<RespServerOptions> = {}): Promise<RespServer> => {
    log = new HeldLog();
    const s = await serveResp({ log, kv: new KvStateMachine(), address: '127.0.0.1:0', ...o });
    servers.push(s);
    return s;
  };
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });
  // Two commands at a time, and a budget of commands not started that two clients pass together:
  // as counted (heapCost), a SET of a0 is 582 bytes, a-unfinished's 4091 (its value's buffer is
  // the 3500 bytes announced), b-unfinished's 2591. Ten SETs of a and a-unfinished fit, 9911
  // bytes, and eight of them with b-unfinished do not, 11,338.
  const limited = { highWaterMark: { commands: 2 }, maxBulkBytes: 4096, maxBufferedBytes: 10_240 };

  it('proposes none of the commands an evicted client sent that had not started, even once its started ones are answered', async () => {
    const server = await start(limited);
    const a = await RespClient.connect(portOf(server));
    // Ten SETs and most of an eleventh, in one write: two start, eight wait for their replies.
    a.raw(sets('a', 10) + unfinishedSet('a-unfinished', 3500, 3000));
    await until(() => log.proposed.length === 2 && server.stats().buffered >= 3000);
    // Another client's unfinished command passes the budget: a holds the most and is closed.
    const b = await RespClient.connect(portOf(server));
    b.raw(unfinishedSet('b-unfinished', 2000, 1000));
    await a.closed();
    expect(server.stats().evicted).toBe(1);
    // Its two writes were proposed and cannot be taken back; they commit, and nothing follows them.
    log.release();
    await turn();
    expect(log.proposed).toEqual(['a0', 'a1']);
    const c = await RespClient.connect(portOf(server));
    expect(await c.call('SET', 'c', '1')).toBe('OK');
    expect(log.proposed).toEqual(['a0', 'a1', 'c']);
    expect(server.stats().dropped).toBe(8);
    b.close();
    c.close();
  });

  it('proposes none of the commands in the read that got their client evicted', async () => {
    const server = await start(limited);
    const b = await RespClient.connect(portOf(server));
    b.raw(unfinishedSet('b-unfinished', 2000, 1000));
    await until(() => server.stats().buffered >= 1000);
    // Whole commands, then an unfinished one that passes the budget: this client holds the most.
    const a = await RespClient.connect(portOf(server));
    a.raw(sets('a', 10) + unfinishedSet('a-unfinished', 3500, 3000));
    await a.closed();
    expect(server.stats().evicted).toBe(1);
    log.release();
    await turn();
    expect(log.proposed).toEqual([]);
    expect(server.stats().dropped).toBe(10);
    // b was not evicted: it finishes its command, which is proposed and answered.
    const reply = b.next();
    b.raw(`${'v'.repeat(1000)}\r\n`);
    expect(await reply).toBe('OK');
    expect(log.proposed).toEqual(['b-unfinished']);
    b.close();
  });

  it('proposes none of the commands waiting when their client closed its connection', async () => {
    const server = await start({ highWaterMark: { commands: 2 } });
    const a = await RespClient.connect(portOf(server));
    a.raw(sets('a', 10));
    await until(() => log.proposed.length === 2);
    a.close();
    // The connection stays until its started commands are answered: the client may only have
    // shut down its sending side, which TCP does not tell from a close.
    await until(() => server.stats().dropped === 8);
    log.release();
    await until(() => server.stats().clients === 0);
    expect(log.proposed).toEqual(['a0', 'a1']);
    expect(server.stats().dropped).toBe(8);
  });

  it('has let go of every client once close() settles: none counted, nothing buffered, none paused', async () => {
    const server = await start({ highWaterMark: { commands: 2 } });
    const a = await RespClient.connect(portOf(server));
    // Two start and wait on the log, eight wait behind them, and a command is cut off: a is paused.
    a.raw(sets('a', 10) + unfinishedSet('a-unfinished', 3500, 3000));
    await until(() => log.proposed.length === 2 && server.stats().paused === 1 && server.stats().buffered >= 3000);
    await server.close();
    const { clients, buffered, paused, writeBuffered } = server.stats();
    expect({ clients, buffered, paused, writeBuffered }).toEqual({ clients: 0, buffered: 0, paused: 0, writeBuffered: 0 });
    expect(server.stats().dropped).toBe(8);
  });

  it('starts the commands before a protocol error within the high-water mark, answers them, then the error, and closes', async () => {
    const server = await start({ highWaterMark: { commands: 2 } });
    const a = await RespClient.connect(portOf(server));
    const replies = Array.from({ length: 11 }, () => a.next());
    a.raw(sets('a', 10) + '*1\r\n$x\r\n');
    await until(() => log.proposed.length >= 2);
    await turn();
    // Not all ten at once: a chunk of tiny commands ending in garbage would bypass the mark.
    expect(log.proposed).toEqual(['a0', 'a1']);
    expect(server.stats().maxInflight).toBeLessThanOrEqual(2);
    log.release();
    const got = await Promise.all(replies);
    expect(got.slice(0, 10)).toEqual(Array.from({ length: 10 }, () => 'OK'));
    expect(got[10]).toEqual(expect.objectContaining({ message: expect.stringMatching(/^ERR Protocol error/) }));
    await a.closed();
    expect(log.proposed).toEqual(Array.from({ length: 10 }, (_, i) => `a${i}`));
    expect(server.stats().maxInflight).toBeLessThanOrEqual(2);
  });
});

describe('the RESP server on a log whose barriers wait', () => {
  let log: HeldLog;
  let server: RespServer;
  afterEach(async () => {
    await server.close();
  });

  const get = (k: string): string => `*2\r\n$3\r\nGET\r\n$${k.length}\r\n${k}\r\n`;
  const exists = (keys: string[]): string => `*${keys.length + 1}\r\n$6\r\nEXISTS\r\n${keys.map((k) => `$${k.length}\r\n${k}\r\n`).join('')}`;

  for (const [what, commands, each] of [
    ['100 GETs of 16 KiB keys', Array.from({ length: 100 }, (_, i) => get(String(i).padStart(16 * 1024, 'k'))), 16 * 1024],
    // Arguments of one byte each cost a Buffer of about 110 bytes on the heap: counted as 129.
    ['50 EXISTS of 1000 one-byte keys', Array.from({ length: 50 }, () => exists(Array.from({ length: 1000 }, () => 'k'))), 1000 * 129],
  ] as const) {
    it(`holds no more than its byte mark of arguments in reads awaiting a barrier: ${what}`, async () => {
      log = new HeldLog();
      const mark = 256 * 1024;
      server = await serveResp({ log, kv: new KvStateMachine(), address: '127.0.0.1:0', highWaterMark: { bytes: mark } });
      const c = await RespClient.connect(portOf(server));
      const replies = commands.map(() => c.next());
      c.raw(commands.join(''));
      await until(() => server.stats().paused === 1 || log.barriers === commands.length);
      await new Promise((r) => setTimeout(r, 50));
      // Reading stops once the reads waiting hold the mark: one command may pass it.
      expect(log.barriers).toBeLessThanOrEqual(Math.ceil(mark / each) + 1);
      log.release();
      const got = await Promise.all(replies);
      expect(got).toEqual(commands.map((cmd) => (cmd.includes('GET') ? null : 0)));
      c.close();
    });
  }

  it('answers a read past maxPendingReads over all connections with -ERR KV_TOO_MANY_READS, counts and logs it, and takes reads again once some are answered', async () => {
    // Each connection may have 4 reads waiting (its own mark); three of them would hold 12.
    log = new HeldLog();
    const logger = new RecordingLogger();
    server = await serveResp({ log, kv: new KvStateMachine(), address: '127.0.0.1:0', highWaterMark: { commands: 4 }, maxPendingReads: 6, logger });
    const [a, b, c] = await Promise.all([0, 1, 2].map(() => RespClient.connect(portOf(server))));
    const reads = (client: RespClient): Array<Promise<unknown>> => ['GET a', 'EXISTS a', 'DBSIZE', 'GET b'].map((cmd) => client.call(...cmd.split(' ')));
    const fromA = reads(a!);
    await until(() => log.barriers === 4);
    const fromB = reads(b!);
    await until(() => server.stats().readsRefused === 2);
    const fromC = await Promise.all(reads(c!));
    expect(fromC.map(errorText)).toEqual(Array.from({ length: 4 }, () => expect.stringMatching(/^ERR KV_TOO_MANY_READS 6 reads wait/)));
    expect(log.barriers).toBe(6);
    expect(server.stats().readsRefused).toBe(6);
    expect(logger.lines.map((l) => l.fields.code)).toEqual(Array.from({ length: 6 }, () => 'KV_TOO_MANY_READS'));
    log.release();
    expect(await Promise.all(fromA)).toEqual([null, 0, 0, null]);
    const answeredB = await Promise.all(fromB);
    expect(answeredB.slice(0, 2)).toEqual([null, 0]);
    expect(answeredB.slice(2).map(errorText)).toEqual([expect.stringMatching(/^ERR KV_TOO_MANY_READS/), expect.stringMatching(/^ERR KV_TOO_MANY_READS/)]);
    expect(await c!.call('GET', 'a')).toBeNull();
    for (const client of [a, b, c]) client!.close();
  });
});

describe('the RESP server against clients that pipeline more than it starts', () => {
  let server: RespServer;
  afterEach(async () => {
    await server.close();
  });

  it('holds the commands it read and has not started within its budget of unfinished commands, not 50 times their bytes', async () => {
    // A read waits for a barrier the test holds: 4 start, and the connection is no longer read.
    // The rest of what was read waited parsed, uncounted: 9000 GETs of 7 bytes, 63 KB sent, held
    // 3.6 MB of heap (arrays and Buffers of 1 or 3 bytes), and 10,000 clients 36 GB.
    const log = new HeldLog();
    server = await serveResp({ log, kv: new KvStateMachine(), address: '127.0.0.1:0', highWaterMark: { commands: 4 } });
    const before = heap();
    const clients = await Promise.all(
      Array.from(
        { length: 20 },
        () =>
          new Promise<net.Socket>((resolve, reject) => {
            const s = net.connect(portOf(server), '127.0.0.1', () => resolve(s));
            s.once('error', reject);
          }),
      ),
    );
    for (const s of clients) {
      s.on('error', () => undefined);
      s.write('GET a\r\n'.repeat(9000));
    }
    await until(() => server.stats().paused === 20 && log.barriers === 80);
    await new Promise((r) => setTimeout(r, 200)); // what was read is parsed
    const grown = heap() - before;
    const counted = server.stats().buffered;
    // Besides what is counted: each connection's socket, parser and 4 reads, some KB.
    expect(grown, `${grown} bytes held, ${counted} counted`).toBeLessThanOrEqual(counted + 20 * 100_000);
    for (const s of clients) s.destroy();
  });
});

describe('the RESP server against strangers (clients that have not authenticated)', () => {
  const servers: RespServer[] = [];
  const start = async (o: Partial<RespServerOptions> = {}): Promise<RespServer> => {
    const s = await serveResp({ log: new HeldLog(), kv: new KvStateMachine(), address: '127.0.0.1:0', requirepass: 'pw', ...o });
    servers.push(s);
    return s;
  };
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });

  /** A socket that reads nothing. */
  const rawConnect = (port: number): Promise<net.Socket> =>
    new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(s));
      s.pause();
      s.once('error', reject);
    });

  it('holds no more than 16 KiB of unread replies for a stranger that pipelines commands and reads nothing', async () => {
    // Each 6-byte PING gets a 33-byte -NOAUTH: with an authenticated client's 1 MiB mark, 10,000
    // strangers held 10 GB until their AUTH deadline. The deadline is put off: on a loaded machine
    // the million PINGs took longer than its 10 s, and the connection was closed before it paused.
    const server = await start({ authTimeoutMs: 600_000 });
    const s = await rawConnect(portOf(server));
    s.on('error', () => undefined);
    s.write(Buffer.alloc(6 * 1_000_000, 'PING\r\n'));
    // Past what the kernel's buffers take for a client that does not read.
    await until(() => server.stats().paused === 1 && server.stats().writeBuffered > 0);
    await new Promise((r) => setTimeout(r, 100));
    expect(server.stats().writeBuffered).toBeLessThanOrEqual(16 * 1024 + 64);
    expect(server.stats().maxWriteBuffered).toBeLessThanOrEqual(16 * 1024 + 64);
    s.destroy();
  });

  it('closes a connection at its third failed AUTH: no guess after it is tried', async () => {
    const server = await start();
    const c = await RespClient.connect(portOf(server));
    const replies = Array.from({ length: 12 }, () => c.next());
    const auth = (pw: string): string => `*2\r\n$4\r\nAUTH\r\n$${pw.length}\r\n${pw}\r\n`;
    c.raw(Array.from({ length: 10 }, (_, i) => auth(`guess${i}`)).join('') + auth('pw') + '*1\r\n$4\r\nPING\r\n');
    const got = await Promise.all(replies);
    const wrongpass = new Error('WRONGPASS invalid username-password pair or user is disabled.');
    expect(got.slice(0, 3)).toEqual([wrongpass, wrongpass, wrongpass]);
    expect(got.slice(3)).toEqual(Array.from({ length: 9 }, () => new Error(CONNECTION_CLOSED)));
    await c.closed();
    expect(server.stats().authFailures).toBe(3);
    // Two failures leave the connection open, and the right password still opens it.
    const d = await RespClient.connect(portOf(server));
    expect(await d.call('AUTH', 'x')).toEqual(wrongpass);
    expect(await d.call('AUTH', 'default', 'y')).toEqual(wrongpass);
    expect(await d.call('AUTH', 'pw')).toBe('OK');
    expect(await d.call('PING')).toBe('PONG');
    d.close();
  });

  it('holds nothing against maxBufferedBytes for a connection closed at its third failed AUTH, while it lingers unread', async () => {
    // Its socket closes only once the client reads the end, and this one reads nothing: what it
    // sent after the AUTHs will never run, and counted it could get honest clients evicted.
    const server = await start({ authTimeoutMs: 600_000 });
    const s = await rawConnect(portOf(server));
    s.on('error', () => undefined);
    const auth = (pw: string): string => `*2\r\n$4\r\nAUTH\r\n$${pw.length}\r\n${pw}\r\n`;
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    s.write(auth('guess0') + auth('guess1') + auth('guess2') + '*1\r\n$4\r\nPING\r\n'.repeat(100) + `*2\r\n$4\r\nAUTH\r\n$16000\r\n${'p'.repeat(15_000)}`);
    await until(() => server.stats().authFailures === 3);
    expect(server.stats().clients).toBe(1);
    expect(server.stats().buffered).toBe(0);
    s.destroy();
    await closed;
    await until(() => server.stats().clients === 0);
    expect(server.stats().buffered).toBe(0);
  });

  it('holds nothing against maxBufferedBytes for a connection that sent QUIT, while it lingers unread, and counts what came after it as dropped', async () => {
    const server = await start({ authTimeoutMs: 600_000 });
    const s = await rawConnect(portOf(server));
    s.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    s.write('*1\r\n$4\r\nQUIT\r\n' + '*1\r\n$4\r\nPING\r\n'.repeat(100) + `*2\r\n$4\r\nECHO\r\n$2000\r\n${'p'.repeat(1_000)}`);
    await until(() => server.stats().maxInflight === 1); // the QUIT started
    expect(server.stats().clients).toBe(1);
    expect(server.stats().buffered).toBe(0);
    expect(server.stats().dropped).toBe(100);
    s.destroy();
    await closed;
    await until(() => server.stats().clients === 0);
    expect(server.stats().buffered).toBe(0);
    expect(server.stats().dropped).toBe(100);
  });

  it('refuses AUTH from an address that failed too often, across connections, without checking it, until its failures are old', async () => {
    const clock = new ManualClock();
    const server = await start({ authThrottle: { failures: 4, windowMs: 60_000 }, refusalLogClock: clock });
    const port = portOf(server);
    const wrongpass = new Error('WRONGPASS invalid username-password pair or user is disabled.');
    const throttled = /^ERR TOO_MANY_AUTH_FAILURES 4 failed AUTH attempts from 127\.0\.0\.2 in the last 120 s at most: retry in 120 s$/;
    // Three guesses close a connection; a new one may not guess on where the last left off.
    const a = await RespClient.connect(port, '127.0.0.1', '127.0.0.2');
    for (let i = 0; i < 3; i++) expect(await a.call('AUTH', `guess${i}`)).toEqual(wrongpass);
    await a.closed();
    const b = await RespClient.connect(port, '127.0.0.1', '127.0.0.2');
    expect(await b.call('AUTH', 'guess3')).toEqual(wrongpass);
    // The right password is refused too: checked, it would tell a guess apart.
    expect(errorText(await b.call('AUTH', 'pw'))).toMatch(throttled);
    await b.closed();
    expect(server.stats().authFailures).toBe(4);
    // A new connection from there is refused as it is accepted.
    const c = await RespClient.connect(port, '127.0.0.1', '127.0.0.2');
    expect(errorText(await c.next())).toMatch(throttled);
    await c.closed();
    expect(server.stats().refused).toBe(2);
    // Another address is served.
    const d = await RespClient.connect(port, '127.0.0.1', '127.0.0.3');
    expect(await d.call('AUTH', 'pw')).toBe('OK');
    d.close();
    // The failures are dropped one to two windows after they were made.
    clock.fire();
    const e = await RespClient.connect(port, '127.0.0.1', '127.0.0.2');
    expect(errorText(await e.call('AUTH', 'pw'))).toMatch(/retry in 60 s$/);
    clock.fire();
    const f = await RespClient.connect(port, '127.0.0.1', '127.0.0.2');
    expect(await f.call('AUTH', 'pw')).toBe('OK');
    expect(await f.call('PING')).toBe('PONG');
    f.close();
  });

  it('holds no timer once closed: the failed AUTHs it counted are forgotten with it', async () => {
    const clock = new ManualClock();
    const server = await start({ refusalLogClock: clock });
    const c = await RespClient.connect(portOf(server));
    expect(await c.call('AUTH', 'guess')).toEqual(new Error('WRONGPASS invalid username-password pair or user is disabled.'));
    expect(clock.pending).toContain(60_000); // the window that counts it
    c.close();
    await server.close();
    expect(clock.pending).toEqual([]);
  });

  it('refuses a connection past maxUnauthenticatedPerAddress from an address whose connections have not authenticated', async () => {
    const server = await start({ maxUnauthenticatedPerAddress: 3, refusalLogClock: new ManualClock() });
    const port = portOf(server);
    const strangers = await Promise.all(Array.from({ length: 3 }, () => RespClient.connect(port, '127.0.0.1', '127.0.0.2')));
    const over = await RespClient.connect(port, '127.0.0.1', '127.0.0.2');
    expect(errorText(await over.next())).toMatch(
      /^ERR TOO_MANY_CONNECTIONS 3 connections from 127\.0\.0\.2 have not authenticated, the most one address may hold/,
    );
    await over.closed();
    expect(server.stats().refused).toBe(1);
    // Another address is served; and a connection that authenticates no longer counts.
    const other = await RespClient.connect(port, '127.0.0.1', '127.0.0.3');
    expect(await other.call('AUTH', 'pw')).toBe('OK');
    expect(await strangers[0]!.call('AUTH', 'pw')).toBe('OK');
    const next = await RespClient.connect(port, '127.0.0.1', '127.0.0.2');
    expect(await next.call('AUTH', 'pw')).toBe('OK');
    // One that leaves frees its place too.
    strangers[1]!.close();
    await until(() => server.stats().clients === 4);
    const last = await RespClient.connect(port, '127.0.0.1', '127.0.0.2');
    expect(await last.call('PING')).toEqual(new Error('NOAUTH Authentication required.'));
    for (const c of [...strangers, other, next, last]) c.close();
  });

  it('by default one address holds at most a quarter of maxClients before AUTH', async () => {
    const server = await start({ maxClients: 40, refusalLogClock: new ManualClock() });
    const held = await Promise.all(Array.from({ length: 10 }, () => RespClient.connect(portOf(server), '127.0.0.1', '127.0.0.2')));
    const over = await RespClient.connect(portOf(server), '127.0.0.1', '127.0.0.2');
    expect(errorText(await over.next())).toMatch(/^ERR TOO_MANY_CONNECTIONS /);
    for (const c of held) c.close();
  });

  it('by default an address may fail AUTH 10 times a minute, however many connections it opens', async () => {
    const server = await start({ refusalLogClock: new ManualClock() });
    const wrongpass = new Error('WRONGPASS invalid username-password pair or user is disabled.');
    for (let i = 0; i < 5; i++) {
      const c = await RespClient.connect(portOf(server), '127.0.0.1', '127.0.0.2');
      for (let j = 0; j < 2; j++) expect(await c.call('AUTH', `guess${i}.${j}`)).toEqual(wrongpass);
      c.close();
    }
    const c = await RespClient.connect(portOf(server), '127.0.0.1', '127.0.0.2');
    expect(errorText(await c.next())).toMatch(/^ERR TOO_MANY_AUTH_FAILURES /);
  });
});
