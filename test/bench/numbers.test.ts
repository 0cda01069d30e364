// `npm run bench`, `npm run chaos`, `npm run soak` and `npm run mutate` read their numbers as `raftlog`
// does (src/cli/args.ts): decimal digits, no exponent, hexadecimal, list, sign, unit or
// junk. Number() read '1e3' as 1000 seconds, '0x10' as 16 and ' 5' as 5, and the scripts
// took 2.5 clients. Only refusals run here: each comes before anything is measured.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { options as raftOptions } from '../../bench/raft.bench.js';
import { options as respOptions } from '../../bench/resp.bench.js';
import { normalizeArgs, SuiteUsageError } from '../../bench/suite.js';
import { options as walOptions } from '../../bench/wal.bench.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Runs a script in a process group of its own: one that took a bad value starts measuring (a
 * cluster, for chaos and soak), and the whole group is killed after a while rather than outlive the test.
 */
function tsx(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

const JUNK = ['1e3', '0x10', ' 5', '5 ', '2,3', '12abc', '', '-1', '+1', 'Infinity', 'NaN', '1_000'];

it("the suites' number options refuse what is not written as a number, and take what is", () => {
  const refused = (opts: Parameters<typeof normalizeArgs>[1], name: string, value: string): string => {
    try {
      normalizeArgs([`${name}=${value}`], opts);
    } catch (err) {
      if (err instanceof SuiteUsageError) return err.message;
      throw err;
    }
    return 'taken';
  };
  for (const [opts, name] of [
    [respOptions, '--runs'],
    [walOptions, '--rounds'],
    [raftOptions, '--batch'],
  ] as const) {
    for (const v of [...JUNK, '0', '1.5']) expect(refused(opts, name, v), `${name} '${v}'`).toBe(`${name} ${v}: must be a positive integer`);
    expect(normalizeArgs([name, '12'], opts)).toEqual([`${name}=12`]);
  }
  for (const v of [...JUNK, '0', '.']) expect(refused(respOptions, '--seconds', v), `'${v}'`).toBe(`--seconds ${v}: must be a positive number (like 3 or 0.5)`);
  expect(normalizeArgs(['--seconds', '0.5'], respOptions)).toEqual(['--seconds=0.5']);
  for (const v of ['1,,16', '1e3', '16,0x10', '1,-2', ',1', '0']) {
    expect(refused(respOptions, '--clients', v), `'${v}'`).toBe(`--clients ${v}: must be positive integers separated by commas, as 1,16,256`);
  }
  expect(normalizeArgs(['--clients=1,16,256'], respOptions)).toEqual(['--clients=1,16,256']);
});

it('npm run bench answers a bad number with its usage and exit status 2', async () => {
  const r = await tsx([join(ROOT, 'bench/run.ts'), 'raft', '--batch', '1e3']);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/^npm run bench: --batch 1e3: must be a positive integer\nusage: npm run bench/);
  expect(r.stdout).toBe('');
});

it('npm run chaos, soak and mutate answer a bad number with their usage and exit status 2, before starting anything', async () => {
  for (const [script, flag, value, want] of [
    ['chaos', '--minutes', '1e3', "--minutes must be a positive number (like 3 or 0.5), got '1e3'"],
    ['chaos', '--clients', '2.5', "--clients must be a positive integer, got '2.5'"],
    ['chaos', '--keys', '0x10', "--keys must be a positive integer, got '0x10'"],
    ['chaos', '--seed', '12abc', "--seed must be a non-negative integer, got '12abc'"],
    ['soak', '--clients', '2,3', "--clients must be a positive integer, got '2,3'"],
    ['soak', '--value-bytes', '1e3', "--value-bytes must be a positive integer, got '1e3'"],
    ['soak', '--snapshot-every', '1.5', "--snapshot-every must be a positive integer, got '1.5'"],
    ['soak', '--sample-seconds', '-1', "--sample-seconds must be a positive number (like 3 or 0.5), got '-1'"],
    ['soak', '--minutes', '', '--minutes needs a value'],
    // No mutant is in nosuch/: taken, the value would only rewrite an empty report.
    ['mutate', '--budget-s', '1e3', "--budget-s must be a positive integer, got '1e3'"],
  ] as const) {
    const r = await tsx([join(ROOT, `scripts/${script}.ts`), `${flag}=${value}`, ...(script === 'mutate' ? ['--files', 'nosuch/'] : [])]);
    expect({ code: r.code, stdout: r.stdout }, `${script} ${flag} ${value}`).toEqual({ code: 2, stdout: '' });
    expect(r.stderr).toMatch(new RegExp(`^npm run ${script}: ${want.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\nusage: npm run ${script}`));
  }
}, 300_000);
