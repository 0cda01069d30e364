// OWNER: the instance id of the data directory a WAL belongs to. The WAL only keeps it: it
// belongs in a WAL directory (the open neither refuses it nor a write of it a crash left), is
// written whole or not at all, and a damaged one is WAL_CORRUPT naming it.
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { Wal } from '../../src/wal/index.js';
import { OWNER_BYTES, OWNER_NAME, OWNER_TMP_NAME, readOwner, writeOwner } from '../../src/wal/owner.js';
import { cleanTempDirs, range, tempDir } from './helpers.js';

afterEach(cleanTempDirs);

const ID = '0123456789abcdef0123456789abcdef';

it('a WAL directory holding OWNER, and an OWNER.tmp a crash left, opens with its log, and both are left to their writer', async () => {
  const dir = tempDir();
  let wal = await Wal.open(dir);
  await wal.append(range(1, 4));
  await wal.close();
  expect(await readOwner(dir)).toBeNull();
  await writeOwner(dir, ID);
  writeFileSync(join(dir, OWNER_TMP_NAME), 'half a write');
  wal = await Wal.open(dir);
  expect(wal.lastIndex).toBe(3);
  await wal.close();
  expect(await readOwner(dir)).toBe(ID);
  expect(statSync(join(dir, OWNER_NAME)).size).toBe(OWNER_BYTES);
  expect(statSync(join(dir, OWNER_NAME)).mode & 0o777).toBe(0o600);
  // The next write replaces a leftover temporary file rather than writing through it.
  await writeOwner(dir, 'f'.repeat(32));
  expect(await readOwner(dir)).toBe('f'.repeat(32));
  expect(readdirSync(dir)).not.toContain(OWNER_TMP_NAME);
});

it('a damaged OWNER is WAL_CORRUPT naming it', async () => {
  const dir = tempDir();
  await (await Wal.open(dir)).close();
  await writeOwner(dir, ID);
  const path = join(dir, OWNER_NAME);
  writeFileSync(path, Buffer.alloc(OWNER_BYTES));
  await expect(readOwner(dir)).rejects.toMatchObject({ code: 'WAL_CORRUPT', file: path, message: expect.stringContaining('bad magic or version') });
});
