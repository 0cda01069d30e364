// The package as its users load it: through package.json's exports map, from
// CommonJS and from ESM, and type-checked by TypeScript under the two module
// resolutions projects use. The project links to this checkout's built dist/.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const exec = promisify(execFile);
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// Every subpath package.json exports, as a consumer names it: 'raftlog/raft', ...
const SUBPATHS = Object.keys((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, unknown> }).exports)
  .filter((k) => k !== '.' && k !== './package.json')
  .map((k) => `raftlog${k.slice(1)}`);
let project: string;

async function run(file: string, args: string[] = []): Promise<string> {
  return (await exec(process.execPath, [...args, file], { cwd: project, encoding: 'utf8', timeout: 60_000 })).stdout;
}

beforeAll(() => {
  // dist/ (what the package ships) was built from the current sources by the global set-up.
  project = mkdtempSync(join(tmpdir(), 'raftlog-consumer-'));
  mkdirSync(join(project, 'node_modules'));
  symlinkSync(ROOT, join(project, 'node_modules', 'raftlog'), 'dir');
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true })); // CommonJS, as npm init makes it
});

afterAll(() => {
  if (project !== undefined) rmSync(project, { recursive: true, force: true });
});

describe('consumers of the package', () => {
  it('a CommonJS project requires it and appends', async () => {
    writeFileSync(
      join(project, 'main.js'),
      `const { ReplicatedLog, WalCorruptError } = require('raftlog');
const { RawNode } = require('raftlog/raft');
(async () => {
  const log = await ReplicatedLog.open({ dataDir: require('node:path').join(__dirname, 'cjs-data') });
  const r = await log.append(Uint8Array.of(1));
  await log.close();
  console.log(typeof WalCorruptError, typeof RawNode, r.index > 0);
  console.log(JSON.stringify(${JSON.stringify(SUBPATHS)}.filter((p) => Object.keys(require(p)).length === 0)));
})();
`,
    );
    expect((await run('main.js')).trim().split('\n')).toEqual(['function function true', '[]']);
  });

  it('an ES module imports it and its subpaths; the root exports the product, not the internals', async () => {
    writeFileSync(
      join(project, 'main.mjs'),
      `import * as root from 'raftlog';
import { RawNode } from 'raftlog/raft';
import { TcpTransport } from 'raftlog/transport';
import { KvStateMachine } from 'raftlog/kv';
console.log(JSON.stringify({
  product: ['ReplicatedLog', 'Wal', 'LogError', 'WalCorruptError', 'SnapshotCorruptError'].every((n) => typeof root[n] === 'function'),
  internals: ['RawNode', 'MemoryNetwork', 'RespParser', 'validateMessage', 'TcpTransport'].filter((n) => n in root),
  subpaths: [RawNode, TcpTransport, KvStateMachine].every((f) => typeof f === 'function'),
  empty: (await Promise.all(${JSON.stringify(SUBPATHS)}.map(async (p) => [p, Object.keys(await import(p)).length]))).filter(([, n]) => n === 0),
}));
`,
    );
    expect(SUBPATHS).toEqual(expect.arrayContaining(['raftlog/raft', 'raftlog/admin']));
    expect(JSON.parse(await run('main.mjs'))).toEqual({ product: true, internals: [], subpaths: true, empty: [] });
  });

  it('an installed package whose addon was never built names the fix its users can run', async () => {
    // The package as npm installs it where neither a prebuild for the platform nor a compiler was at hand.
    const installed = join(project, 'unbuilt', 'node_modules', 'raftlog');
    mkdirSync(installed, { recursive: true });
    for (const f of ['package.json', 'binding.gyp', 'dist']) cpSync(join(ROOT, f), join(installed, f), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(installed, 'node_modules'), 'dir');
    writeFileSync(
      join(project, 'unbuilt', 'main.mjs'),
      `import { Wal } from 'raftlog';
try { await Wal.open('wal'); } catch (err) { console.log(JSON.stringify({ code: err.code, message: err.message })); }
`,
    );
    const failed = JSON.parse(await run(join('unbuilt', 'main.mjs'))) as { code: string; message: string };
    expect(failed.code).toBe('WAL_NOT_BUILT');
    expect(failed.message).toContain('npm rebuild raftlog');
  });

  it("the product's declarations name no private members (they are #private, not part of the API)", () => {
    for (const file of ['dist/wal/wal.d.ts', 'dist/log/replicated-log.d.ts']) {
      const leaked = readFileSync(join(ROOT, file), 'utf8')
        .split('\n')
        .filter((l) => /^\s+private (?!constructor\b)/.test(l));
      expect({ file, leaked }).toEqual({ file, leaked: [] });
    }
  });

  // A CommonJS project's imports become require() calls, which TypeScript allows of an ES module from 5.8 under nodenext.
  // `module: commonjs` resolves as node10, which reads no exports map: the subpaths' types reach it through typesVersions.
  // Its project targets ES2017, as older ones do: the declarations must not name what only a later lib declares
  // (ErrorOptions, from ES2022, was TS2304 there).
  for (const [module, resolution, type, target] of [
    ['node16', 'node16', 'module', 'ES2022'],
    ['nodenext', 'nodenext', 'commonjs', 'ES2022'],
    ['esnext', 'bundler', 'module', 'ES2022'],
    ['commonjs', 'node10', 'commonjs', 'ES2017'],
  ] as const) {
    it(`TypeScript type-checks ${type === 'module' ? 'an ES module' : 'a CommonJS'} consumer with module ${module}, moduleResolution ${resolution}, target ${target}`, async () => {
      const dir = join(project, `ts-${resolution}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ type }));
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            strict: true,
            noEmit: true,
            target,
            module,
            moduleResolution: resolution,
            types: ['node'],
            typeRoots: [join(ROOT, 'node_modules/@types')],
          },
          files: ['main.ts', 'subpaths.ts'],
        }),
      );
      writeFileSync(
        join(dir, 'main.ts'),
        `import { ReplicatedLog, type FatalErrorCode, type LogEntry, type StateMachine, type LogStatus } from 'raftlog';
import { RawNode } from 'raftlog/raft';
class Counter implements StateMachine<number> {
  total = 0;
  apply(e: LogEntry): number { return (this.total += e.data[0]!); }
  snapshot(): Uint8Array { return Uint8Array.of(this.total); }
  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> { for await (const c of chunks) this.total = c[0] ?? this.total; }
}
export async function main(): Promise<number> {
  const log = await ReplicatedLog.open({ dataDir: 'd', stateMachine: new Counter() });
  const { result } = await log.append(Uint8Array.of(5));
  const role: LogStatus['role'] = log.status().role;
  void role; void RawNode;
  // A stopped node's code is one a switch can be exhaustive over, and still reads as a string.
  const stopped: FatalErrorCode | undefined = log.status().fatal?.code;
  const text: string | undefined = stopped;
  void text;
  log.on('fatal', ({ code }) => {
    // @ts-expect-error: a stopped node never gives NOT_LEADER
    if (code === 'NOT_LEADER') return;
  });
  // @ts-expect-error: appends take bytes
  await log.append('text');
  return result;
}
`,
      );
      // Each subpath's declarations resolve and check (skipLibCheck is off).
      writeFileSync(
        join(dir, 'subpaths.ts'),
        SUBPATHS.map((p, i) => `import * as m${i} from '${p}';\nexport const keys${i}: string[] = Object.keys(m${i});\n`).join(''),
      );
      await exec(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir], { encoding: 'utf8', timeout: 60_000 });
    }, 60_000);
  }
});
