// The README's runnable examples must run as written (against this checkout) and print
// what their last comment says; every TypeScript sample in it, the tour of the calls
// too, must type-check against the current API.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/index.js';
import { RecordingMachine, enc, tempDir } from './helpers.js';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/**
 * Runs the first ts block after `heading`, importing this checkout for 'raftlog' and with
 * `dir` (a path the example names) moved into a temporary directory; returns what it
 * printed and what its `console.log(...); // ...` line says it prints.
 */
async function runExample(heading: string, dir: string): Promise<{ printed: string; promised: string | undefined }> {
  const block = new RegExp(`${heading}\\n[\\s\\S]*?\`\`\`ts\\n([\\s\\S]*?)\`\`\``).exec(README)?.[1];
  expect(block, heading).toBeDefined();
  const t = tempDir();
  try {
    const src = new URL('../../src/index.ts', import.meta.url).pathname;
    const file = join(t.dir, 'example.mts');
    writeFileSync(file, block!.replace("from 'raftlog'", `from '${src}'`).replace(`'${dir}'`, `'${join(t.dir, 'data')}'`));
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', file], {
      encoding: 'utf8',
      cwd: new URL('../..', import.meta.url).pathname,
      timeout: 60_000,
    });
    // The comment may end with a remark in parentheses, which is not output.
    const promised = /console\.log\([^\n]*\); \/\/ ([^\n]+)/
      .exec(block!)?.[1]
      ?.replace(/ \(.*\)$/, '')
      .trim();
    return { printed: stdout.trim(), promised };
  } finally {
    t.cleanup();
  }
}

it('the embedding example in README.md runs and prints what it says', async () => {
  const { printed, promised } = await runExample('## Embedding', './data');
  expect(promised).toBeDefined();
  expect(printed).toBe(promised);
});

it('the write-ahead log example in README.md runs and prints what it says', async () => {
  const { printed, promised } = await runExample('## The write-ahead log', './wal');
  expect(promised).toBeDefined();
  expect(printed).toBe(promised);
});

it("the tour's entries() reader starts where a reopened log still has records", async () => {
  const tour = /`bytes` a record;[\s\S]*?```ts\n([\s\S]*?)```/.exec(README)?.[1];
  const from = /log\.entries\((\{[^}]*\})\)/.exec(tour ?? '')?.[1];
  expect(from, 'the tour reads log.entries({ ... })').toBeDefined();
  const options = new Function('log', `return (${from!});`) as (log: ReplicatedLog<number>) => { from?: number };
  const t = tempDir();
  try {
    const config = { dataDir: t.dir, snapshotEvery: 2, snapshotCatchUpEntries: 0, sync: 'none' as const };
    let log = await ReplicatedLog.open({ ...config, stateMachine: new RecordingMachine() });
    for (let i = 0; i < 5; i++) await log.append(enc(`r${i}`));
    await log.close();
    // Reopened, the log restores its latest snapshot: the records below it are gone.
    log = await ReplicatedLog.open({ ...config, stateMachine: new RecordingMachine() });
    try {
      const reader = log.entries(options(log));
      const first = reader.next();
      first.catch(() => undefined);
      await log.append(enc('after'));
      const r = await first;
      expect(Buffer.from(r.value!.data).toString()).toBe('after');
      await reader.return(undefined);
    } finally {
      await log.close();
    }
  } finally {
    t.cleanup();
  }
});

it('every TypeScript sample in README.md type-checks (strict) against this checkout', async () => {
  const blocks = [...README.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
  expect(blocks.length).toBeGreaterThanOrEqual(3);
  const src = new URL('../../src/index.js', import.meta.url).pathname;
  // The tour names what a program around it would hold: the state machine, a record, its imports.
  const around = `import { readFileSync } from 'node:fs';\nimport { ReplicatedLog, type StateMachine } from 'raftlog';\ndeclare const stateMachine: StateMachine<number>;\ndeclare const bytes: Uint8Array;\n`;
  const t = tempDir();
  try {
    const files = blocks.map((b, i) => {
      const file = join(t.dir, `sample${i}.mts`);
      const code = b.includes('import ') ? b : around + b;
      writeFileSync(file, code.replaceAll("from 'raftlog'", `from '${src}'`));
      return file;
    });
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    const options = [
      '--noEmit',
      '--strict',
      '--target',
      'es2022',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--types',
      'node',
      '--skipLibCheck',
    ];
    const checked = promisify(execFile)(process.execPath, [tsc, ...options, ...files], {
      encoding: 'utf8',
      cwd: new URL('../..', import.meta.url).pathname,
      timeout: 170_000,
    }).then(
      () => '',
      (err: { stdout?: string; message: string }) => err.stdout || err.message,
    );
    expect(await checked).toBe('');
  } finally {
    t.cleanup();
  }
}, 180_000); // a tsc run over the samples and what they import: slow on a loaded machine
