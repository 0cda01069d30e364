// Fake admin endpoints for the CLI tests.
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo, Server as NetServer } from 'node:net';

/** Listens on a free loopback port; `cleanups` closes it and its connections. Returns its HOST:PORT. */
export async function listening(server: HttpServer | NetServer, cleanups: Array<() => Promise<void> | void>): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        if ('closeAllConnections' in server) server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}
