import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { KvStateMachine, encodeCommand, type KvCommand } from '../../src/kv/kv-state-machine.js';

const b = (s: string): Buffer => Buffer.from(s);
let index = 0;
const apply = (sm: KvStateMachine, cmd: KvCommand) => sm.apply({ index: ++index, term: 1, data: encodeCommand(cmd) });

describe('KvStateMachine', () => {
  it('applies SET, DEL and INCR with Redis results', () => {
    const sm = new KvStateMachine();
    expect(apply(sm, ['SET', b('a'), b('1')])).toEqual({ ok: 'OK' });
    expect(apply(sm, ['INCR', b('a')])).toEqual({ int: 2 });
    expect(apply(sm, ['INCR', b('fresh')])).toEqual({ int: 1 });
    expect(apply(sm, ['SET', b('s'), b('text')])).toEqual({ ok: 'OK' });
    expect(apply(sm, ['INCR', b('s')])).toEqual({ error: 'ERR value is not an integer or out of range' });
    expect(apply(sm, ['SET', b('big'), b('9007199254740991')])).toEqual({ ok: 'OK' });
    expect(apply(sm, ['INCR', b('big')])).toEqual({ error: 'ERR value is not an integer or out of range' });
    expect(apply(sm, ['DEL', b('a'), b('nope'), b('s')])).toEqual({ int: 2 });
    expect(sm.get(b('a'))).toBeUndefined();
    expect(sm.get(b('fresh'))?.toString()).toBe('1');
  });

  it('is binary-safe in keys and values', () => {
    const sm = new KvStateMachine();
    const key = Buffer.from([0, 255, 10, 13]);
    const value = Buffer.from([1, 2, 3, 0]);
    apply(sm, ['SET', key, value]);
    expect(sm.get(Buffer.from(key))).toEqual(value);
  });

  it('answers a malformed log entry with an error result, identically on every node, without throwing', () => {
    const sm = new KvStateMachine();
    expect(sm.apply({ index: 1, term: 1, data: new Uint8Array([0xc1]) })).toEqual({ error: 'ERR malformed command in the log' });
    expect(sm.apply({ index: 2, term: 1, data: encodeCommand(['SET', b('only-key')] as unknown as KvCommand) })).toEqual({
      error: 'ERR malformed command in the log',
    });
  });

  it('restores exactly what it snapshotted', async () => {
    const sm = new KvStateMachine();
    for (let i = 0; i < 100; i++) apply(sm, ['SET', b(`k${i}`), b(`v${i}`)]);
    apply(sm, ['DEL', b('k7')]);
    const copy = new KvStateMachine();
    await copy.restore(sm.snapshot());
    expect(copy.size).toBe(99);
    for (let i = 0; i < 100; i++) expect(copy.get(b(`k${i}`))?.toString()).toBe(i === 7 ? undefined : `v${i}`);
  });

  it('snapshots the state of the call while later commands apply, and restores from chunks of any size', async () => {
    const sm = new KvStateMachine();
    const big = Buffer.alloc(700 * 1024, 3); // spans several encoded batches
    for (let i = 0; i < 20; i++) apply(sm, ['SET', b(`k${i}`), i === 5 ? big : b(`v${i}`)]);
    const snap = sm.snapshot();
    apply(sm, ['SET', b('k1'), b('later')]);
    apply(sm, ['DEL', b('k2')]);
    const bytes: Uint8Array[] = [];
    for await (const c of snap) bytes.push(c);
    const all = Buffer.concat(bytes);
    // Re-cut into 7-byte chunks: entries and their length fields straddle chunk ends.
    const copy = new KvStateMachine();
    await copy.restore(
      (async function* () {
        for (let at = 0; at < all.length; at += 7) yield all.subarray(at, at + 7);
      })(),
    );
    expect(copy.size).toBe(20);
    expect(copy.get(b('k1'))?.toString()).toBe('v1');
    expect(copy.get(b('k2'))?.toString()).toBe('v2');
    expect(copy.get(b('k5'))?.equals(big)).toBe(true);
    await expect(
      copy.restore(
        (async function* () {
          yield all.subarray(0, all.length - 3);
        })(),
      ),
    ).rejects.toThrow(/ends inside an entry/);
  });

  it('restores a snapshot of the earlier format (one msgpack list)', async () => {
    const copy = new KvStateMachine();
    await copy.restore(
      (async function* () {
        yield pack([
          [b('a'), b('1')],
          [b('b'), b('2')],
        ]);
      })(),
    );
    expect(copy.size).toBe(2);
    expect(copy.get(b('b'))?.toString()).toBe('2');
  });
});
