// Small files replaced whole (the instance id, the peers' instances): never through a link.
import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { writeFileDurably } from '../../src/storage/durable-dir.js';
import { tempDir } from '../log/helpers.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

it('a link left or planted under the temporary name is not written through: the file is written, the link target untouched', async () => {
  const t = tempDir('raftlog-durable-');
  cleanups.push(t.cleanup);
  const victim = join(t.dir, 'victim');
  writeFileSync(victim, 'untouched');
  symlinkSync(victim, join(t.dir, 'instance.tmp'));
  await writeFileDurably(t.dir, 'instance', 'new content\n');
  expect(readFileSync(victim, 'utf8')).toBe('untouched');
  expect(readFileSync(join(t.dir, 'instance'), 'utf8')).toBe('new content\n');
});
