// A backup's client that stops reading does not hold the node's snapshot (nor the files a
// state machine's stream may read from) or its backup slot: the connection's idle timeout
// (3 times requestTimeoutMs, 30 s by default) applies while the answer is sent too, and
// closing the response ends the snapshot's stream.
import { connect, type Socket } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { serveAdmin } from '../../src/admin/server.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import type { StateMachine } from '../../src/log/state-machine.js';
import { tempDir, waitFor } from '../log/helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A state machine whose snapshot is endless, and which says when its stream was let go. */
function endless(): { sm: StateMachine<unknown>; released: () => boolean; sent: () => number } {
  let released = false;
  let sent = 0;
  const sm = {
    apply: () => undefined,
    restore: async () => undefined,
    snapshot: () =>
      (async function* () {
        try {
          for (;;) {
            sent++;
            yield new Uint8Array(64 * 1024);
          }
        } finally {
          released = true;
        }
      })(),
  } as unknown as StateMachine<unknown>;
  return { sm, released: () => released, sent: () => sent };
}

async function backupClient(address: string): Promise<Socket> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  const s = connect(port, host);
  s.on('error', () => undefined);
  cleanups.push(() => void s.destroy());
  await new Promise((r) => s.once('connect', r));
  s.write(`GET /snapshot HTTP/1.1\r\nhost: ${address}\r\n\r\n`);
  return s;
}

async function node(sm: StateMachine<unknown>): Promise<string> {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const log = await ReplicatedLog.open<unknown>({ dataDir: t.dir });
  cleanups.push(() => log.close());
  const admin = await serveAdmin({ log, address: '127.0.0.1:0', stateMachine: sm, requestTimeoutMs: 300 });
  cleanups.push(() => admin.close());
  return admin.address;
}

it('a client that reads nothing lets its backup go at the idle timeout: the stream is closed, and the next backup served', async () => {
  const m = endless();
  // requestTimeoutMs 300: a connection idle for 900 ms (3 times it) is dropped, a response under way or not.
  const address = await node(m.sm);
  const s = await backupClient(address);
  s.pause();
  await waitFor('the backup to be let go', m.released, 20_000);
  // The backup's slot is free again (one at a time): the next is answered 200, not 503 BACKUP_IN_PROGRESS.
  const next = await backupClient(address);
  const head = await new Promise<string>((resolve) => next.once('data', (d: Buffer) => resolve(d.toString('latin1'))));
  expect(head).toMatch(/^HTTP\/1\.1 200 /);
});
