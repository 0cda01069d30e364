// The layer graph of docs/architecture.md, checked against every import in
// src/: a layer imports only the layers below it, never one above. The leaf
// modules at the root of src/ (besides index.ts: auth-throttle.ts, defer.ts, errors.ts, the
// CodedError base of every error family, logger.ts, printable.ts, refusal-log.ts and timer-limit.ts) import no layer at all, so every layer
// may import them; the pure core imports nothing from Node, not even through a leaf.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

/** What each layer may import (besides itself and the root leaf modules). */
const ALLOWED: Record<string, readonly string[]> = {
  raft: [],
  wal: [],
  storage: ['raft', 'wal'],
  transport: ['raft'],
  log: ['raft', 'wal', 'storage', 'transport'],
  kv: ['log', 'raft', 'wal', 'storage', 'transport'],
  admin: ['log', 'raft', 'wal', 'storage', 'transport'],
  cli: ['admin', 'kv', 'log', 'raft', 'wal', 'storage', 'transport'],
};

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/** Import specifiers of a file (static imports, re-exports and dynamic imports); relative ones only unless `all`. */
function importsOf(file: string, all = false): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|[\s;])(?:import|export)\s[^'";]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm)) {
    const spec = m[1] ?? m[2]!;
    if (all || spec.startsWith('.')) out.push(spec);
  }
  return out;
}

/** The root leaf modules: every layer may import them. */
const LEAVES = ['auth-throttle.ts', 'defer.ts', 'errors.ts', 'logger.ts', 'printable.ts', 'refusal-log.ts', 'timer-limit.ts'];

/** The layer a path in src/ belongs to: its top folder, or null for a root module. */
function layerOf(path: string): string | null {
  const parts = relative(SRC, path).split(sep);
  return parts.length > 1 ? parts[0]! : null;
}

/** Why `spec`, imported by `file`, breaks the layering, or null if it does not. */
function verdict(file: string, spec: string): string | null {
  const from = layerOf(file);
  const name = relative(SRC, file);
  const target = resolve(dirname(file), spec);
  if (!target.startsWith(SRC + sep)) return `${name} imports ${spec}, outside src/`;
  const to = layerOf(target);
  if (from === null) return name !== 'index.ts' && to !== null ? `${name} is a leaf module but imports the ${to} layer (${spec})` : null;
  if (to === null || to === from) return null;
  const allowed = ALLOWED[from];
  if (allowed === undefined) return `${name}: the folder ${from}/ is not a known layer`;
  return allowed.includes(to) ? null : `${name} (${from}) imports ${spec} (${to}): not a layer below it`;
}

describe('layering', () => {
  it('every import in src/ points down the layer graph', () => {
    const bad = sources(SRC).flatMap((file) => importsOf(file).map((spec) => verdict(file, spec)));
    expect(bad.filter((v) => v !== null)).toEqual([]);
  });

  it('the root leaf modules import nothing, and every layer may import them', () => {
    const roots = readdirSync(SRC).filter((n) => n.endsWith('.ts') && n !== 'index.ts');
    expect(roots.sort()).toEqual([...LEAVES].sort());
    for (const leaf of LEAVES) expect(importsOf(join(SRC, leaf), true), leaf).toEqual([]);
    for (const layer of Object.keys(ALLOWED)) expect(verdict(join(SRC, layer, 'x.ts'), '../errors.js'), layer).toBeNull();
    // Every error family is built on the shared base.
    for (const layer of ['raft', 'wal', 'storage', 'transport', 'log']) {
      expect(importsOf(join(SRC, layer, 'errors.ts')), layer).toContain('../errors.js');
    }
  });

  it('the consensus core imports nothing from Node or any package', () => {
    const core = sources(join(SRC, 'raft')).flatMap((file) =>
      importsOf(file, true)
        .filter((s) => !s.startsWith('.'))
        .map((s) => `${relative(SRC, file)}: ${s}`),
    );
    expect(core).toEqual([]);
    expect(sources(join(SRC, 'raft')).length).toBeGreaterThan(5);
  });

  it('the check sees the imports it must judge', () => {
    // Guards the parser: if it stopped finding imports, the test above would pass vacuously.
    const log = importsOf(join(SRC, 'log', 'replicated-log.ts'));
    expect(log.some((s) => s.startsWith('../raft/'))).toBe(true);
    expect(log.some((s) => s.startsWith('../wal/'))).toBe(true);
    expect(layerOf(join(SRC, 'raft', 'raft.ts'))).toBe('raft');
    expect(layerOf(join(SRC, 'index.ts'))).toBeNull();
    // And it must refuse what the graph forbids.
    expect(verdict(join(SRC, 'raft', 'raft.ts'), '../wal/index.js')).toMatch(/not a layer below/);
    expect(verdict(join(SRC, 'storage', 'x.ts'), '../log/index.js')).toMatch(/not a layer below/);
    expect(verdict(join(SRC, 'logger.ts'), './raft/types.js')).toMatch(/leaf module/);
    expect(verdict(join(SRC, 'storage', 'x.ts'), '../wal/index.js')).toBeNull();
  });
});
