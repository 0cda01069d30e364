import { createServer, type AddressInfo, type Server } from 'node:net';

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

/**
 * The first of `n` consecutive ports that are all free right now, for `raftlog cluster`'s
 * port-per-node layout. Ports the OS hands out one by one are rarely neighbours, so each
 * candidate run is bound whole before it is returned.
 */
export async function freePortRun(n: number, host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const [base] = await freePorts(1, host);
    const bound: Server[] = [];
    try {
      for (let i = 0; i < n; i++) {
        bound.push(
          await new Promise<Server>((resolve, reject) => {
            const s = createServer();
            s.once('error', reject);
            s.listen(base! + i, host, () => resolve(s));
          }),
        );
      }
      return base!;
    } catch {
      // a neighbour is taken: try another base
    } finally {
      await Promise.all(bound.map((s) => new Promise((r) => s.close(r))));
    }
  }
  throw new Error(`no run of ${n} free ports found on ${host}`);
}
