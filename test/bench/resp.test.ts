// The RESP load client of `npm run bench -- resp`: it counts the SETs a real node
// committed, and an error reply, a lost connection, an unparseable reply or a
// silent server fail the window with the counts; the suite refuses flags it does
// not know. No assertion here is about speed.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LoadError, ReplyError, ReplyParser, RespLoad, call, quantile } from '../../bench/resp-load.js';
import { SuiteUsageError, normalizeArgs } from '../../bench/suite.js';
import { options } from '../../bench/resp.bench.js';
import { tempDir, waitFor } from '../log/helpers.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const MAIN = join(ROOT, 'src/cli/main.ts');
const RUN = join(ROOT, 'bench/run.ts');

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A load client of `options` against a fake server answering with `answer`; both are closed after the test. */
async function loadAgainst(answer: Parameters<typeof fakeServer>[0], options: Omit<Parameters<typeof RespLoad.connect>[0], 'host' | 'port'>) {
  const server = await fakeServer(answer);
  const load = await RespLoad.connect({ host: '127.0.0.1', port: server.port, ...options });
  cleanups.push(() => load.close());
  return { server, load };
}

/** A fake server: `answer` gets each SET's number (0-based, over all connections) and returns the reply bytes, or 'close' or 'silent'. */
async function fakeServer(answer: (n: number) => string | 'close' | 'silent'): Promise<{ port: number; received: () => number }> {
  let n = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let pending = '';
    s.on('data', (d: Buffer) => {
      pending += d.toString('latin1');
      // One SET is '*3\r\n$3\r\nSET\r\n$16\r\nkey:............\r\n$100\r\n' + 100 bytes + '\r\n'.
      const size = '*3\r\n$3\r\nSET\r\n$16\r\n'.length + 16 + 2 + '$100\r\n'.length + 100 + 2;
      while (pending.length >= size) {
        expect(pending.startsWith('*3\r\n$3\r\nSET\r\n$16\r\nkey:')).toBe(true);
        pending = pending.slice(size);
        const a = answer(n++);
        if (a === 'close') s.destroy();
        else if (a !== 'silent') s.write(a);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  return { port: (server.address() as net.AddressInfo).port, received: () => n };
}

async function failure(p: Promise<unknown>): Promise<LoadError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LoadError);
  return err as LoadError;
}

describe('the load client', () => {
  it('counts exactly the SETs a real raftlog serve committed', async () => {
    const t = tempDir('raftlog-resp-load-');
    cleanups.push(t.cleanup);
    const node: ChildProcess = spawn(
      process.execPath,
      ['--import', 'tsx', MAIN, 'serve', '--id', '1', '--data', join(t.dir, 'node'), '--resp', '127.0.0.1:0', '--sync', 'none', '--log-level', 'warn'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          if (node.exitCode !== null || node.signalCode !== null) return r();
          node.once('exit', () => r());
          node.kill('SIGTERM');
        }),
    );
    let out = '';
    node.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor('the node to serve RESP', () => /resp 127\.0\.0\.1:\d+/.test(out), 30_000);
    const port = Number(/resp 127\.0\.0\.1:(\d+)/.exec(out)![1]);
    const committed = async (): Promise<number> => {
      const info = await call('127.0.0.1', port, ['INFO']);
      expect(info).toBeInstanceOf(Buffer);
      return Number(/^appends_committed:(\d+)/m.exec((info as Buffer).toString())![1]);
    };

    const before = await committed();
    const load = await RespLoad.connect({ host: '127.0.0.1', port, clients: 4, keyspace: 50 });
    cleanups.push(() => load.close());
    const warm = await load.run(150, false);
    const w = await load.run(300);
    load.close();
    // Every SET is one append: what the client counted is what the node committed.
    expect(warm.sets).toBeGreaterThan(0);
    expect(w.sets).toBeGreaterThan(0);
    expect(w.errors).toBe(0);
    expect((await committed()) - before).toBe(warm.sets + w.sets);
    expect(warm.latenciesMs.length).toBe(0);
    expect(w.latenciesMs.length).toBe(w.sets);
    expect(quantile(w.latenciesMs, 0.5)).toBeLessThanOrEqual(quantile(w.latenciesMs, 0.99));
    const keys = await call('127.0.0.1', port, ['DBSIZE']);
    expect(keys).toBeGreaterThan(0);
    expect(keys).toBeLessThanOrEqual(Math.min(50, warm.sets + w.sets));
    expect(await call('127.0.0.1', port, ['GET', 'key:999999999999'])).toBeNull();
  }, 60_000);

  it('fails the window on an error reply, after counting every reply outstanding', async () => {
    const { server, load } = await loadAgainst((n) => (n < 20 ? '+OK\r\n' : '-ERR not today\r\n'), { clients: 3 });
    const err = await failure(load.run(10_000));
    expect(err.code).toBe('LOAD_ERROR_REPLY');
    expect(err.message).toContain('-ERR not today');
    expect(err.counts.firstError).toBe('-ERR not today');
    expect(err.counts.sets).toBe(20);
    expect(err.counts.errors).toBeGreaterThanOrEqual(1);
    expect(err.counts.sets + err.counts.errors).toBe(server.received());
    expect(err.message).toContain(`20 SETs answered +OK, ${err.counts.errors} answered with an error`);
  });

  it('fails the window on a reply other than +OK', async () => {
    const { server, load } = await loadAgainst(() => ':1\r\n', { clients: 1 });
    const err = await failure(load.run(10_000));
    expect(err.code).toBe('LOAD_ERROR_REPLY');
    expect(err.counts).toEqual({ sets: 0, errors: 1, firstError: 'SET answered 1, not +OK' });
  });

  it('fails the window when the server closes a connection, and refuses the next window', async () => {
    const { server, load } = await loadAgainst((n) => (n === 10 ? 'close' : '+OK\r\n'), { clients: 2 });
    const err = await failure(load.run(10_000));
    expect(err.code).toBe('LOAD_CONNECTION_LOST');
    expect(err.counts.sets).toBe(server.received() - 1);
    const next = await failure(load.run(100));
    expect(next.code).toBe('LOAD_CONNECTION_LOST');
    expect(next.message).toContain('1 of 2 connections were lost');
  });

  it('fails the window on bytes that are no reply', async () => {
    const { server, load } = await loadAgainst(() => '?what\r\n', { clients: 1 });
    const err = await failure(load.run(10_000));
    expect(err.code).toBe('LOAD_PROTOCOL');
    expect(err.message).toContain('unexpected reply type byte 0x3f');
  });

  it('fails the window when replies stop coming', async () => {
    const { server, load } = await loadAgainst((n) => (n < 5 ? '+OK\r\n' : 'silent'), { clients: 1, drainTimeoutMs: 200 });
    const err = await failure(load.run(100));
    expect(err.code).toBe('LOAD_TIMEOUT');
    expect(err.counts.sets).toBe(5);
    expect(err.message).toContain('1 replies still outstanding');
  });
});

describe('the reply parser', () => {
  it('takes replies split anywhere, and bounds what it holds', () => {
    const bytes = Buffer.from('+OK\r\n-ERR x\r\n:42\r\n$5\r\nhello\r\n$-1\r\n$0\r\n\r\n');
    for (let cut = 0; cut <= bytes.length; cut++) {
      const p = new ReplyParser();
      const got = [...p.push(bytes.subarray(0, cut)), ...p.push(bytes.subarray(cut))];
      expect(got).toEqual(['OK', new ReplyError('ERR x'), 42, Buffer.from('hello'), null, Buffer.alloc(0)]);
    }
    expect(() => new ReplyParser().push(Buffer.from(`+${'a'.repeat(70_000)}`))).toThrow(/longer than/);
    expect(() => new ReplyParser().push(Buffer.from('$99999999\r\n'))).toThrow(/bad bulk length/);
    expect(() => new ReplyParser().push(Buffer.from('$3\r\nabcXY'))).toThrow(/not ended by CRLF/);
    expect(() => new ReplyParser().push(Buffer.from(':1e5\r\n'))).toThrow(/bad integer/);
  });
});

describe('npm run bench -- resp', () => {
  it('takes --name V and --name=V, and checks the values', () => {
    expect(normalizeArgs(['--seconds', '2', '--clients=1,8', '--quick', '--runs', '1'], options)).toEqual([
      '--seconds=2',
      '--clients=1,8',
      '--quick',
      '--runs=1',
    ]);
    expect(() => normalizeArgs(['--seconds', '0'], options)).toThrow(SuiteUsageError);
    expect(() => normalizeArgs(['--clients', '1,,2'], options)).toThrow(/positive integers separated by commas/);
    expect(() => normalizeArgs(['--runs'], options)).toThrow(/needs a value/);
    expect(() => normalizeArgs(['--bogus'], options)).toThrow(/unknown option --bogus/);
  });

  it('refuses an unknown flag or a bad value with its usage and exit status 2', async () => {
    const tsx = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
      new Promise((resolve) => {
        execFile(process.execPath, ['--import', 'tsx', RUN, ...args], { encoding: 'utf8', timeout: 60_000, cwd: ROOT }, (err, stdout, stderr) => {
          resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
        });
      });
    const [unknown, bad] = [await tsx(['resp', '--bogus']), await tsx(['resp', '--seconds', 'soon'])];
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown option --bogus');
    expect(unknown.stderr).toContain('resp: --runs N');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--seconds soon: must be a positive number');
    expect(unknown.stdout + bad.stdout).not.toContain('=== resp ===');
  }, 60_000);
});
