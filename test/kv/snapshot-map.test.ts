import { setImmediate as turn } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { CHUNK_BYTES } from '../../src/kv/kv-snapshot-format.js';
import { KvStateMachine, encodeCommand, type KvCommand } from '../../src/kv/kv-state-machine.js';
import { SnapshotMap } from '../../src/kv/snapshot-map.js';
import { seeded, testSeed } from '../seeded.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

async function* chunksOf(parts: Uint8Array[]): AsyncGenerator<Uint8Array> {
  yield* parts;
}

async function readAll(s: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const parts: Uint8Array[] = [];
  for await (const c of s) parts.push(c);
  return parts;
}

/** What a snapshot restores to, as key -> value. */
async function restored(parts: Uint8Array[]): Promise<Map<string, Buffer>> {
  const sm = new KvStateMachine();
  await sm.restore(chunksOf(parts));
  const m = new Map<string, Buffer>();
  for (const [k] of parse(Buffer.concat(parts))) {
    const v = sm.get(b(k));
    if (v !== undefined) m.set(k, v);
  }
  expect(sm.size).toBe(m.size);
  return m;
}

/** An independent reader of the RLKV1 layout, every entry in order (duplicates included). */
function parse(all: Buffer): Array<[string, Buffer]> {
  expect(all.subarray(0, 6).toString('latin1')).toBe('RLKV1\n');
  const out: Array<[string, Buffer]> = [];
  for (let at = 6; at < all.length;) {
    const kl = all.readUInt32LE(at);
    const k = all.subarray(at + 4, at + 4 + kl).toString('latin1');
    at += 4 + kl;
    const vl = all.readUInt32LE(at);
    out.push([k, all.subarray(at + 4, at + 4 + vl)]);
    at += 4 + vl;
  }
  return out;
}

function differences(got: Map<string, Buffer>, want: Map<string, Buffer>): string[] {
  const out: string[] = [];
  for (const [k, v] of want) if (!got.get(k)?.equals(v)) out.push(`${JSON.stringify(k)}: want ${v.length} B, got ${got.get(k)?.length ?? 'none'}`);
  for (const k of got.keys()) if (!want.has(k)) out.push(`${JSON.stringify(k)}: not in the map at the call`);
  return out;
}

describe('SnapshotMap', () => {
  it('is the map at the call while writes, restores and other snapshots interleave with its reading (seeded)', async () => {
    const seed = testSeed('kv snapshot interleaving');
    const rnd = seeded(seed);
    const int = (n: number): number => Math.floor(rnd() * n);
    const keys = [
      ...Array.from({ length: 100 }, (_, i) => b(`k${i}`)),
      b('x'.repeat(70)), // a key long enough to take the encoder's other path
      b(''),
      Buffer.from([0, 255, 13, 10]),
    ];
    let version = 0;
    const value = (): Buffer => {
      const r = rnd();
      const size = r < 0.6 ? int(40) : r < 0.97 ? 8 * 1024 + int(40 * 1024) : CHUNK_BYTES + int(100 * 1024);
      const v = Buffer.alloc(size, version % 251);
      if (size >= 4) v.writeUInt32LE(version, 0);
      version++;
      return v;
    };
    let index = 0;
    let sm = new KvStateMachine();
    const apply = (cmd: KvCommand): void => void sm.apply({ index: ++index, term: 1, offset: 0, data: encodeCommand(cmd) });
    const now = (): Map<string, Buffer> => new Map(keys.filter((k) => sm.has(k)).map((k) => [k.toString('latin1'), Buffer.from(sm.get(k)!)]));
    for (const k of keys) if (rnd() < 0.7) apply(['SET', k, value()]);

    interface Open {
      it: AsyncIterator<Uint8Array>;
      want: Map<string, Buffer>;
      parts: Uint8Array[];
    }
    let open: Open[] = [];
    let verified = 0;
    let writesMidStream = 0;
    const finish = async (s: Open): Promise<void> => {
      expect(differences(await restored(s.parts), s.want)).toEqual([]);
      verified++;
    };
    for (let step = 0; step < 4000; step++) {
      const r = rnd();
      if (r < 0.05 && open.length < 4) {
        open.push({ it: sm.snapshot()[Symbol.asyncIterator](), want: now(), parts: [] });
      } else if (r < 0.4 && open.length > 0) {
        const s = open[int(open.length)]!;
        const n = await s.it.next();
        if (n.done === true) {
          open = open.filter((o) => o !== s);
          await finish(s);
        } else s.parts.push(n.value); // kept: a later chunk must not overwrite it
      } else if (r < 0.41 && open.length > 0) {
        const s = open[int(open.length)]!;
        open = open.filter((o) => o !== s);
        await s.it.return?.();
      } else if (r < 0.42) {
        // A restore replaces the map; streams already open still describe the old one.
        const copy = new KvStateMachine();
        await copy.restore(sm.snapshot());
        const next = new KvStateMachine();
        await next.restore(copy.snapshot());
        sm = next;
      } else {
        if (open.some((s) => s.parts.length > 0)) writesMidStream++;
        const k = keys[int(keys.length)]!;
        const w = rnd();
        if (w < 0.45) apply(['SET', k, value()]);
        else if (w < 0.65) apply(['DEL', k, ...Array.from({ length: int(3) }, () => keys[int(keys.length)]!)]);
        else if (w < 0.8) {
          if (rnd() < 0.5) apply(['SET', k, b(String(int(1000)))]);
          apply(['INCR', k]);
        } else {
          // Deleted and added again: the key moves to the end of the map, ahead of the walk.
          apply(['DEL', k]);
          apply(['SET', k, value()]);
        }
      }
      if (step % 200 === 0) await turn();
    }
    for (const s of open) {
      for (let n = await s.it.next(); n.done !== true; n = await s.it.next()) s.parts.push(n.value);
      await finish(s);
    }
    expect(verified).toBeGreaterThan(20);
    expect(writesMidStream).toBeGreaterThan(100);
  });

  it('keeps overlapping snapshots apart, each at its own call', async () => {
    const m = new SnapshotMap();
    const big = (c: number): Buffer => Buffer.alloc(100 * 1024, c); // three to a chunk: the walk takes several reads
    for (let i = 0; i < 10; i++) m.set(`k${i}`, big(i));
    const s1 = m.snapshot();
    m.set('k0', big(100));
    m.delete('k1');
    m.set('new', big(101));
    const s2 = m.snapshot();
    const first = await s1.next(); // s1 walks a little, then both see more writes
    expect(first.done).toBe(false);
    m.set('k9', big(102));
    m.delete('new');
    m.set('k1', big(103));
    expect(m.recordingSnapshots).toBe(2);
    const p2 = await readAll(s2);
    const p1 = [first.value as Uint8Array, ...(await readAll(s1))];
    const at1 = new Map(Array.from({ length: 10 }, (_, i) => [`k${i}`, big(i)]));
    const at2 = new Map(at1);
    at2.set('k0', big(100));
    at2.delete('k1');
    at2.set('new', big(101));
    expect(differences(await restored(p1), at1)).toEqual([]);
    expect(differences(await restored(p2), at2)).toEqual([]);
    expect(m.recordingSnapshots).toBe(0);
  });

  it('stops recording for a stream stopped before or while it is read, and for one dropped unread', async () => {
    const m = new SnapshotMap();
    for (let i = 0; i < 10; i++) m.set(`k${i}`, Buffer.alloc(100 * 1024, i));
    const unread = m.snapshot();
    expect(m.recordingSnapshots).toBe(1);
    await unread.return!();
    expect(m.recordingSnapshots).toBe(0);

    for await (const _ of m.snapshot()) break;
    expect(m.recordingSnapshots).toBe(0);

    // Once the walk is over writes are not recorded, though the stream still has chunks to give.
    const s = m.snapshot();
    for (let i = 0; i < 10; i++) m.set(`k${i}`, Buffer.alloc(100 * 1024, 50 + i)); // the walk skips every key: all come from undo
    const first = await s.next();
    expect(first.done).toBe(false);
    expect(m.recordingSnapshots).toBe(0);
    m.set('k9', Buffer.alloc(1, 99));
    m.delete('k8');
    m.set('k10', Buffer.alloc(1, 99));
    const rest = await readAll(s);
    expect(rest.length).toBeGreaterThan(0);
    const got = await restored([first.value as Uint8Array, ...rest]);
    expect(got.size).toBe(10);
    for (let i = 0; i < 10; i++) expect(got.get(`k${i}`)?.[0]).toBe(i);

    // Dropped, read or not: the garbage collector releases them.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    await (async () => {
      m.snapshot();
      const started = m.snapshot();
      expect((await started.next()).done).toBe(false);
    })();
    expect(m.recordingSnapshots).toBe(2);
    for (let i = 0; i < 10 && m.recordingSnapshots > 0; i++) {
      await turn();
      gc();
      m.set('k1', Buffer.alloc(1, i)); // a write prunes the collected ones
    }
    expect(m.recordingSnapshots).toBe(0);
  });

  it('does no work for the map at the call: 200k keys are walked a chunk at a time, with turns of the event loop between', async () => {
    const m = new SnapshotMap();
    const N = 200_000;
    const name = (i: number): string => `snapkey:${String(i).padStart(8, '0')}`;
    for (let i = 0; i < N; i++) {
      m.set(name(i), b('xxx'));
      if (i % 20_000 === 0) await turn();
    }
    // Counts the map entries the encoder walks (only this test's keys: other code uses maps too).
    const proto = Object.getPrototypeOf(new Map<string, Buffer>().entries()) as { next: (this: Iterator<unknown>) => IteratorResult<unknown> };
    const realNext = proto.next;
    let walked = 0;
    proto.next = function (this: Iterator<unknown>) {
      const r = realNext.call(this);
      if (r.done !== true && Array.isArray(r.value) && typeof r.value[0] === 'string' && r.value[0].startsWith('snapkey:')) walked++;
      return r;
    };
    let turns = 0;
    let ticking = true;
    const tick = (): void => {
      turns++;
      if (ticking) setImmediate(tick);
    };
    try {
      const s = m.snapshot();
      expect(walked).toBe(0);
      const first = await s.next();
      expect(first.done).toBe(false);
      expect(walked).toBeLessThan(N / 10); // about a chunk's worth
      expect(walked).toBeGreaterThan(0);
      // The map changes before the stream is done, at both ends of the walk.
      m.set(name(0), b('new'));
      m.set(name(N - 1), b('new'));
      m.delete(name(N - 2));
      m.set('snapkey:added', b('new'));
      setImmediate(tick);
      const rest = await readAll(s); // no pause of its own: the turns are the stream's
      ticking = false;
      expect(walked).toBeGreaterThanOrEqual(N);
      expect(rest.length).toBeGreaterThan(10);
      expect(turns).toBeGreaterThanOrEqual(rest.length - 1);
      const parts = [first.value as Uint8Array, ...rest];
      for (const p of parts) expect(p.byteLength).toBeLessThanOrEqual(CHUNK_BYTES);
      const got = new Map(parse(Buffer.concat(parts)));
      expect(got.size).toBe(N);
      expect(got.get(name(0))?.toString()).toBe('xxx');
      expect(got.get(name(N - 1))?.toString()).toBe('xxx');
      expect(got.get(name(N - 2))?.toString()).toBe('xxx');
      expect(got.has('snapkey:added')).toBe(false);
    } finally {
      proto.next = realNext;
      ticking = false;
    }
  });
});
