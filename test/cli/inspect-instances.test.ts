// `raftlog inspect` shows a data directory's instance id and its record of the peers' instances,
// and reports a damaged one as the log's open refuses it.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { main as inspect } from '../../src/cli/inspect.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { enc, tempDir } from '../log/helpers.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  vi.restoreAllMocks();
  for (const c of cleanups.splice(0)) c();
});

it('prints the instance id and the recorded peers; a damaged file is STATE_CORRUPT', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const log = await ReplicatedLog.open({ dataDir: t.dir });
  await log.append(enc('x'));
  await log.close();
  const instance = readFileSync(join(t.dir, 'instance'), 'utf8').trim();
  writeFileSync(join(t.dir, 'peer-instances'), `2 ${'a'.repeat(32)} 7\n`);
  const out = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  expect(await inspect([t.dir])).toBe(0);
  const printed = out.mock.calls.map((c) => String(c[0]));
  expect(printed).toContain(`instance: ${instance}`);
  expect(printed).toContain('peer instances: 1');
  expect(printed).toContain(`  node 2: ${'a'.repeat(32)} (recorded at applied index 7)`);
  writeFileSync(join(t.dir, 'instance'), 'not hex');
  writeFileSync(join(t.dir, 'peer-instances'), 'garbage');
  expect(await inspect([t.dir])).toBe(1);
  const damage = err.mock.calls.map((c) => String(c[0]));
  expect(damage.filter((l) => /STATE_CORRUPT/.test(l))).toHaveLength(2);
});
