// The README is what a user reads to embed and operate raftlog: every option of
// ReplicatedLog.open(), every metric the admin endpoint exports and every route it
// serves must be named there, so that one added to the code without a word in the
// README fails here; so does a command's flag missing from its usage or the README.
import { readFileSync, readdirSync } from 'node:fs';
import { expect, it } from 'vitest';
import { ADMIN_FLAGS } from '../src/cli/admin-client.js';
import { DEFAULTS } from '../src/log/options.js';
import { STALL_WINDOW_BYTES } from '../src/transport/inbound.js';
import { REFUSAL_CODES } from '../src/transport/errors.js';

const read = (path: string): string => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');
const README = read('README.md');

it('names every option of ReplicatedLog.open() (the keys options.ts validates)', () => {
  const table = /const CHECKS: Record<keyof ReplicatedLogOptions, Check> = \{([\s\S]*?)\n\};/.exec(read('src/log/options.ts'))?.[1];
  expect(table).toBeDefined();
  const keys = [...table!.matchAll(/^ {2}(\w+)[,:]/gm)].map((m) => m[1]!);
  expect(keys.length).toBeGreaterThan(25);
  expect(keys.filter((k) => !README.includes(`\`${k}\``) && !README.includes(`\`${k}:`) && !README.includes(`${k}: `))).toEqual([]);
});

it('names every metric the admin endpoint exports, in full', () => {
  const names = [...read('src/admin/prometheus.ts').matchAll(/'(raftlog_[a-z_]+)'/g)].map((m) => m[1]!);
  expect(names.length).toBeGreaterThan(20);
  expect(names.filter((n) => !README.includes(`\`${n}\``) && !README.includes(`\`${n}{`))).toEqual([]);
});

it("names the reasons raftlog_proposals_failed_total takes from no error's code", () => {
  // The others are the error codes, documented with them; these the log writes itself.
  const reasons = [...read('src/log/replicated-log.ts').matchAll(/appendFailed\([^;]*?'([A-Z_]+)'\)/g)].map((m) => m[1]!);
  expect(reasons.length).toBeGreaterThan(0);
  const row = README.split('\n').find((l) => l.includes('`raftlog_proposals_failed_total{reason}`'));
  expect(row).toBeDefined();
  expect(reasons.filter((r) => !row!.includes(`\`${r}\``))).toEqual([]);
});

it("gives every field of TcpTransportOptions and of the Raft core's Config a row in docs/lower-layers.md", () => {
  const doc = read('docs/lower-layers.md');
  const fields = (path: string, name: string): string[] => {
    const body = new RegExp(`export interface ${name} \\{([\\s\\S]*?)\n\\}`).exec(read(path))?.[1];
    expect(body, name).toBeDefined();
    return [...body!.matchAll(/^ {2}(\w+)\??:/gm)].map((m) => m[1]!);
  };
  const section = (heading: string): string => {
    const from = doc.indexOf(`## \`${heading}\``);
    expect(from, heading).toBeGreaterThan(-1);
    const to = doc.indexOf('\n## ', from + 1);
    return doc.slice(from, to === -1 ? undefined : to);
  };
  for (const [path, name] of [
    ['src/transport/tcp-transport.ts', 'TcpTransportOptions'],
    ['src/raft/config.ts', 'Config'],
  ] as const) {
    const all = fields(path, name);
    expect(all.length, name).toBeGreaterThan(10);
    const rows = section(name);
    expect(
      all.filter((f) => !rows.includes(`\n| \`${f}\` |`)),
      name,
    ).toEqual([]);
  }
  expect(README).toContain('docs/lower-layers.md');
});

it('names every route of the admin endpoint with its method', () => {
  const routes = [...read('src/admin/handler.ts').matchAll(/\['(\/[a-z/]*)', '(GET|POST)(?:, HEAD)?'\]/g)].map((m) => `${m[2]} ${m[1]}`);
  expect(routes.length).toBeGreaterThan(8);
  expect(routes.filter((r) => !README.includes(`\`${r}\``))).toEqual([]);
});

it('quotes the rates a snapshot stream must keep at the default timeouts', () => {
  // The idle limit is three election timeouts; a leader's chunk is what the transport makes of ReplicatedLog's frame limit.
  const idleS = (3 * DEFAULTS.tickMs * DEFAULTS.electionTicks) / 1000;
  const MiB = 1024 * 1024;
  const chunk = Math.min(MiB, Math.floor((DEFAULTS.maxRecordBytes + 2 * MiB) / 2));
  expect(README).toContain(`(an idle limit of ${idleS} s) a stream must move ${Math.round(STALL_WINDOW_BYTES / 1024 / idleS)} KiB/s`);
  expect(README).toContain(`in chunks of ${chunk / MiB} MiB`);
  // A chunk, as any frame, may take longer than the idle limit: the same window paces it.
  expect(README).toContain(`carry ${Math.round(STALL_WINDOW_BYTES / 1024 / idleS)} KiB/s gets every snapshot`);
});

it("names every file of the log's, the WAL's and the Raft core's folders in their maps", () => {
  const files = (dir: string): string[] => readdirSync(new URL(`../${dir}`, import.meta.url)).filter((f) => f.endsWith('.ts'));
  const unnamed = (doc: string, dir: string): string[] => files(dir).filter((f) => !doc.includes(f));
  const architecture = read('docs/architecture.md');
  // A folder's index.ts is its public face, not a concept of its own.
  expect(unnamed(architecture, 'src/log').filter((f) => f !== 'index.ts')).toEqual([]);
  expect(unnamed(architecture, 'src/wal').filter((f) => f !== 'index.ts')).toEqual([]);
  expect(unnamed(read('src/raft/README.md'), 'src/raft')).toEqual([]);
});

it("names every flag of every command in the command's usage and in the README", () => {
  const flagsOf = (text: string): string[] => [...text.matchAll(/^\s+'?([a-z-]+)'?: '(?:string|boolean)'/gm)].map((m) => m[1]!);
  const adminFlags = Object.keys(ADMIN_FLAGS);
  const missing: string[] = [];
  const commands = readdirSync(new URL('../src/cli', import.meta.url)).filter((f) => f.endsWith('.ts'));
  let seen = 0;
  for (const file of commands) {
    const text = read(`src/cli/${file}`);
    const usage = /const USAGE = `([\s\S]*?)`;/.exec(text)?.[1];
    if (usage === undefined) continue;
    const flags = [...flagsOf(text), ...(text.includes('...ADMIN_FLAGS') || text.includes('(a, ADMIN_FLAGS)') ? adminFlags : [])].filter((f) => f !== 'help');
    seen += flags.length;
    for (const f of flags) {
      if (!new RegExp(`--${f}\\b`).test(usage)) missing.push(`${file}: --${f} not in its usage`);
      if (!new RegExp(`--${f}\\b`).test(README)) missing.push(`${file}: --${f} not in README.md`);
    }
  }
  expect(seen).toBeGreaterThan(60);
  expect(missing).toEqual([]);
});

it("names, in the refusal counters' rows, the codes they are exported at 0 for and no other", () => {
  const row = (metric: string): string => {
    const line = README.split('\n').find((l) => l.startsWith(`| \`${metric}{code}\``));
    expect(line, metric).toBeDefined();
    return line!;
  };
  const named = new Set([...row('raftlog_transport_refused_total').matchAll(/`(TRANSPORT_[A-Z_]+)`/g)].map((m) => m[1]!));
  expect([...named].sort()).toEqual([...REFUSAL_CODES].sort());
  // Where a peer's code goes: the one list that keeps a code as it is, named as the public export it is.
  expect(row('raftlog_transport_refused_by_peer_total')).toContain('`TRANSPORT_ERROR_CODES`');
});

it("names in the README every field of the options of Wal.open(), serveResp(), serveAdmin() and adminHandler(), and of open()'s deps", () => {
  // A field counts as named when a code block or span holds it: `maxArgs`, `authThrottle: { failures, windowMs }`, `adminHandler(log, { allowedHosts })`.
  const fences = [...README.matchAll(/^```[\s\S]*?^```$/gm)].map((m) => m[0]);
  const prose = fences.reduce((text, block) => text.replace(block, ''), README);
  const spans = [...fences, ...[...prose.matchAll(/`([^`]+)`/g)].map((m) => m[1]!)];
  const named = (field: string): boolean => spans.some((s) => new RegExp(`\\b${field}\\b`).test(s));
  const missing: string[] = [];
  let seen = 0;
  for (const [path, name] of [
    ['src/wal/types.ts', 'WalOptions'],
    ['src/kv/server.ts', 'RespServerOptions'],
    ['src/admin/server.ts', 'AdminServerOptions'],
    ['src/admin/handler.ts', 'AdminHandlerOptions'],
    ['src/log/replicated-log.ts', 'ReplicatedLogDeps'],
  ] as const) {
    const body = new RegExp(`export interface ${name} \\{([\\s\\S]*?)\n\\}`).exec(read(path))?.[1];
    expect(body, name).toBeDefined();
    const fields = [...body!.matchAll(/^ {2}(\w+)\??:/gm)].map((m) => m[1]!);
    expect(fields.length, name).toBeGreaterThan(3);
    seen += fields.length;
    missing.push(...fields.filter((f) => !named(f)).map((f) => `${name}.${f}`));
  }
  expect(seen).toBeGreaterThan(40);
  expect(missing).toEqual([]);
});

it('names in docs/architecture.md every exported error class that extends CodedError directly', () => {
  const architecture = read('docs/architecture.md');
  const sources = (dir: string): string[] =>
    readdirSync(new URL(`../${dir}`, import.meta.url), { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? sources(`${dir}/${e.name}`) : e.name.endsWith('.ts') ? [`${dir}/${e.name}`] : [],
    );
  const families = sources('src').flatMap((f) => [...read(f).matchAll(/^export (?:abstract )?class (\w+) extends CodedError\b/gm)].map((m) => m[1]!));
  expect(families.length).toBeGreaterThan(8);
  expect(families.filter((c) => !architecture.includes(`\`${c}\``))).toEqual([]);
});
