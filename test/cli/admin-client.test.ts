// The admin client's failures: an answer cut short is a coded error, never a raw socket error.
import { createServer, type RequestListener } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { FETCH_BAD_PORTS, call, fetchRefusesPort, request } from '../../src/cli/admin-client.js';
import { main as leader } from '../../src/cli/leader.js';
import { main as member } from '../../src/cli/member.js';
import { main as status } from '../../src/cli/status.js';
import { until } from '../transport/helpers.js';
import { freePorts, tempDir } from '../log/helpers.js';
import { CliError } from '../../src/cli/failure.js';
import { listening } from './listening.js';

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
  return await listening(server, cleanups);
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
  return await listening(server, cleanups);
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

/** What a real node answers to GET /status, as a template for broken ones. */
const STATUS = {
  id: 1,
  term: 2,
  vote: 1,
  commit: 9,
  applied: 9,
  lead: 1,
  leadTransferee: 0,
  conf: { voters: [1, 2], learners: [3] },
  role: 'leader',
  members: { 1: '127.0.0.1:7101', 2: '127.0.0.1:7102', 3: '127.0.0.1:7103' },
  lastIndex: 9,
  firstIndex: 1,
  snapshotIndex: 0,
  progress: {
    1: { match: 9, next: 10, lag: 0, state: 'replicate', recentActive: true, isLearner: false, inflight: 0, paused: false },
    2: { match: 9, next: 10, lag: 0, state: 'replicate', recentActive: true, isLearner: false, inflight: 0, paused: false },
    3: { match: 8, next: 9, lag: 1, state: 'probe', recentActive: false, isLearner: true, inflight: 0, paused: true },
  },
};

it('a 200 answer that is not a JSON object, or not sent as JSON, is ADMIN_BAD_REPLY', async () => {
  for (const [type, body] of [
    ['application/json', 'null'],
    ['application/json', '[]'],
    ['application/json', '7'],
    ['text/plain', JSON.stringify(STATUS)],
    ['text/html', '<html>a captive portal</html>'],
  ]) {
    const ep = await endpoint((_req, res) => res.writeHead(200, { 'content-type': type }).end(body));
    await expect(call(ep, undefined, 'GET', '/status'), `${type} ${body.slice(0, 20)}`).rejects.toMatchObject({ code: 'ADMIN_BAD_REPLY' });
  }
  const ok = await endpoint((_req, res) => res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(STATUS)));
  await expect(call(ok, undefined, 'GET', '/status')).resolves.toMatchObject({ role: 'leader' });
});

it('a status that is not the admin API makes member list and status fail with ADMIN_BAD_REPLY, not a TypeError', async () => {
  const broken: unknown[] = [
    {},
    { role: 'leader' },
    { ...STATUS, conf: { voters: '1,2', learners: [] } },
    { ...STATUS, conf: null },
    { ...STATUS, conf: { voters: [1, 2], learners: [3], votersOutgoing: 3 } },
    { ...STATUS, members: null },
    { ...STATUS, members: { 1: 7101 } },
    { ...STATUS, lead: '1' },
    { ...STATUS, role: 'boss' },
    { ...STATUS, progress: { 2: null } },
    { ...STATUS, progress: { 2: { match: 'all' } } },
    { ...STATUS, role: 'fatal', fatal: { code: 'LOG_ON_FIRE', message: 'not a code of the log' } },
    { ...STATUS, role: 'fatal', fatal: { code: 'LOG_FATAL' } },
    { ...STATUS, role: 'fatal', fatal: 'LOG_FATAL' },
  ];
  for (const answer of broken) {
    const ep = await endpoint((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer)));
    const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const out = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    expect(await member(['list', '--admin', ep]), JSON.stringify(answer)).toBe(1);
    expect(String(err.mock.calls.at(-1)?.[0])).toMatch(new RegExp(`^raftlog member: ADMIN_BAD_REPLY: ${ep}`));
    // It answered: exit 1, as for member list, not 3 (unreachable).
    expect(await status(['--admin', ep]), JSON.stringify(answer)).toBe(1);
    expect(out.mock.calls.map((c) => String(c[0])).join('\n')).toMatch(/unhealthy \(ADMIN_BAD_REPLY\)/);
    vi.restoreAllMocks();
  }
  // The template itself is a status.
  const ep = await endpoint((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(STATUS)));
  const out = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  expect(await member(['list', '--admin', ep])).toBe(0);
  expect(String(out.mock.calls[0]?.[0])).toMatch(/^ID +ADDRESS +ROLE\n1 +127\.0\.0\.1:7101 +leader\n2 .*follower\n3 .*learner$/);
  // So is that of a node stopped by one of the log's fatal codes.
  for (const code of ['LOG_FATAL', 'LOG_CORRUPT']) {
    const fatal = { ...STATUS, role: 'fatal', fatal: { code, message: 'the disk failed' } };
    const stopped = await endpoint((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(fatal)));
    expect(await member(['list', '--admin', stopped]), code).toBe(0);
  }
});

it('a change sent only to nodes removed from the cluster says so, not that the cluster lost its majority', async () => {
  const gone = { ...STATUS, lead: 0, role: 'pre-candidate', conf: { voters: [2, 3], learners: [] }, members: { 2: '127.0.0.1:7102', 3: '127.0.0.1:7103' } };
  const ep = await endpoint((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(gone)));
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  expect(await member(['remove', '3', '--admin', ep])).toBe(1);
  expect(String(err.mock.calls.at(-1)?.[0])).toMatch(
    new RegExp(
      `^raftlog member: NOT_MEMBER: ${ep} is node 1, no longer a member \\(its configuration no longer holds it \\(voters 2, 3\\)\\): give a member's admin endpoint`,
    ),
  );
  // Cut off when its removal committed, it never applied it: a member refusing it says so.
  const unheard = { ...gone, conf: { voters: [1, 2, 3], learners: [] }, removedBy: 2 };
  const epUnheard = await endpoint((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(unheard)));
  expect(await member(['remove', '3', '--admin', epUnheard])).toBe(1);
  expect(String(err.mock.calls.at(-1)?.[0])).toMatch(
    new RegExp(`^raftlog member: NOT_MEMBER: ${epUnheard} is node 1, no longer a member \\(node 2 refuses it as removed\\): give a member's admin endpoint`),
  );
  // A member that knows no leader is still NO_LEADER.
  const member1 = { ...gone, conf: { voters: [1, 2, 3], learners: [] } };
  const ep1 = await endpoint((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(member1)));
  expect(await member(['remove', '3', '--admin', ep1])).toBe(1);
  expect(String(err.mock.calls.at(-1)?.[0])).toMatch(/^raftlog member: NO_LEADER: /);
  // So is a voter of the outgoing half of a joint configuration: it still votes.
  const leaving = { ...gone, conf: { voters: [2, 3], learners: [], votersOutgoing: [1, 2, 3] } };
  const ep2 = await endpoint((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(leaving)));
  expect(await member(['remove', '3', '--admin', ep2])).toBe(1);
  expect(String(err.mock.calls.at(-1)?.[0])).toMatch(/^raftlog member: NO_LEADER: /);
});

it("after the leader died: its endpoint not answering is named, and a removed node's stale leader is not taken for the members'", async () => {
  const [dead] = await freePorts(1);
  const deadEp = `127.0.0.1:${dead}`;
  const follower = { ...STATUS, id: 2, lead: 1, role: 'follower', conf: { voters: [1, 2, 3], learners: [] } };
  const ep2 = await endpoint((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(follower)));
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  // It was "none of the endpoints given is its admin endpoint", with the leader's among them.
  expect(await member(['remove', '3', '--admin', `${ep2},${deadEp}`])).toBe(1);
  expect(String(err.mock.calls.at(-1)?.[0])).toMatch(
    new RegExp(`^raftlog member: NOT_LEADER: node 1 leads, as the endpoints that answered say, and these did not answer: ${deadEp}: ECONNREFUSED; .*retry`),
  );
  // A member that knows no leader and a removed node that still names the dead one: NO_LEADER, not NOT_LEADER for node 1.
  const campaigning = { ...follower, lead: 0, role: 'pre-candidate', conf: { voters: [2, 3], learners: [] } };
  const removed = { ...follower, id: 1, lead: 1, conf: { voters: [2, 3], learners: [] } };
  const epMember = await endpoint((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(campaigning)));
  const epRemoved = await endpoint((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(removed)));
  expect(await member(['remove', '3', '--admin', `${epRemoved},${epMember}`])).toBe(1);
  expect(String(err.mock.calls.at(-1)?.[0])).toMatch(/^raftlog member: NO_LEADER: /);
});

it('member change fails with ADMIN_BAD_REPLY when the answer names no voters', async () => {
  const ep = await endpoint((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(req.url === '/status' ? JSON.stringify(STATUS) : JSON.stringify({ ok: true }));
  });
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  expect(await member(['change', '--remove', '3', '--admin', ep])).toBe(1);
  expect(String(err.mock.calls.at(-1)?.[0])).toMatch(new RegExp(`^raftlog member: ADMIN_BAD_REPLY: ${ep}`));
});

it("an endpoint's text reaches the terminal without control characters, and its message cut to a line", async () => {
  const evil = '\x1b[2J\x1b]0;owned\x07\r\u202enoitca\u2028';
  const refusing = await endpoint((_req, res) =>
    res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'NO_LEADER', message: `${evil}${'x'.repeat(10_000)}` })),
  );
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  const out = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  expect(await leader(['transfer', '2', '--admin', refusing])).toBe(1);
  const line = String(err.mock.calls.at(-1)?.[0]);
  expect(line).toMatch(new RegExp(`^raftlog leader: NO_LEADER: ${refusing}: \\\\x1b\\[2J`));
  expect(line).not.toMatch(/[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
  expect(line.length).toBeLessThan(1_000);

  const lying = await endpoint((_req, res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...STATUS, members: { ...STATUS.members, 2: `127.0.0.1:7102${evil}` } })),
  );
  expect(await member(['list', '--admin', lying])).toBe(0);
  expect(await status(['--admin', lying])).toBe(0);
  for (const call of out.mock.calls) expect(String(call[0])).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
  expect(String(out.mock.calls[0]?.[0])).toContain('127.0.0.1:7102\\x1b[2J');
});

it('a token file whose token a request cannot carry is a usage error, not ADMIN_UNREACHABLE', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  let asked = 0;
  const ep = await endpoint((_req, res) => {
    asked++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(STATUS));
  });
  for (const token of ['euro-\u20ac', 'nul\u0001x', 'caf\u00e9']) {
    const file = join(t.dir, 'token');
    writeFileSync(file, `${token}\n`);
    const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    vi.spyOn(console, 'log').mockImplementation(() => undefined);
    expect(await member(['list', '--admin', ep, '--admin-token-file', file]), JSON.stringify(token)).toBe(2);
    expect(String(err.mock.calls.at(-1)?.[0])).toMatch(/^raftlog member: --admin-token-file: the token holds a character a request cannot carry/);
    expect(String(err.mock.calls.at(-1)?.[0])).not.toContain(token);
    vi.restoreAllMocks();
  }
  expect(asked).toBe(0);
});

it('an endpoint that answers something that is not HTTP (the RESP port, an oversized head) is ADMIN_BAD_REPLY, exit 1, not unreachable', async () => {
  for (const answer of ["-ERR unknown command 'GET'\r\n", 'SSH-2.0-OpenSSH_9.6\r\n', `HTTP/1.1 200 OK\r\nX-A: ${'a'.repeat(100_000)}\r\n\r\n`]) {
    const server = createNetServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', () => socket.end(answer));
    });
    const ep = await listening(server, cleanups);
    await expect(call(ep, undefined, 'GET', '/status'), answer.slice(0, 20)).rejects.toMatchObject({ code: 'ADMIN_BAD_REPLY', exitCode: 1 });
    const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    expect(await leader(['transfer', '2', '--admin', ep])).toBe(1);
    expect(String(err.mock.calls.at(-1)?.[0])).toMatch(new RegExp(`^raftlog leader: ADMIN_BAD_REPLY: ${ep} answered something that is not HTTP`));
    vi.restoreAllMocks();
  }
});

it('a redirect is not followed: HTTP_<status>, and the request goes nowhere else', async () => {
  let elsewhere = 0;
  const other = await endpoint((_req, res) => {
    elsewhere++;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  for (const [status, location] of [
    [307, `http://${other}/members/add`],
    [308, `http://${other}/members/add`],
    [302, `http://${other}/members/add`],
    [307, '/members/add-again'],
  ] as const) {
    let asked = 0;
    const ep = await endpoint((req, res) => {
      asked++;
      if (req.url === '/members/add') res.writeHead(status, { location }).end();
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    await expect(call(ep, 'the-token', 'POST', '/members/add', { id: 2, address: '127.0.0.1:9' }), `${status} ${location}`).rejects.toMatchObject({
      code: `HTTP_${status}`,
      message: expect.stringMatching(/redirect.*not followed/),
    });
    expect(asked, `${status} ${location}`).toBe(1);
  }
  expect(elsewhere).toBe(0);
});

it("status says why an endpoint is unhealthy: /health's reason in the table and the JSON, its message below the table", async () => {
  const why = { health: false, reason: 'TIMEOUT', message: 'no linearizable read within 2000 ms: the leader (node 1) did not confirm' };
  const ep = await endpoint((req, res) => {
    if (req.url === '/health') return res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify(why));
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...STATUS, role: 'follower', id: 2 }));
  });
  const out = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  expect(await status(['--admin', ep])).toBe(1);
  const text = out.mock.calls.map((c) => String(c[0])).join('\n');
  expect(text).toMatch(/unhealthy \(TIMEOUT\)/);
  expect(text).toContain(`${ep}: TIMEOUT: ${why.message}`);
  out.mockClear();
  expect(await status(['--admin', ep, '--json'])).toBe(1);
  const json = JSON.parse(String(out.mock.calls[0]?.[0])) as { endpoints: Array<Record<string, unknown>> };
  expect(json.endpoints[0]).toMatchObject({ healthy: false, error: 'TIMEOUT', message: why.message });
});

it("knows the ports Node's fetch refuses, so that serve refuses them for --admin", async () => {
  // Each port the list names fails in fetch before it connects; a port beside it is tried.
  const refused = async (port: number): Promise<boolean> => {
    const err: unknown = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5_000) }).then(
      async (res) => void (await res.body?.cancel()),
      (e: unknown) => e,
    );
    return (err as { cause?: { message?: string } } | undefined)?.cause?.message === 'bad port';
  };
  for (const port of FETCH_BAD_PORTS) {
    expect(await refused(port), String(port)).toBe(true);
    expect(fetchRefusesPort(port)).toBe(true);
  }
  for (const port of [6001, 10081, 8080]) {
    expect(await refused(port), String(port)).toBe(false);
    expect(fetchRefusesPort(port)).toBe(false);
  }
});

it('an endpoint on a port fetch refuses to connect to is named as such, not as a node that does not run', async () => {
  // 6000 is on the Fetch standard's list of bad ports: Node's fetch fails before it connects.
  await expect(call('127.0.0.1:6000', undefined, 'GET', '/status')).rejects.toMatchObject({
    code: 'ADMIN_UNREACHABLE',
    message: expect.stringMatching(/^127\.0\.0\.1:6000: port 6000 is one Node's fetch refuses .*another port/),
  });
});

it('status exits 3 only when no endpoint could be reached: one that refuses the token was reached, and fails it with 1', async () => {
  const refusing = await endpoint((_req, res) =>
    res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'UNAUTHORIZED', message: 'a bearer token is required' })),
  );
  // Port 1 is one fetch will not connect to: ADMIN_UNREACHABLE, as a port nothing listens on is.
  const unreachable = '127.0.0.1:1';
  const out = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  vi.spyOn(console, 'error').mockImplementation(() => undefined);
  expect(await status(['--admin', refusing])).toBe(1);
  expect(await status(['--admin', `${refusing},${unreachable}`])).toBe(1);
  expect(out.mock.calls.map((c) => String(c[0])).join('\n')).toMatch(/unhealthy \(UNAUTHORIZED\)/);
  expect(await status(['--admin', unreachable])).toBe(3);
});

it('an endpoint that takes the connection and never answers is ADMIN_UNREACHABLE once the time is up, saying how long it waited', async () => {
  const sockets: Socket[] = [];
  const silent = createNetServer((socket) => {
    socket.on('error', () => undefined);
    sockets.push(socket);
  });
  const ep = await listening(silent, cleanups);
  cleanups.push(() => sockets.forEach((socket) => socket.destroy()));
  // It was "The operation was aborted due to timeout": neither which request nor how long.
  await expect(request(ep, undefined, 'GET', '/status', undefined, 500)).rejects.toMatchObject({
    code: 'ADMIN_UNREACHABLE',
    exitCode: 3,
    message: `${ep}: no answer within 0.5 s (a node that does not run there, a host that does not answer, or a node too busy to)`,
  });
});
