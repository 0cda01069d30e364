// The README's first example must run as written (against this checkout).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { tempDir } from './helpers.js';

it('the embedding example in README.md runs and prints what it says', async () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const block = /## Embedding\n\n```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(block).toBeDefined();
  const t = tempDir();
  try {
    const src = new URL('../../src/index.ts', import.meta.url).pathname;
    const file = join(t.dir, 'example.mts');
    writeFileSync(file, block!.replace("from 'raftlog'", `from '${src}'`).replace("'./data'", `'${join(t.dir, 'data')}'`));
    const { stdout: out } = await promisify(execFile)(process.execPath, ['--import', 'tsx', file], {
      encoding: 'utf8',
      cwd: new URL('../..', import.meta.url).pathname,
      timeout: 60_000,
    });
    const promised = /console\.log\(result, index > 1, offset\); \/\/ (\d+ \w+ \d+)/.exec(block!)?.[1];
    expect(out.trim()).toBe(promised);
  } finally {
    t.cleanup();
  }
});
