// Every program in examples/ runs as written (importing 'raftlog', which resolves
// to this package through its exports map) and prints what it promises; the state
// machines they and the README teach hold to the contract users copy them for.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const exec = promisify(execFile);
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { LogEntry, StateMachine } from '../src/index.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const temps: string[] = [];
afterEach(() => {
  for (const t of temps.splice(0)) rmSync(t, { recursive: true, force: true });
});

async function run(example: string, dir: string): Promise<string> {
  return (await exec(process.execPath, ['--import', 'tsx', join(ROOT, 'examples', example), dir], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })).stdout;
}

describe('examples', () => {
  it('counter: the total survives a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'raftlog-example-'));
    temps.push(dir);
    expect((await run('counter.ts', dir)).trim()).toBe('total was 0, now 5');
    expect((await run('counter.ts', dir)).trim()).toBe('total was 5, now 10');
  });

  it('snapshots: a reopen restores the latest snapshot and replays the rest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'raftlog-example-'));
    temps.push(dir);
    const out = (await run('snapshots.ts', dir)).trim();
    const m = /^keys 49, key49=v249, restored from a snapshot at (\d+), WAL from (\d+)$/.exec(out);
    expect(m, out).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(200);
    expect(Number(m![2])).toBeGreaterThan(1); // the WAL below the snapshot was released
  });

  it('three nodes: appends on two of the nodes are applied everywhere in one order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'raftlog-example-'));
    temps.push(dir);
    expect((await run('three-nodes.ts', dir)).trim()).toMatch(/^leader [123]; every node applied: true; hello from node 1, hello from node 3$/);
  });
});

/**
 * The class `name` of a sample's source, with the sample's imports (its 'raftlog' this
 * checkout's), as a module of its own: the samples are programs, so nothing exports it.
 */
async function classOf(source: string, name: string): Promise<new () => StateMachine> {
  const imports = source.match(/^import [^\n]*;$/gm) ?? [];
  const body = new RegExp(`^class ${name} [\\s\\S]*?^\\}$`, 'm').exec(source)?.[0];
  expect(body, name).toBeDefined();
  const dir = mkdtempSync(join(tmpdir(), 'raftlog-example-'));
  temps.push(dir);
  const file = join(dir, `${name}.ts`);
  const src = join(ROOT, 'src', 'index.ts');
  writeFileSync(file, [...imports.map((l) => l.replace("from 'raftlog'", `from '${src}'`)), body, `export { ${name} };`].join('\n'));
  return ((await import(file)) as Record<string, new () => StateMachine>)[name]!;
}

const example = (file: string): string => readFileSync(join(ROOT, 'examples', file), 'utf8');
const readmeEmbedding = (): string => /## Embedding\n[\s\S]*?```ts\n([\s\S]*?)```/.exec(readFileSync(join(ROOT, 'README.md'), 'utf8'))![1]!;
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

async function snapshotBytes(sm: StateMachine): Promise<Uint8Array> {
  const s = sm.snapshot();
  if (s instanceof Uint8Array) return s.slice();
  const parts: Uint8Array[] = [];
  for await (const c of s as AsyncIterable<Uint8Array>) parts.push(c);
  return Buffer.concat(parts);
}

/** `bytes` in chunks of 3, as a snapshot may arrive in chunks of any size. */
async function* chunks(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.byteLength; i += 3) yield bytes.slice(i, i + 3);
}

let index = 0;
const entry = (data: Uint8Array): LogEntry => ({ index: ++index, term: 1, offset: 0, data });

const machines = [
  {
    name: 'counter.ts Counter',
    load: () => classOf(example('counter.ts'), 'Counter'),
    records: [Uint8Array.of(5), Uint8Array.of(7)],
    others: [Uint8Array.of(100)],
    damaged: [new Uint8Array(0), new Uint8Array(16), new Uint8Array(4)],
  },
  {
    name: "the README's Counter",
    load: () => classOf(readmeEmbedding(), 'Counter'),
    records: [Uint8Array.of(5), Uint8Array.of(7)],
    others: [Uint8Array.of(100)],
    damaged: [new Uint8Array(0), new Uint8Array(16), new Uint8Array(4)],
  },
  {
    name: 'snapshots.ts KeyValue',
    load: () => classOf(example('snapshots.ts'), 'KeyValue'),
    records: [text('{"set":"a","value":"1"}'), text('{"set":"b","value":"2"}'), text('{"del":"a"}')],
    others: [text('{"set":"c","value":"3"}'), text('{"set":"b","value":"9"}')],
    damaged: [text('"ab"\n'), text('["a"]\n'), text('["a",1]\n'), text('{}\n')],
  },
  {
    name: 'three-nodes.ts Journal',
    load: () => classOf(example('three-nodes.ts'), 'Journal'),
    records: [text('one'), text('two')],
    others: [text('three')],
    damaged: [text('"abc"'), text('{}'), text('[1]'), text('')],
  },
];

describe('the state machines the examples and the README teach', () => {
  for (const m of machines) {
    it(`${m.name}: restore() replaces the state with the snapshot's, whatever the chunk sizes`, async () => {
      const Machine = await m.load();
      const source = new Machine();
      for (const r of m.records) source.apply(entry(r));
      const snap = await snapshotBytes(source);
      const target = new Machine();
      for (const r of m.others) target.apply(entry(r));
      await target.restore(chunks(snap), { index, term: 1 });
      expect(await snapshotBytes(target)).toEqual(snap);
    });

    it(`${m.name}: restore() refuses a damaged snapshot`, async () => {
      const Machine = await m.load();
      for (const bytes of m.damaged) {
        const restored = Promise.resolve().then(() => new Machine().restore(chunks(bytes), { index: 1, term: 1 }));
        await expect(restored, new TextDecoder().decode(bytes)).rejects.toThrow();
      }
    });
  }

  it('three-nodes.ts Journal: a journal of 200,000 lines restores', async () => {
    const Journal = await classOf(example('three-nodes.ts'), 'Journal');
    const big = new Journal();
    for (let i = 0; i < 200_000; i++) big.apply(entry(text(`line ${i}`)));
    const snap = await snapshotBytes(big);
    const copy = new Journal();
    await copy.restore(
      (async function* () {
        yield snap;
      })(),
      { index, term: 1 },
    );
    // Compared as one Buffer: an element-wise toEqual of megabytes takes seconds.
    expect(Buffer.from(await snapshotBytes(copy)).equals(snap)).toBe(true);
  });
});
