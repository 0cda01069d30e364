// Reaching the listening server behind an address in tests: the servers keep theirs to
// themselves, and an accept that fails (EMFILE, ENFILE) cannot be made to happen on cue.
import type { Server } from 'node:net';

/** The listening server behind `address`, among the process's handles. */
export function serverAt(address: string): Server {
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  const found = handles.find((h): h is Server => {
    const a = typeof (h as Partial<Server>).address === 'function' && typeof (h as Partial<Server>).listen === 'function' ? (h as Server).address() : null;
    return a !== null && typeof a === 'object' && a.port === port;
  });
  if (found === undefined) throw new Error(`no server listens on ${address}`);
  return found;
}

/** Emits `n` accept failures on the server, as node:net does when accept() fails; they must not throw. */
export function failAccepts(server: Server, n: number): void {
  for (let i = 0; i < n; i++) server.emit('error', Object.assign(new Error('accept EMFILE'), { code: 'EMFILE', errno: -24, syscall: 'accept' }));
}
