// The prebuilt binary names the C library it was built against, so that node-gyp-build never
// loads a glibc build on musl (Alpine), where it fails to load (or worse), but builds from
// source instead. The package's own `npm run prebuild` runs here with a stand-in for node-gyp,
// as it would on a glibc and on a musl machine: nothing is compiled.
import { execFile } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';

const exec = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const temps: string[] = [];
afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

/** A package directory holding this package.json, with what `npm run prebuild` made for each libc. */
async function prebuilt(libcs: readonly string[]): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'raftlog-prebuild-'));
  temps.push(dir);
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  // What node-gyp leaves: one .node file in build/Release.
  const gyp = join(dir, 'fake-node-gyp');
  writeFileSync(gyp, '#!/bin/sh\nmkdir -p build/Release && echo addon > build/Release/raftlog_wal.node\n');
  chmodSync(gyp, 0o755);
  for (const libc of libcs) {
    await exec('npm', ['run', 'prebuild'], {
      cwd: dir,
      env: { ...process.env, PREBUILD_NODE_GYP: gyp, PREBUILD_STRIP_BIN: 'true', PREBUILD_LIBC: libc },
      timeout: 60_000,
    });
  }
  return dir;
}

/** What node-gyp-build loads from `dir` on a machine of `libc`, or its error. */
async function resolved(dir: string, libc: string): Promise<string> {
  const gypBuild = createRequire(import.meta.url).resolve('node-gyp-build');
  const script = `try { console.log(require(${JSON.stringify(gypBuild)}).resolve(process.argv[1]).split('/').pop()) } catch (e) { console.log('none') }`;
  const { stdout } = await exec(process.execPath, ['-e', script, dir], { env: { ...process.env, LIBC: libc, PREBUILDS_ONLY: '1' } });
  return stdout.trim();
}

it('npm run prebuild tags the binary with its libc, and node-gyp-build loads a build only on its own libc', async () => {
  const builds = join('prebuilds', `${process.platform}-${process.arch}`);
  const glibc = await prebuilt(['glibc']);
  expect(readdirSync(join(glibc, builds))).toEqual(['raftlog.glibc.node']);
  expect(await resolved(glibc, 'glibc')).toBe('raftlog.glibc.node');
  // On musl the glibc build is not taken: the install builds from source instead.
  expect(await resolved(glibc, 'musl')).toBe('none');
  // A package carrying both: each machine takes its own.
  const both = await prebuilt(['glibc', 'musl']);
  expect(readdirSync(join(both, builds)).sort()).toEqual(['raftlog.glibc.node', 'raftlog.musl.node']);
  expect(await resolved(both, 'glibc')).toBe('raftlog.glibc.node');
  expect(await resolved(both, 'musl')).toBe('raftlog.musl.node');
}, 120_000);
