// The version a user sees (npm, `raftlog --version`) is the release the CHANGELOG describes last.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const json = (file: string): Record<string, unknown> => JSON.parse(readFileSync(join(ROOT, file), 'utf8')) as Record<string, unknown>;

it("package.json, package-lock.json and `raftlog --version` name the CHANGELOG's newest release", async () => {
  const newest = /^## (\d+\.\d+\.\d+)\b/m.exec(readFileSync(join(ROOT, 'CHANGELOG.md'), 'utf8'))?.[1];
  expect(newest).toMatch(/^\d+\.\d+\.\d+$/);
  expect(json('package.json').version).toBe(newest);
  const lock = json('package-lock.json') as { version: string; packages: Record<string, { version?: string }> };
  expect([lock.version, lock.packages['']?.version]).toEqual([newest, newest]);
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), '--version'], { encoding: 'utf8' });
  expect(stdout.trim()).toBe(`raftlog ${newest}`);
}, 60_000);
