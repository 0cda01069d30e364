// CONFIG GET's glob, against patterns a client sends: as Redis matches them, and at a cost that
// does not grow with a pattern longer than any parameter's name.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { config, configParameters } from '../../src/kv/config.js';

const PARAMETERS = configParameters('always');
const get = (...patterns: Array<string | Buffer>): unknown => config([Buffer.from('GET'), ...patterns.map((p) => Buffer.from(p))], PARAMETERS);

afterEach(() => {
  vi.restoreAllMocks();
});

describe('CONFIG GET', () => {
  it('matches as Redis does: * any bytes, ? one, \\ the next byte itself, without case', () => {
    expect(get('*')).toEqual(['save', '', 'appendonly', 'yes', 'appendfsync', 'always']);
    expect(get('APPEND?NLY', 's**e')).toEqual(['save', '', 'appendonly', 'yes']);
    expect(get('*f*')).toEqual(['appendfsync', 'always']);
    expect(get('a*y*c')).toEqual(['appendfsync', 'always']);
    expect(get('sav\\e*', 'append\\*')).toEqual(['save', '']);
    expect(get('sav\\?', '\\*', '*x*', 'save?', '?', 'sav', 'save\\', `${'*'.repeat(100_000)}z`)).toEqual([]);
    expect(get(`${'*'.repeat(100_000)}e`)).toEqual(['save', '']);
  });

  it("answers a name asked without *, ? or [ under the spelling asked, as Redis 7 does; a glob under the parameter's own", () => {
    // A client library that asked for APPENDONLY reads the answer by that key: it found none.
    expect(get('APPENDONLY')).toEqual(['APPENDONLY', 'yes']);
    expect(get('AppendOnly', 'appendonly')).toEqual(['AppendOnly', 'yes']);
    expect(get('SAVE', 's*e')).toEqual(['SAVE', '']);
    expect(get('s*e', 'SAVE')).toEqual(['save', '']);
    expect(get('APPEND*')).toEqual(['appendonly', 'yes', 'appendfsync', 'always']);
    // Without a glob character it is a name, \\ included: Redis 7 knows no parameter sav\e.
    expect(get('sav\\e')).toEqual([]);
  });

  it('looks at no more of a pattern than a parameter name can match: a 4 MB one is not read whole', () => {
    // Each pattern character the matcher compares is lowercased once: the calls count its work.
    const lowered = vi.spyOn(String.prototype, 'toLowerCase');
    const long = 4 * 1024 * 1024;
    expect(get('a'.repeat(long), `*${'a'.repeat(long)}`, `s${'?'.repeat(long)}`, `${'*?'.repeat(long / 2)}x`)).toEqual([]);
    expect(lowered.mock.calls.length).toBeLessThan(10_000);
  });
});
