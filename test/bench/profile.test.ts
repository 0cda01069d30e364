import { describe, expect, it } from 'vitest';
import { analyzeProfile, formatProfileSummary, profileFileName, type CpuProfile, type CpuProfileNode } from '../../src/cli/profile.js';

const FILE = 'file:///app/src/log/record-tag.ts';

function node(id: number, functionName: string, url = '', lineNumber = -1, children: number[] = []): CpuProfileNode {
  return { id, callFrame: { functionName, url, lineNumber, columnNumber: 0 }, children };
}

// root -> (program), (idle), (garbage collector), decode; decode -> helper -> decode (recursion: same function, another node)
const nodes = [
  node(1, '(root)', '', -1, [2, 3, 4, 5]),
  node(2, '(program)'),
  node(3, '(idle)'),
  node(4, '(garbage collector)'),
  node(5, 'decode', FILE, 94, [6]),
  node(6, '', FILE, 76, [7]),
  node(7, 'decode', FILE, 94),
];

/**
 * Samples at 1000, 1100, 1300, 1600, 1650, 1800, 2200 µs; each lasts until the next, the
 * last until endTime 2300: decode 100 + 200 + 400, idle 300, anonymous 50, GC 150, program 100.
 */
const profile: CpuProfile = {
  nodes,
  startTime: 1000,
  endTime: 2300,
  samples: [5, 5, 3, 6, 4, 7, 2],
  timeDeltas: [0, 100, 200, 300, 50, 150, 400],
};

describe('analyzeProfile', () => {
  it('splits sampled time into idle, GC, program and JS from the time deltas', () => {
    const s = analyzeProfile(profile);
    expect(s.samples).toBe(7);
    expect(s.totalMs).toBeCloseTo(1.3, 9);
    expect(s.idleMs).toBeCloseTo(0.3, 9);
    expect(s.gcMs).toBeCloseTo(0.15, 9);
    expect(s.programMs).toBeCloseTo(0.1, 9);
    expect(s.jsMs).toBeCloseTo(0.75, 9);
  });

  it('ranks functions by self time, one row per function however many call-tree nodes it has', () => {
    const s = analyzeProfile(profile);
    expect(s.top.map((f) => [f.name, f.location])).toEqual([
      ['decode', '/app/src/log/record-tag.ts:95'],
      ['(anonymous)', '/app/src/log/record-tag.ts:77'],
    ]);
    expect(s.top[0]!.selfMs).toBeCloseTo(0.7, 9);
    expect(s.top[0]!.share).toBeCloseTo(0.7 / 1.3, 9);
    expect(s.top[1]!.selfMs).toBeCloseTo(0.05, 9);
    expect(analyzeProfile(profile, { top: 1 }).top).toHaveLength(1);
  });

  it('gives an out-of-order sample no time rather than negative time', () => {
    const s = analyzeProfile({ nodes, startTime: 0, endTime: 200, samples: [5, 6, 5], timeDeltas: [0, 100, -30] });
    // Stamps 0, 100, 70: decode 100 + (200 - 70), the anonymous function 0.
    expect(s.totalMs).toBeCloseTo(0.23, 9);
    expect(s.top.find((f) => f.name === 'decode')!.selfMs).toBeCloseTo(0.23, 9);
    expect(s.top.find((f) => f.name === '(anonymous)')?.selfMs ?? 0).toBe(0);
  });

  it('adds up several profiles (the cases of one system)', () => {
    const s = analyzeProfile([profile, profile]);
    expect(s.samples).toBe(14);
    expect(s.totalMs).toBeCloseTo(2.6, 9);
    expect(s.top[0]!.selfMs).toBeCloseTo(1.4, 9);
    expect(s.top[0]!.share).toBeCloseTo(0.7 / 1.3, 9);
  });

  it('falls back to hit counts when the profile has no sample list', () => {
    const hits: CpuProfile = {
      nodes: nodes.map((n) => ({ ...n, hitCount: n.id === 3 ? 3 : n.id === 5 ? 1 : 0 })),
      startTime: 0,
      endTime: 4000,
    };
    const s = analyzeProfile(hits);
    expect(s.idleMs).toBeCloseTo(3, 9);
    expect(s.jsMs).toBeCloseTo(1, 9);
  });

  it('maps positions through the locate function', () => {
    const s = analyzeProfile(profile, { locate: (url, line) => (line === 94 ? { url: 'file:///app/src/log/record-tag.ts', line: 9, column: 0 } : null) });
    expect(s.top[0]!.location).toBe('/app/src/log/record-tag.ts:10');
    expect(s.top[1]!.location).toBe('/app/src/log/record-tag.ts:77');
  });
});

describe('formatProfileSummary', () => {
  it('prints the shares and one table row per function', () => {
    const text = formatProfileSummary('embedded', analyzeProfile(profile));
    expect(text).toContain('idle 23.1%, GC 11.5%, program 7.7%, JS and native calls 57.7%');
    expect(text).toContain('| 0.7 | 53.8% | decode | /app/src/log/record-tag.ts:95 |');
    expect(text.split('\n')).toHaveLength(5);
  });
});

describe('profileFileName', () => {
  it('makes a file name of a system name', () => {
    expect(profileFileName('bench', 'embedded (1 node)')).toBe('bench-embedded-1-node.cpuprofile');
  });
});
