// Every type a public declaration names is one a user can name too: exported from the
// package's root or one of its subpaths. An option whose type is missing there cannot be
// written down by its user (a variable of it, a function that builds it) but as a copy.
// unexported-types.ts walks what each entry point exports with the TypeScript compiler, as
// the .d.ts files show it: private and @internal members are left out of those, and so out
// of the walk.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const SCRIPT = new URL('./unexported-types.ts', import.meta.url).pathname;

it('every type named by a public declaration is exported from the root or a subpath', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', SCRIPT], { encoding: 'utf8', timeout: 120_000 });
  expect(JSON.parse(stdout)).toEqual([]);
}, 150_000);
