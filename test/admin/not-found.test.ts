// What a refusal repeats of what the client sent (a 404 its path, a 403 its Host header): a
// bounded part of it, in printable ASCII.
import { IncomingMessage, type ServerResponse } from 'node:http';
import { connect, Socket } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { adminHandler, serveAdmin } from '../../src/admin/index.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { tempDir } from '../log/helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function openLog(): Promise<ReplicatedLog> {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const log = await ReplicatedLog.open({ dataDir: t.dir });
  cleanups.push(() => log.close());
  return log;
}

/** The raw answer to `GET <path>`, sent as bytes. */
function rawGet(address: string, path: Buffer): Promise<string> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const s = connect(port, host, () =>
      s.end(Buffer.concat([Buffer.from('GET '), path, Buffer.from(' HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')])),
    );
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('close', () => resolve(Buffer.concat(parts).toString('utf8')));
    s.on('error', reject);
  });
}

it('a 404 repeats at most 100 characters of a long path, and says how many more there were', async () => {
  const log = await openLog();
  const admin = await serveAdmin({ log, address: '127.0.0.1:0' });
  cleanups.push(() => admin.close());
  // Node's parser takes a path up to its 16 KiB header limit: one of 15,000 characters was echoed whole.
  const path = `/${'a'.repeat(14_999)}`;
  const answer = await rawGet(admin.address, Buffer.from(path));
  expect(answer).toMatch(/^HTTP\/1\.1 404 /);
  const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { code: string; message: string };
  expect(body).toEqual({ code: 'NOT_FOUND', message: `no route GET /${'a'.repeat(99)}... (14900 more characters)` });
});

it('a 403 HOST_NOT_ALLOWED repeats at most 100 characters of the Host header, its tabs and bytes outside ASCII written out', async () => {
  const log = await openLog();
  const admin = await serveAdmin({ log, address: '127.0.0.1:0' });
  cleanups.push(() => admin.close());
  const port = Number(admin.address.slice(admin.address.lastIndexOf(':') + 1));
  // A header value may hold tabs and Latin-1 bytes (obs-text), which Node reads as U+0000..U+00FF.
  const host = Buffer.concat([Buffer.from('evil\t'), Buffer.from([0xe9, 0x9b]), Buffer.from('h'.repeat(200))]);
  const answer = await new Promise<string>((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () =>
      s.end(Buffer.concat([Buffer.from('GET /status HTTP/1.1\r\nHost: '), host, Buffer.from('\r\nConnection: close\r\n\r\n')])),
    );
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('close', () => resolve(Buffer.concat(parts).toString('utf8')));
    s.on('error', reject);
  });
  expect(answer).toMatch(/^HTTP\/1\.1 403 /);
  const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { code: string; message: string };
  expect(body).toEqual({
    code: 'HOST_NOT_ALLOWED',
    message: `Host 'evil\\x09\\xe9\\x9b${'h'.repeat(93)}... (107 more characters)' is refused: without a token only localhost, an IP address or the listen host is served`,
  });
});

it("Node's parser refuses a path with control characters or bytes outside ASCII as MALFORMED_REQUEST before any route", async () => {
  const log = await openLog();
  const admin = await serveAdmin({ log, address: '127.0.0.1:0' });
  cleanups.push(() => admin.close());
  for (const path of [Buffer.from('/x\x1b[2Jy'), Buffer.from('/x\x7fy'), Buffer.from([0x2f, 0xff, 0xfe, 0x80]), Buffer.from('/\u202eabc')]) {
    const answer = await rawGet(admin.address, path);
    expect(answer, JSON.stringify(path.toString('latin1'))).toMatch(/^HTTP\/1\.1 400 [^]*"code":"MALFORMED_REQUEST"/);
  }
});

it("on a server of one's own that hands the handler any path, a 404 writes out its control characters and what is not ASCII", async () => {
  const log = await openLog();
  const handler = adminHandler(log);
  cleanups.push(() => handler.close());
  const ask = (url: string): Promise<{ status: number; body: { code: string; message: string } }> =>
    new Promise((resolve) => {
      const req = new IncomingMessage(new Socket());
      Object.assign(req, { url, method: 'GET', httpVersion: '1.1', headers: { host: 'localhost' }, rawHeaders: ['Host', 'localhost'] });
      let status = 0;
      const res = {
        headersSent: false,
        destroyed: false,
        setHeader: () => undefined,
        writeHead(s: number) {
          status = s;
          return res;
        },
        end: (text: string) => resolve({ status, body: JSON.parse(text) as { code: string; message: string } }),
      };
      handler(req, res as unknown as ServerResponse);
    });
  // A path decoded from bytes that are not UTF-8 (as latin1), and terminal escapes.
  const r = await ask('/x\x1b]0;owned\x07\u00ff\u202e\u2028y');
  expect(r.status).toBe(404);
  expect(r.body).toEqual({ code: 'NOT_FOUND', message: 'no route GET /x\\x1b]0;owned\\x07\\xff\\u202e\\u2028y' });
});
