import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvStateMachine } from '../../src/kv/kv-state-machine.js';
import { serveResp, type KvLog, type RespServer } from '../../src/kv/server.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { RespClient } from './resp-client.js';

describe('the RESP server on an embedded log', () => {
  let dir: string;
  let log: ReplicatedLog;
  let server: RespServer;
  let port: number;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'raftlog-kv-'));
    const kv = new KvStateMachine();
    log = await ReplicatedLog.open({ dataDir: dir, stateMachine: kv });
    server = await serveResp({ log, kv, address: '127.0.0.1:0' });
    port = Number(server.address.split(':').pop());
  });
  afterAll(async () => {
    await server.close();
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the commands redis-cli uses', async () => {
    const c = await RespClient.connect(port);
    expect(await c.call('PING')).toBe('PONG');
    expect(await c.call('ECHO', 'hi')).toBe('hi');
    expect(await c.call('SET', 'k', 'v1')).toBe('OK');
    expect(await c.call('GET', 'k')).toBe('v1');
    expect(await c.call('GET', 'missing')).toBeNull();
    expect(await c.call('INCR', 'n')).toBe(1);
    expect(await c.call('INCR', 'n')).toBe(2);
    expect(await c.call('INCR', 'k')).toEqual(new Error('ERR value is not an integer or out of range'));
    expect(await c.call('SET', 'n64', '9223372036854775806')).toBe('OK');
    expect(await c.call('INCR', 'n64')).toBe(9223372036854775807n);
    expect(await c.call('INCR', 'n64')).toEqual(new Error('ERR increment or decrement would overflow'));
    expect(await c.call('EXISTS', 'k', 'n', 'missing')).toBe(2);
    expect(await c.call('DEL', 'k', 'missing')).toBe(1);
    expect(await c.call('DBSIZE')).toBe(2);
    const info = (await c.call('INFO')) as string;
    expect(info).toMatch(/^# Raft/);
    expect(info).toMatch(/role:leader/);
    // Words, not enum numbers; sections as Redis has them.
    expect(info).toMatch(/\r\nstate:leader\r\n/);
    expect(info).toMatch(/\r\n# Peers\r\npeer0:id=1,address=embedded,role=leader,match=\d+,next=\d+,lag=0,state=replicate,active=yes\r\n/);
    expect(info).toMatch(/\r\n# WAL\r\n(.|\r\n)*last_index:\d+\r\n(.|\r\n)*fsyncs:\d+/);
    expect(info).not.toMatch(/:\{/);
    expect(await c.call('RAFT.MEMBERS')).toEqual(['1 embedded voter leader']);
    expect(await c.call('NOPE')).toEqual(new Error("ERR unknown command 'NOPE', with args beginning with: "));
    expect(await c.call('SET', 'only-key')).toEqual(expect.objectContaining({ message: expect.stringContaining('wrong number of arguments') }));
    c.close();
  });

  it('refuses a wrong number of arguments as Redis does, where it took the first and ignored the rest', async () => {
    const c = await RespClient.connect(port);
    const arity = (name: string) => new Error(`ERR wrong number of arguments for '${name}' command`);
    expect(await c.call('PING', 'a', 'b')).toEqual(arity('ping'));
    expect(await c.call('DBSIZE', 'x')).toEqual(arity('dbsize'));
    // Redis's words for too few; too many are SET's options, which this SET does not take.
    expect(await c.call('SET', 'k')).toEqual(arity('set'));
    expect(await c.call('SET', 'k', 'v', 'EX', '10')).toEqual(new Error("ERR wrong number of arguments for 'set' command (options are not supported)"));
    expect(await c.call('SELECT')).toEqual(arity('select'));
    expect(await c.call('SELECT', '0', '1')).toEqual(arity('select'));
    expect(await c.call('SELECT', 'x')).toEqual(new Error('ERR value is not an integer or out of range'));
    // What redis-server 7.0 answers when started with --databases 1.
    expect(await c.call('SELECT', '1')).toEqual(new Error('ERR DB index is out of range'));
    expect(await c.call('SELECT', '-1')).toEqual(new Error('ERR DB index is out of range'));
    expect(await c.call('SELECT', '0')).toBe('OK');
    expect(await c.call('PING', 'a')).toBe('a');
    c.close();
  });

  it("answers an unknown command in Redis 7's words, bytes for bytes", async () => {
    const c = await RespClient.connect(port);
    // What redis-server 7.0 answers: the name and the arguments cut at 128 bytes (and at a NUL, as
    // C strings are), each CR or LF a space.
    const unknown = 'ERR unknown command';
    expect(await c.call('NOPE', 'a')).toEqual(new Error(`${unknown} 'NOPE', with args beginning with: 'a' `));
    expect(await c.call('NOPE', 'a\0b', 'c\r\nd')).toEqual(new Error(`${unknown} 'NOPE', with args beginning with: 'a' 'c  d' `));
    expect(await c.call('N\0P')).toEqual(new Error(`${unknown} 'N', with args beginning with: `));
    const words = 'a b c d e f g h i j k l m n o p q r s t u v w x y z aa bb cc dd ee ff gg hh ii jj kk ll mm nn oo pp qq rr ss tt uu vv ww xx'.split(' ');
    const upTo128 = words
      .slice(0, 31)
      .map((w) => `'${w}' `)
      .join('');
    expect(await c.call('NOPE', ...words)).toEqual(new Error(`${unknown} 'NOPE', with args beginning with: ${upTo128}`));
    expect(await c.call('NOPE', 'x'.repeat(200), 'b')).toEqual(new Error(`${unknown} 'NOPE', with args beginning with: '${'x'.repeat(128)}' `));
    expect(await c.call('Y'.repeat(200))).toEqual(new Error(`${unknown} '${'Y'.repeat(128)}', with args beginning with: `));
    c.close();
  });

  it('echoes the bytes of an unknown command and its arguments as they came, not decoded as UTF-8', async () => {
    // Bytes that are not UTF-8, and a two-byte character cut by the 128-byte bound.
    const name = Buffer.from([0x4e, 0xff, 0xfe]);
    const arg = Buffer.concat([Buffer.alloc(127, 0x61), Buffer.from('\u00e9')]);
    const got = await exchange(port, Buffer.concat([Buffer.from('*2\r\n'), bulk(name), bulk(arg)]), 1);
    const expected = Buffer.concat([
      Buffer.from("-ERR unknown command '"),
      name,
      Buffer.from("', with args beginning with: '"),
      arg.subarray(0, 128),
      Buffer.from("' \r\n"),
    ]);
    expect(got.toString('hex')).toBe(expected.toString('hex'));
  });

  it('echoes the bytes of an unknown CONFIG subcommand as they came, at most 128, up to a NUL, a line end in them written as a space', async () => {
    // Bytes that are not UTF-8, a line end that would start a reply of its own, and more than 128 bytes.
    const long = Buffer.concat([Buffer.from([0x53, 0xff, 0xfe, 0x0d, 0x0a]), Buffer.from('+OK'), Buffer.alloc(200, 0x61)]);
    const nul = Buffer.from('SET\x00hidden');
    const config = (sub: Buffer): Buffer => Buffer.concat([Buffer.from('*2\r\n'), bulk(Buffer.from('CONFIG')), bulk(sub)]);
    const got = await exchange(port, Buffer.concat([config(long), config(nul)]), 2);
    const expected = Buffer.concat([
      Buffer.from("-ERR unknown subcommand '"),
      Buffer.from([0x53, 0xff, 0xfe, 0x20, 0x20]),
      long.subarray(5, 128),
      Buffer.from("'. Try CONFIG HELP.\r\n-ERR unknown subcommand 'SET'. Try CONFIG HELP.\r\n"),
    ]);
    expect(got.toString('hex')).toBe(expected.toString('hex'));
  });

  it('answers what redis-cli and redis-benchmark ask at start, so that they run as against Redis', async () => {
    const c = await RespClient.connect(port);
    // redis-cli asks COMMAND DOCS: on an error it uses the help built into it, where an empty
    // list left it with none. The server has no COMMAND, and says so as Redis would.
    expect(await c.call('COMMAND', 'DOCS')).toEqual(new Error("ERR unknown command 'COMMAND', with args beginning with: 'DOCS' "));
    // redis-benchmark asks CONFIG GET save and appendonly, and warns unless each has a value.
    // Every write is in the log, replayed at start, before it is answered: append-only, no RDB.
    expect(await c.call('CONFIG', 'GET', 'save')).toEqual(['save', '']);
    expect(await c.call('CONFIG', 'GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    expect(await c.call('config', 'get', 'SAV*', 'appendonly', 'save')).toEqual(['save', '', 'appendonly', 'yes']);
    expect(await c.call('CONFIG', 'GET', 'maxmemory')).toEqual([]);
    expect(await c.call('CONFIG', 'GET', '*')).toEqual(['save', '', 'appendonly', 'yes', 'appendfsync', 'always']);
    expect(await c.call('CONFIG', 'GET', 'APPEND?NLY', 's**e')).toEqual(['save', '', 'appendonly', 'yes']);
    expect(await c.call('CONFIG', 'GET', 'sav\\?', '\\*', '*x*', 'save?', `${'*'.repeat(100_000)}z`)).toEqual([]);
    expect(await c.call('CONFIG', 'GET', 'sav\\e*')).toEqual(['save', '']);
    expect(await c.call('CONFIG', 'GET', 'APPENDONLY')).toEqual(['APPENDONLY', 'yes']);
    expect(await c.call('CONFIG')).toEqual(new Error("ERR wrong number of arguments for 'config' command"));
    expect(await c.call('CONFIG', 'GET')).toEqual(new Error("ERR wrong number of arguments for 'config|get' command"));
    expect(await c.call('CONFIG', 'SET', 'save', '')).toEqual(new Error("ERR unknown subcommand 'SET'. Try CONFIG HELP."));
    expect(await c.call('CONFIG', 'HELP')).toEqual([
      'CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
      'GET <pattern>',
      '    Return parameters matching the glob-like <pattern> and their values.',
      'HELP',
      '    Prints this help.',
    ]);
    c.close();
  });

  it('answers pipelined commands in order, and a read sees the writes before it', async () => {
    const c = await RespClient.connect(port);
    const replies = [];
    for (let i = 0; i < 50; i++) {
      replies.push(c.call('SET', `p${i}`, `${i}`));
      replies.push(c.call('GET', `p${i}`));
    }
    const got = await Promise.all(replies);
    for (let i = 0; i < 50; i++) {
      expect(got[2 * i]).toBe('OK');
      expect(got[2 * i + 1]).toBe(`${i}`);
    }
    c.close();
  });

  it("runs a connection's commands in order: a read does not see the writes pipelined after it", async () => {
    const c = await RespClient.connect(port);
    const cmd = (...a: string[]) => `*${a.length}\r\n${a.map((x) => `$${x.length}\r\n${x}\r\n`).join('')}`;
    // One packet, as a pipelining client sends it; the replies are Redis's.
    const script: Array<[string[], unknown]> = [
      [['SET', 'o', '1'], 'OK'],
      [['GET', 'o'], '1'],
      [['SET', 'o', '2'], 'OK'],
      [['EXISTS', 'o'], 1],
      [['DEL', 'o'], 1],
      [['GET', 'o'], null],
      [['INCR', 'o'], 1],
      [['GET', 'o'], '1'],
      [['INCR', 'o'], 2],
      [['DBSIZE'], expect.any(Number)],
      [['DEL', 'o'], 1],
    ];
    const replies = script.map(() => c.next());
    c.raw(script.map(([a]) => cmd(...a)).join(''));
    expect(await Promise.all(replies)).toEqual(script.map(([, want]) => want));
    c.close();
  });

  it('closes a connection that breaks the protocol, and keeps serving others', async () => {
    const bad = await RespClient.connect(port);
    bad.raw('*1\r\n$x\r\n');
    expect(await bad.next()).toEqual(expect.objectContaining({ message: expect.stringContaining('Protocol error') }));
    await bad.closed();
    const good = await RespClient.connect(port);
    expect(await good.call('PING')).toBe('PONG');
    good.close();
  });

  it('answers the started commands of a client that shut down its sending side, then ends the connection', async () => {
    // As `printf ... | nc -N` sends: the commands, then a FIN, and it reads until the server's.
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    s.on('error', () => undefined);
    let received = '';
    s.on('data', (d: Buffer) => (received += d.toString('latin1')));
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    s.end('PING\r\nSET half 1\r\nINCR half-n\r\nGET half\r\n');
    await closed;
    expect(received).toBe('+PONG\r\n+OK\r\n:1\r\n$1\r\n1\r\n');
  });

  it('QUIT answers OK and closes', async () => {
    const c = await RespClient.connect(port);
    expect(await c.call('QUIT')).toBe('OK');
    await c.closed();
  });
});

describe('the RESP server when the log refuses a write', () => {
  it('answers ERR with the error code, in command order, and goes on serving', async () => {
    const kv = new KvStateMachine();
    // A log that refuses every write carrying 'refused', throws on one carrying 'thrown' (a
    // log may throw instead of rejecting: it must not take the server down), and answers the
    // others late, so that a refusal settles before the writes sent ahead of it.
    const log: KvLog = {
      append: (data) => {
        if (Buffer.from(data).includes('thrown')) throw Object.assign(new Error('closed'), { code: 'LOG_CLOSED' });
        return Buffer.from(data).includes('refused')
          ? Promise.reject(Object.assign(new Error('this node is not the leader'), { code: 'LOG_NOT_LEADER' }))
          : new Promise((resolve) => setTimeout(() => resolve({ index: 1, term: 1, result: kv.apply({ index: 1, term: 1, offset: 0, data }) }), 20));
      },
      barrier: () => Promise.resolve(),
      status: () => ({}),
    };
    const server = await serveResp({ log, kv, address: '127.0.0.1:0' });
    const c = await RespClient.connect(Number(server.address.split(':').pop()));
    try {
      const got = await Promise.all([c.call('SET', 'a', '1'), c.call('SET', 'refused', 'x'), c.call('SET', 'b', '2'), c.call('GET', 'b')]);
      expect(got).toEqual(['OK', new Error('ERR LOG_NOT_LEADER this node is not the leader'), 'OK', '2']);
      expect(await c.call('GET', 'refused')).toBeNull();
      expect(await Promise.all([c.call('SET', 'thrown', 'x'), c.call('SET', 'c', '3')])).toEqual([new Error('ERR LOG_CLOSED closed'), 'OK']);
    } finally {
      c.close();
      await server.close();
    }
  });
});

describe('the RESP server on a log that stopped', () => {
  it('answers PING with why, as every other command does: a dead node does not answer PONG', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'raftlog-kv-'));
    const kv = new KvStateMachine();
    const log = await ReplicatedLog.open({ dataDir: dir, stateMachine: kv });
    const server = await serveResp({ log, kv, address: '127.0.0.1:0' });
    const fatal: KvLog = {
      append: () => Promise.reject(Object.assign(new Error('disk gone'), { code: 'LOG_FATAL' })),
      barrier: () => Promise.reject(Object.assign(new Error('disk gone'), { code: 'LOG_FATAL' })),
      status: () => ({ role: 'fatal', lead: 1, fatal: { code: 'LOG_FATAL', message: 'disk gone' } }),
    };
    const dead = await serveResp({ log: fatal, kv, address: '127.0.0.1:0' });
    const c = await RespClient.connect(Number(server.address.split(':').pop()));
    const d = await RespClient.connect(Number(dead.address.split(':').pop()));
    try {
      expect(await c.call('PING')).toBe('PONG');
      await log.close();
      expect(await c.call('PING')).toEqual(new Error('ERR LOG_CLOSED the replicated log is closed'));
      expect(await c.call('GET', 'k')).toEqual(new Error('ERR LOG_CLOSED the replicated log is closed'));
      expect(await d.call('PING')).toEqual(new Error('ERR LOG_FATAL disk gone'));
      expect(await d.call('PING', 'hello')).toEqual(new Error('ERR LOG_FATAL disk gone'));
    } finally {
      c.close();
      d.close();
      await server.close();
      await dead.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A RESP bulk string of `b`, as sent. */
function bulk(b: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n')]);
}

/** Sends `request` over a socket of its own and resolves to the bytes received once `lines` line ends came. */
async function exchange(port: number, request: Buffer, lines: number): Promise<Buffer> {
  const socket = net.connect(port, '127.0.0.1');
  const got: Buffer[] = [];
  const ended = new Promise<void>((resolve, reject) => {
    socket.on('error', reject);
    socket.on('data', (d: Buffer) => {
      got.push(d);
      if (Buffer.concat(got).toString('latin1').split('\r\n').length > lines) resolve();
    });
  });
  socket.write(request);
  try {
    await ended;
  } finally {
    socket.destroy();
  }
  return Buffer.concat(got);
}
