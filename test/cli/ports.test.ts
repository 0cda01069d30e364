import { readFileSync } from 'node:fs';
import { connect, createServer, Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { choosePortRun, choosePorts, FALLBACK_RANGE, freePorts, listenRange, parsePortRange, refuseUnlistenable, type PortRange } from '../../src/cli/ports.js';

const held: Server[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(held.splice(0).map((s) => new Promise((r) => s.close(r))));
});

function hold(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => {
      held.push(s);
      resolve();
    });
  });
}

/** A small range of ports free a moment ago, away from other workers' searches. */
async function smallRange(size: number): Promise<PortRange> {
  const [low] = await freePorts(1);
  return { low: low!, high: low! + size - 1 };
}

describe('the range freePorts() searches', () => {
  it("reads Linux's ip_local_port_range, and refuses what is not one", () => {
    expect(parsePortRange('32768\t60999\n')).toEqual({ low: 32768, high: 60999 });
    expect(parsePortRange(' 1024 65535')).toEqual({ low: 1024, high: 65535 });
    for (const bad of ['', '32768', '60999 32768', '0 100', '1024 70000', 'a b', '1 2 3']) expect(parsePortRange(bad), bad).toBeUndefined();
  });

  it('is below the ephemeral range when there is room there, above it otherwise, the fallback when neither has room', () => {
    expect(listenRange({ low: 32768, high: 60999 })).toEqual({ low: 11_000, high: 32767 });
    expect(listenRange({ low: 49152, high: 65535 })).toEqual({ low: 11_000, high: 49151 });
    expect(listenRange({ low: 11_500, high: 60000 })).toEqual({ low: 60001, high: 65535 });
    expect(listenRange({ low: 1024, high: 65535 })).toEqual(FALLBACK_RANGE);
    expect(listenRange(undefined)).toEqual(FALLBACK_RANGE);
    expect(FALLBACK_RANGE.high).toBeLessThan(32768); // below Linux's default ephemeral range too
    // Above the Fetch standard's bad ports, which fetch() refuses (an admin endpoint's CLI uses it).
    for (const r of [listenRange({ low: 32768, high: 60999 }), FALLBACK_RANGE]) expect(r.low).toBeGreaterThan(10080);
  });

  it("gives ports outside this machine's ephemeral range, which outgoing connections take from", async () => {
    let ephemeral: PortRange | undefined;
    try {
      ephemeral = parsePortRange(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8'));
    } catch {
      ephemeral = undefined;
    }
    const expected = listenRange(ephemeral);
    const ports = await freePorts(20);
    for (const p of ports) {
      expect(p).toBeGreaterThanOrEqual(expected.low);
      expect(p).toBeLessThanOrEqual(expected.high);
      if (ephemeral !== undefined) expect(p < ephemeral.low || p > ephemeral.high, `${p}`).toBe(true);
    }
  });
});

describe('choosing ports', () => {
  it('never gives the same port twice in one process, though each is free again once checked', async () => {
    const range = await smallRange(40);
    const taken = new Set<number>();
    const all: number[] = [];
    // The same start every time: without the record of ports given, each call would give the same ones.
    for (let i = 0; i < 5; i++) all.push(...(await choosePorts(3, '127.0.0.1', range, () => 0, taken)));
    expect(new Set(all).size).toBe(all.length);
    expect(all.length).toBe(15);
    for (const p of all) expect(p >= range.low && p <= range.high, `${p} in ${range.low}..${range.high}`).toBe(true);
    const once = await freePorts(30);
    const twice = await freePorts(30);
    expect(twice.filter((p) => once.includes(p))).toEqual([]);
  });

  it('skips a port something listens on', async () => {
    const range = await smallRange(10);
    await hold(range.low);
    const ports = await choosePorts(2, '127.0.0.1', range, () => 0, new Set());
    expect(ports).not.toContain(range.low);
    expect(ports).toHaveLength(2);
  });

  it('starts where the random draw says and wraps around the range', async () => {
    const range = await smallRange(10);
    const ports = await choosePorts(10, '127.0.0.1', range, () => 0.75, new Set());
    // A port another process took meanwhile would be missing; those found come in the walk's order.
    const offsets = ports.map((p) => p - range.low);
    const walk = [7, 8, 9, 0, 1, 2, 3, 4, 5, 6];
    expect(offsets.length).toBeGreaterThan(5);
    expect(offsets).toEqual(walk.filter((o) => offsets.includes(o)));
  });

  it('fails with EADDRINUSE once the range has no port left to give', async () => {
    const range = await smallRange(3);
    const taken = new Set([range.low, range.low + 1]);
    const err = await choosePorts(2, '127.0.0.1', range, () => 0, taken).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'EADDRINUSE' });
    expect(taken.size).toBe(2); // a call that failed gives nothing, and records nothing
  });

  it('a run of consecutive ports stays inside the range, even drawn at its top, and is recorded as given', async () => {
    const range = await smallRange(6);
    const taken = new Set<number>();
    // Drawn at the top: a run from there would reach past the range, into the ephemeral one.
    const first = await choosePortRun(3, '127.0.0.1', range, () => 0.99, taken);
    const second = await choosePortRun(3, '127.0.0.1', range, () => 0.99, taken);
    for (const base of [first, second]) expect(base >= range.low && base + 2 <= range.high, `${base}..${base + 2} in ${range.low}..${range.high}`).toBe(true);
    expect(Math.abs(first - second)).toBeGreaterThanOrEqual(3);
    expect([...taken].sort((a, b) => a - b)).toEqual([...[first, first + 1, first + 2], ...[second, second + 1, second + 2]].sort((a, b) => a - b));
    // The range holds no third run that is not given already.
    const err = await choosePortRun(3, '127.0.0.1', range, () => 0, taken).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'EADDRINUSE' });
    // Nor does freePorts() give a port of a run again.
    expect(await choosePorts(1, '127.0.0.1', range, () => 0, taken).catch((e: { code?: string }) => e.code)).toBe('EADDRINUSE');
  });
});

describe("serve's check that it can listen on its addresses", () => {
  it('closes a client that connects while it listens, and finishes', async () => {
    const [port, other] = await freePorts(2);
    // The check listens on each address in turn. Given a host name (localhost, say), the second
    // listen looks it up first, and the event loop turns meanwhile: a client that connected to
    // the first port is accepted. Here the second listen waits until that has happened.
    let client: Socket | undefined;
    let accepted = 0;
    let firstAccepted = (): void => undefined;
    const acceptedOnce = new Promise<void>((r) => (firstAccepted = r));
    const listen = Server.prototype.listen;
    vi.spyOn(Server.prototype, 'listen').mockImplementation(function (this: Server, ...args: unknown[]) {
      const go = (): Server => listen.apply(this, args as Parameters<Server['listen']>);
      if (args[0] === other) {
        void acceptedOnce.then(go);
        return this;
      }
      if (args[0] === port && client === undefined)
        this.once('listening', () => {
          this.on('connection', () => {
            accepted++;
            firstAccepted();
          });
          client = connect(port, '127.0.0.1');
          client.on('error', () => undefined); // reset by the check: what matters is that it ends
        });
      return go();
    });
    await refuseUnlistenable([
      ['resp', `127.0.0.1:${port}`],
      ['admin', `127.0.0.1:${other}`],
    ]);
    expect(accepted).toBe(1);
    await new Promise((r) => (client!.closed ? r(undefined) : client!.once('close', r)));
  });
});
