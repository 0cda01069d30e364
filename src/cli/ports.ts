import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { parseAddress } from '../transport/address.js';
import { UsageError } from './args.js';
import { CliError } from './failure.js';

/** Ports from `low` to `high`, both included. */
export interface PortRange {
  low: number;
  high: number;
}

// Where Linux keeps the ports it hands out to outgoing connections and to listen(0).
const EPHEMERAL_RANGE_FILE = '/proc/sys/net/ipv4/ip_local_port_range';
// Below Linux's (32768..60999), macOS's and Windows' (49152..65535) ephemeral ranges.
export const FALLBACK_RANGE: PortRange = { low: 20_000, high: 32_767 };
// Ports under this are where well-known services listen, and among them the Fetch standard's bad
// ports (the last is 10080), to which fetch() refuses to connect: an admin endpoint there is unreachable.
const LOWEST = 11_000;
// A range narrower than this would run out over one test run.
const NARROWEST = 1_000;

/** The two numbers of ip_local_port_range; undefined if the text is not that. */
export function parsePortRange(text: string): PortRange | undefined {
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(text);
  if (m === null) return undefined;
  const low = Number(m[1]);
  const high = Number(m[2]);
  return low >= 1 && low <= high && high <= 65_535 ? { low, high } : undefined;
}

/**
 * Where to look for ports to listen on, given the ephemeral range: outside it, because a port
 * there can be taken by any outgoing connection between the check and the bind. Below it when
 * there is room (above it otherwise); the fallback when the range is unknown or leaves no room.
 */
export function listenRange(ephemeral: PortRange | undefined): PortRange {
  if (ephemeral === undefined) return FALLBACK_RANGE;
  const below = { low: LOWEST, high: ephemeral.low - 1 };
  const above = { low: ephemeral.high + 1, high: 65_535 };
  const size = (r: PortRange): number => r.high - r.low + 1;
  const best = size(below) >= size(above) ? below : above;
  return size(best) >= NARROWEST ? best : FALLBACK_RANGE;
}

let systemRange: Promise<PortRange> | undefined;

/** listenRange() for this machine's ephemeral range, read once. */
function systemListenRange(): Promise<PortRange> {
  systemRange ??= readFile(EPHEMERAL_RANGE_FILE, 'utf8').then(
    (text) => listenRange(parsePortRange(text)),
    () => FALLBACK_RANGE,
  );
  return systemRange;
}

// Every port freePorts() returned in this process: a port it closed is free again until its
// caller binds it, so a later call must not return it a second time.
const handedOut = new Set<number>();

/**
 * `n` ports on `host` that are free right now, none returned before in this process, taken
 * outside the ephemeral range so that no outgoing connection lands on one before it is bound.
 * Another process may still take one first: the search starts at a random port, so parallel
 * test workers rarely look at the same ones.
 */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  return choosePorts(n, host, await systemListenRange(), Math.random, handedOut);
}

/** freePorts() with its range, random source and record of ports returned given. */
export async function choosePorts(n: number, host: string, range: PortRange, random: () => number, taken: Set<number>): Promise<number[]> {
  const size = range.high - range.low + 1;
  const start = Math.floor(random() * size);
  const servers: Server[] = [];
  const ports: number[] = [];
  try {
    for (let i = 0; i < size && ports.length < n; i++) {
      const port = range.low + ((start + i) % size);
      if (taken.has(port)) continue;
      const s = await tryListen(port, host);
      if (s === undefined) continue;
      servers.push(s);
      ports.push(port);
    }
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
  if (ports.length < n) throw new CliError('EADDRINUSE', `fewer than ${n} free ports on ${host} between ${range.low} and ${range.high}`);
  for (const p of ports) taken.add(p);
  return ports;
}

/**
 * The first of `n` consecutive ports on `host` that are all free right now (a port per node
 * counted up from a base), under freePorts()' rules: the whole run inside the range, so none
 * reaches the ephemeral range above it, and none of it returned before in this process; all
 * of it is recorded as returned.
 */
export async function freePortRun(n: number, host = '127.0.0.1'): Promise<number> {
  return choosePortRun(n, host, await systemListenRange(), Math.random, handedOut);
}

/** freePortRun() with its range, random source and record of ports returned given. */
export async function choosePortRun(n: number, host: string, range: PortRange, random: () => number, taken: Set<number>): Promise<number> {
  // The bases whose run ends inside the range.
  const bases = range.high - range.low + 2 - n;
  const start = Math.floor(random() * Math.max(bases, 0));
  for (let i = 0; i < bases; i++) {
    const base = range.low + ((start + i) % bases);
    const run = Array.from({ length: n }, (_, k) => base + k);
    if (run.some((p) => taken.has(p))) continue;
    const servers: Server[] = [];
    try {
      for (const port of run) {
        const s = await tryListen(port, host);
        if (s === undefined) break;
        servers.push(s);
      }
    } finally {
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    }
    if (servers.length < n) continue;
    for (const p of run) taken.add(p);
    return base;
  }
  throw new CliError('EADDRINUSE', `no ${n} consecutive free ports on ${host} between ${range.low} and ${range.high}`);
}

/**
 * A server that only checks a port: it closes every connection it is given. A client that
 * connects while it listens (while a host name is looked up, the event loop turns) was held
 * open, and its close() waits for every connection to end: the check never finished, and
 * `raftlog serve` hung as it started.
 */
function probeServer(): Server {
  return createServer((socket) => socket.destroy());
}

/** A server listening on host:port; undefined if the port is taken or not allowed. */
function tryListen(port: number, host: string): Promise<Server | undefined> {
  return new Promise((resolve, reject) => {
    const s = probeServer();
    s.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' || err.code === 'EACCES' ? resolve(undefined) : reject(err)));
    s.listen(port, host, () => resolve(s));
  });
}

// The system's codes docs/errors.md and the CLI's hints explain pass through; any other (a host
// name that does not resolve, ENOTFOUND or EAI_AGAIN; none at all) would reach the operator
// unexplained, and is LISTEN_FAILED, the system's code kept in the message.
const EXPLAINED = new Set(['EADDRINUSE', 'EADDRNOTAVAIL', 'EACCES']);

/**
 * Listens on every address a node will serve, all at once, and lets go: found when the node
 * opened them, a port in use, an address not this machine's or a port not allowed ended it
 * after its data directory was made and its log opened (at a first start, bootstrapped with
 * the peers given), and for --resp and --admin without naming the flag. Another process may
 * still take a port in between; the node then fails as it did.
 */
export async function refuseUnlistenable(addresses: ReadonlyArray<readonly [flag: string, address: string]>): Promise<void> {
  for (const [i, [flag, address]] of addresses.entries()) {
    const same = addresses.slice(0, i).find(([, a]) => a === address && parseAddress(a).port !== 0);
    if (same !== undefined) throw new UsageError(`--${same[0]} and --${flag} are both ${address}: give each its own port`);
  }
  const servers: Server[] = [];
  const closeAll = (): Promise<unknown> => Promise.all(servers.map((s) => new Promise((r) => (s.listening ? s.close(r) : r(undefined)))));
  try {
    for (const [i, [flag, address]] of addresses.entries()) {
      const { host, port } = parseAddress(address);
      const err = await listenOn(servers, host, port);
      if (err === undefined) continue;
      // The same port under two spellings (0.0.0.0 and 127.0.0.1, localhost and 127.0.0.1) is
      // in use by the node's own flag, not by something to stop: told so if it is free alone.
      const other = port === 0 ? undefined : addresses.slice(0, i).find(([, a]) => parseAddress(a).port === port);
      if (other !== undefined && err.code === 'EADDRINUSE') {
        await closeAll();
        if ((await listenOn(servers, host, port)) === undefined)
          throw new UsageError(`--${other[0]} ${other[1]} and --${flag} ${address} cannot both listen on port ${port}: give each its own port`);
      }
      throw new CliError(
        err.code !== undefined && EXPLAINED.has(err.code) ? err.code : 'LISTEN_FAILED',
        `--${flag}: cannot listen on ${address}: ${err.message}`,
      );
    }
  } finally {
    await closeAll();
  }
}

/** Listens on a new server kept in `servers`; the error if it could not. */
function listenOn(servers: Server[], host: string, port: number): Promise<NodeJS.ErrnoException | undefined> {
  const s = probeServer();
  servers.push(s);
  return new Promise((resolve) => {
    s.once('error', resolve);
    s.listen(port, host, () => resolve(undefined));
  });
}
