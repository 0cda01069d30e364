// A backup's client that stops reading does not hold the node's snapshot (nor the files a
// state machine's stream may read from) or its backup slot: a client that takes none of its
// answer for the connection's idle timeout (3 times requestTimeoutMs, 30 s by default) is
// dropped, whatever it sends, and closing the response ends the snapshot's stream. One that
// reads slowly is not.
import { get } from 'node:http';
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

async function node(sm: StateMachine<unknown>, requestTimeoutMs = 300): Promise<string> {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const log = await ReplicatedLog.open<unknown>({ dataDir: t.dir });
  cleanups.push(() => log.close());
  const admin = await serveAdmin({ log, address: '127.0.0.1:0', stateMachine: sm, requestTimeoutMs });
  cleanups.push(() => admin.close());
  return admin.address;
}

it('a client that reads nothing lets its backup go at the idle timeout: the stream is closed, and the next backup served', async () => {
  const m = endless();
  // requestTimeoutMs 300: a client that takes none of its answer for 900 ms (3 times it) is dropped.
  const address = await node(m.sm);
  const s = await backupClient(address);
  s.pause();
  await waitFor('the backup to be let go', m.released, 20_000);
  // The backup's slot is free again (one at a time): the next is answered 200, not 503 BACKUP_IN_PROGRESS.
  const next = await backupClient(address);
  const head = await new Promise<string>((resolve) => next.once('data', (d: Buffer) => resolve(d.toString('latin1'))));
  expect(head).toMatch(/^HTTP\/1\.1 200 /);
});

it('a client that reads nothing but keeps sending lets its backup go: what it sends does not put the deadline off', async () => {
  const m = endless();
  const address = await node(m.sm);
  const s = await backupClient(address);
  s.pause();
  // Line ends between requests are skipped by the parser: each one reset the idle timeout, and
  // the backup was held for as long as they came.
  const trickle = setInterval(() => s.write('\r\n'), 100);
  cleanups.push(() => clearInterval(trickle));
  await waitFor('the backup to be let go', m.released, 20_000);
  const next = await backupClient(address);
  const head = await new Promise<string>((resolve) => next.once('data', (d: Buffer) => resolve(d.toString('latin1'))));
  expect(head).toMatch(/^HTTP\/1\.1 200 /);
});

it('a client that reads slowly, for longer than the idle timeout, gets the whole of a backup made of one large buffer', async () => {
  const state = new Uint8Array(8 * 1024 * 1024).fill(7);
  const sm = { apply: () => undefined, restore: async () => undefined, snapshot: () => state } as unknown as StateMachine<unknown>;
  // requestTimeoutMs 1000: a client that takes nothing for 3 s is dropped. This one reads 64 KiB
  // every 100 ms, about 13 s for the whole: written as one, the buffer was taken only once the
  // client had read all but what the kernel holds, seconds after the deadline.
  const address = await node(sm, 1000);
  const got = await new Promise<{ bytes: number; crc: string | undefined }>((resolve, reject) => {
    const req = get(`http://${address}/snapshot`, (res) => {
      let bytes = 0;
      let quota = 64 * 1024;
      const pace = setInterval(() => {
        quota = 64 * 1024;
        res.resume();
      }, 100);
      cleanups.push(() => clearInterval(pace));
      res.on('data', (d: Buffer) => {
        bytes += d.length;
        quota -= d.length;
        if (quota <= 0) res.pause();
      });
      res.on('end', () => resolve({ bytes, crc: res.trailers['x-raftlog-crc32c'] }));
      res.on('error', reject);
    });
    req.on('error', reject);
    cleanups.push(() => void req.destroy());
  });
  expect(got.bytes).toBe(state.length);
  expect(got.crc).toMatch(/^\d+$/);
}, 60_000);
