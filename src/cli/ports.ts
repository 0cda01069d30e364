import { createServer, type AddressInfo, type Server } from 'node:net';
import { parseAddress } from '../transport/address.js';
import { UsageError } from './args.js';
import { CliError } from './failure.js';

/** Ports the OS says are free right now on loopback (another process may still take one first). */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Server>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, host, () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
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
  const s = createServer();
  servers.push(s);
  return new Promise((resolve) => {
    s.once('error', resolve);
    s.listen(port, host, () => resolve(undefined));
  });
}
