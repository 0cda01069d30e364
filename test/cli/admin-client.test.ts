// The admin client's failures: an answer cut short is a coded error, never a raw socket error.
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it, vi } from 'vitest';
import { call } from '../../src/cli/admin-client.js';
import { main as leader } from '../../src/cli/leader.js';
import { until } from '../transport/helpers.js';
import { CliError } from '../../src/cli/failure.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** An endpoint that promises a JSON body, sends part of it, then drops the connection. */
async function cutShort(): Promise<string> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
    res.write('{"id":1,"role":"lea', () => res.socket?.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

it('an answer whose connection drops mid-body is ADMIN_CONNECTION_LOST', async () => {
  const endpoint = await cutShort();
  await expect(call(endpoint, undefined, 'GET', '/status')).rejects.toMatchObject({
    code: 'ADMIN_CONNECTION_LOST',
    message: expect.stringContaining(endpoint),
  });
});

it('a command whose endpoint drops the connection mid-answer prints one coded line and exits 1', async () => {
  const endpoint = await cutShort();
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  expect(await leader(['transfer', '2', '--admin', endpoint])).toBe(1);
  expect(err.mock.calls).toHaveLength(1);
  expect(String(err.mock.calls[0]?.[0])).toMatch(new RegExp(`^raftlog leader: ADMIN_CONNECTION_LOST: ${endpoint}: [^\\n]+$`));
});

/** An endpoint that answers every request with `answer`. */
async function endpoint(answer: RequestListener): Promise<string> {
  const server = createServer(answer);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

it('an answer without end is ADMIN_BAD_REPLY once past the limit, not read into memory for the whole timeout', async () => {
  let sent = 0;
  let closed = false;
  const ep = await endpoint((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const chunk = Buffer.alloc(1 << 20, 0x20);
    const pump = (): void => {
      while (!res.destroyed && res.write(chunk)) sent += chunk.length;
    };
    res.on('drain', pump);
    res.on('close', () => (closed = true));
    pump();
  });
  const started = Date.now();
  await expect(call(ep, undefined, 'GET', '/status')).rejects.toMatchObject({ code: 'ADMIN_BAD_REPLY', message: expect.stringContaining(ep) });
  expect(Date.now() - started).toBeLessThan(5_000);
  await until(() => closed, 'the client to close the connection');
  expect(sent).toBeLessThan(64 << 20);
});

it('an answer that declares a length over the limit is ADMIN_BAD_REPLY before it is read', async () => {
  const ep = await endpoint((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(1 << 30) });
    res.write('{');
  });
  await expect(call(ep, undefined, 'GET', '/status')).rejects.toMatchObject({ code: 'ADMIN_BAD_REPLY' });
});

it('an error answer that carries no code is HTTP_<status>, whatever its body (a proxy page, JSON that is not an object)', async () => {
  const answers: Array<[number, string, string, string]> = [
    [502, 'text/html', '<html><body>Bad Gateway</body></html>', 'HTTP_502'],
    [500, 'application/json', 'null', 'HTTP_500'],
    [503, 'application/json', '[1,2]', 'HTTP_503'],
    [500, 'application/json', '"oops"', 'HTTP_500'],
    [503, 'application/json', '{"code":5,"message":"x"}', 'HTTP_503'],
    [500, 'application/json', '{"code":"not a code"}', 'HTTP_500'],
    [504, 'text/plain', '', 'HTTP_504'],
    [404, 'application/json', '{"code":"NOT_FOUND","message":"no route GET /nothing"}', 'NOT_FOUND'],
  ];
  for (const [status, type, body, code] of answers) {
    const ep = await endpoint((_req, res) => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    });
    await expect(call(ep, undefined, 'GET', '/status'), `${status} ${body}`).rejects.toMatchObject({ code, message: expect.stringContaining(ep) });
    await expect(call(ep, undefined, 'GET', '/status')).rejects.toBeInstanceOf(CliError);
  }
});
