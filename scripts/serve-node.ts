// How the on-demand scripts run a cluster: `raftlog serve` processes from the sources,
// peers authenticated with a secret made for the run.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const MAIN = new URL('../src/cli/main.ts', import.meta.url).pathname;

/** A fresh cluster secret in `work`; returns the file's path. */
export function writeClusterSecret(work: string): string {
  const file = join(work, 'cluster-secret');
  writeFileSync(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
  return file;
}

export interface ServeNode {
  id: number;
  /** Its data directory is `<work>/node<id>`. */
  work: string;
  listen: string;
  /** `--peers`: `1=host:port,2=...`. */
  peers: string;
  secretFile: string;
  resp: string;
  /** More `serve` flags. */
  extra?: string[];
  /** A file that all the node's output (its log included) is appended to. */
  logFile?: string;
}

/** Starts one node: its output goes to `logFile`, or is discarded but for errors (all of it with `quiet`). */
export function serveNode(n: ServeNode, quiet = false): ChildProcess {
  const dataDir = join(n.work, `node${n.id}`);
  mkdirSync(dataDir, { recursive: true });
  const args = [
    'serve',
    '--id',
    String(n.id),
    '--data',
    dataDir,
    '--listen',
    n.listen,
    '--peers',
    n.peers,
    '--cluster-secret-file',
    n.secretFile,
    '--resp',
    n.resp,
    ...(n.extra ?? []),
  ];
  const log = n.logFile === undefined ? undefined : openSync(n.logFile, 'a');
  try {
    // The IPC channel is the node's lifeline, as under `raftlog cluster`: it closes when the script
    // dies, however it dies, and the node stops rather than run on with the script's ports.
    return spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: ['ignore', log ?? 'ignore', log ?? (quiet ? 'ignore' : 'inherit'), 'ipc'] });
  } finally {
    if (log !== undefined) closeSync(log); // the child holds its own copy
  }
}
