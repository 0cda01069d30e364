// readAll(), the helper a state machine's restore() uses to gather a small snapshot.
import { describe, expect, it } from 'vitest';
import { readAll } from '../../src/log/index.js';

async function* chunks(...sizes: number[]): AsyncGenerator<Uint8Array> {
  for (const [i, n] of sizes.entries()) yield new Uint8Array(n).fill(i + 1);
}

describe('readAll', () => {
  it('gathers the chunks in order, up to maxBytes included', async () => {
    expect(Array.from(await readAll(chunks(2, 3), 5))).toEqual([1, 1, 2, 2, 2]);
    expect((await readAll(chunks())).byteLength).toBe(0);
  });

  it('refuses a snapshot past maxBytes with a code, at the chunk that passes it', async () => {
    let read = 0;
    const counted = async function* (): AsyncGenerator<Uint8Array> {
      for await (const c of chunks(4, 4, 4)) {
        read++;
        yield c;
      }
    };
    await expect(readAll(counted(), 7)).rejects.toMatchObject({ code: 'SNAPSHOT_TOO_LARGE', message: expect.stringMatching(/over 7 bytes/) });
    expect(read).toBe(2);
  });

  it('refuses a maxBytes that is not a non-negative integer, which set no limit at all', async () => {
    for (const maxBytes of [NaN, '8', -1, 1.5]) {
      // NaN and '8' compared false with every size: the whole snapshot was gathered, however large.
      await expect(readAll(chunks(4, 4, 4), maxBytes as number)).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.stringMatching(/readAll\(data, maxBytes\): maxBytes must be a non-negative integer/),
      });
    }
    expect((await readAll(chunks(4), Infinity)).byteLength).toBe(4); // no limit, said so
  });
});
