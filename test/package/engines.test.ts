// The package is ES modules that CommonJS users load with require(), which Node does
// unflagged from 20.19 on the 20 line and from 22.12 on (21 and 22.0 to 22.11 throw
// ERR_REQUIRE_ESM without --experimental-require-module). package.json's engines is
// what npm checks a user's Node against, with semver, so it must admit those releases
// and no other.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const semver = createRequire(import.meta.url)('semver') as { satisfies(version: string, range: string): boolean };

it("engines admits exactly the Node releases whose require() loads the package's ES modules", () => {
  const range = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
  const releases: Array<[string, boolean]> = [
    ['18.20.8', false],
    ['20.18.3', false],
    ['20.19.0', true],
    ['20.20.2', true],
    ['21.7.3', false],
    ['22.0.0', false],
    ['22.11.0', false],
    ['22.12.0', true],
    ['23.0.0', true],
    ['24.11.1', true],
  ];
  expect(releases.map(([version]) => [version, semver.satisfies(version, range)])).toEqual(releases);
});
