// Scenarios for the Raft core, told as scripts with golden transcripts
// (test/raft/testdata/*.txt; format in datadriven/script.ts). UPDATE=1 rewrites
// the transcripts from what the core does now: read the diff before committing it.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Env } from './datadriven/env.js';
import { formatScript, parseCommand, parseScript } from './datadriven/script.js';

const DIR = resolve(dirname(fileURLToPath(import.meta.url)), 'testdata');
const UPDATE = process.env['UPDATE'] === '1';

describe('datadriven scenarios', () => {
  const files = readdirSync(DIR)
    .filter((f) => f.endsWith('.txt'))
    .sort();

  it('finds the scenarios', () => {
    expect(files.length).toBeGreaterThanOrEqual(6);
  });

  for (const file of files) {
    it(file, () => {
      const path = join(DIR, file);
      const steps = parseScript(readFileSync(path, 'utf8'));
      const env = new Env();
      const actual: string[] = [];
      for (const s of steps) {
        if (s.command === '') continue;
        let got: string;
        try {
          got = env.run(parseCommand(s.command));
        } catch (err) {
          throw new Error(`${file}:${s.line}: ${s.command}: ${(err as Error).message}`, { cause: err });
        }
        actual.push(got);
        if (!UPDATE) expect(got, `${file}:${s.line}: ${s.command}`).toBe(s.expected);
      }
      if (UPDATE) writeFileSync(path, formatScript(steps, actual));
    });
  }
});
