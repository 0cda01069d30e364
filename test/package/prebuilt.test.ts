// The packed tarball installs into a fresh project on a machine without a C++
// compiler (CC and CXX fail), because it carries a prebuilt N-API binary for
// this platform, and the README's programs run from it.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const exec = promisify(execFile);
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The program with its types stripped, by TypeScript in a child: loading the compiler takes about a
 * second of CPU, which in this worker would block its event loop for as long.
 */
async function stripTypes(program: string): Promise<string> {
  const script =
    "const ts = require('typescript'); process.stdout.write(ts.transpileModule(process.argv[1], { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText);";
  const { stdout } = await exec(process.execPath, ['-e', script, program], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return stdout;
}
const temps: string[] = [];
afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

it('npm pack, then install with no compiler, then run the README', async () => {
  const out = mkdtempSync(join(tmpdir(), 'raftlog-pack-'));
  const project = mkdtempSync(join(tmpdir(), 'raftlog-install-'));
  // Packed from a copy: prepack rebuilds the addon, and other tests load this checkout's build/ meanwhile.
  const copy = mkdtempSync(join(tmpdir(), 'raftlog-src-'));
  temps.push(out, project, copy);
  for (const f of ['package.json', 'binding.gyp', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'native', 'src', 'docs']) {
    if (existsSync(join(ROOT, f))) cpSync(join(ROOT, f), join(copy, f), { recursive: true });
  }
  symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir');
  // What an earlier build left of a source since deleted: tsc overwrites dist/ but removes nothing.
  mkdirSync(join(copy, 'dist'));
  writeFileSync(join(copy, 'dist', 'removed-module.js'), 'export {};\n');
  // prepack compiles dist/ and the prebuild for this platform.
  await exec('npm', ['pack', '--pack-destination', out], { cwd: copy, timeout: 240_000 });
  const tarball = readdirSync(out).find((f) => f.endsWith('.tgz'));
  expect(tarball).toBeDefined();
  const { stdout: listing } = await exec('tar', ['-tzf', join(out, tarball!)], { encoding: 'utf8' });
  expect(listing).toMatch(new RegExp(`package/prebuilds/${process.platform}-${process.arch}/raftlog\\.(glibc|musl)\\.node`));
  expect(listing).toContain('package/dist/index.js');
  expect(listing).not.toContain('removed-module');

  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }));
  const env = { ...process.env, CC: 'false', CXX: 'false' };
  // npm waits 5 minutes for a registry that stopped answering before it retries, past this test's
  // limit: a stalled request is dropped after 30 s and retried (twice) instead.
  await exec('npm', ['install', '--prefer-offline', '--fetch-timeout=30000', '--no-audit', '--no-fund', join(out, tarball!)], {
    cwd: project,
    env,
    timeout: 240_000,
  });

  // Every program of the README (a block that starts by importing raftlog) runs as written, in a
  // directory of its own, and prints what its last comment promises. Its types are only stripped.
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const programs = [...readme.matchAll(/```ts\n(import [^\n]* from 'raftlog';\n[\s\S]*?)```/g)].map((m) => m[1]!);
  expect(programs.length).toBeGreaterThanOrEqual(2); // the embedding example and the WAL's
  for (const [i, program] of programs.entries()) {
    const promised = /console\.log\(.*\); \/\/ (.*)$/m.exec(program)?.[1]?.split(' (')[0];
    expect({ program, promised }).toEqual({ program, promised: expect.any(String) });
    const dir = join(project, `readme-${i}`);
    mkdirSync(dir);
    writeFileSync(join(dir, 'example.mjs'), await stripTypes(program));
    const { stdout: printed } = await exec(process.execPath, ['example.mjs'], { cwd: dir, env, encoding: 'utf8', timeout: 60_000 });
    expect({ program, printed: printed.trim() }).toEqual({ program, printed: promised });
  }
  // It loaded the prebuilt binary, not a compiled one: there is nothing to have compiled it with.
  expect(readdirSync(join(project, 'node_modules/raftlog')).includes('build')).toBe(false);
}, 300_000);
