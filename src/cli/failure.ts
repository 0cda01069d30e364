// How a CLI command ends on an expected failure: one line on stderr naming the
// error's code and what to do, and a documented exit status. The stack only with --debug.
//
// Exit status: 0 success, 1 the operation failed (the line says why), 2 usage error
// (bad or missing flags), 3 the admin endpoint could not be reached.
import { CodedError } from '../errors.js';
import { UsageError } from './args.js';
import { printable } from '../printable.js';

export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3 } as const;

const HINTS: Record<string, string> = {
  WAL_LOCKED: 'another process has this data directory open: stop it, or give another --data',
  WAL_IO: 'check that --data is a writable directory on a healthy disk with free space',
  DATA_DIR_UNUSABLE: 'check that --data is a directory this user can read and write, and the files it names',
  EADDRINUSE: 'the port is in use: stop what holds it, or pick another address',
  EACCES: 'not allowed: check the permissions of the path, or use a port above 1023',
  // A file written (a backup, a restored data directory) on a disk that refused it.
  ENOSPC: 'the file system is full: free space on it, or write elsewhere, then retry',
  EDQUOT: 'the disk quota is used up: free space under it, or write elsewhere, then retry',
  EROFS: 'the file system is read-only: write elsewhere',
  EIO: 'the disk failed a read or write: check it (the kernel log), then retry elsewhere',
  EADDRNOTAVAIL: "the address is not one of this machine's: give one of its own, or 0.0.0.0 for all of them",
  LISTEN_FAILED: "give one of this machine's IP addresses, a host name that resolves to one, or 0.0.0.0 for all of them",
  WAL_CORRUPT: 'run `raftlog inspect` on the data directory; restore the node from a backup or remove it from the cluster and re-add it empty',
  WAL_FOREIGN: "put the data directory's own wal/ back, or restore the node from its peers (remove it from the cluster, wipe its data directory, add it back)",
  WAL_NOT_BUILT: 'the native addon is missing: run `npm rebuild raftlog`',
  LOG_OPEN_FAILED: 'check that the data directory is a writable directory and that the ports are free',
  LOG_FATAL: 'check the disk (the network, after a transport failure), then restart the node',
  LOG_CORRUPT: 'run `raftlog inspect` on the data directory',
  TRANSPORT_LISTEN_FAILED: 'the peer port is in use or not allowed: stop what holds it or pick another --listen',
  TRANSPORT_INSECURE: 'give --cluster-secret-file, or --tls-cert/--tls-key/--tls-ca, or --insecure on a trusted network',
  INVALID_ARGUMENT: 'check the flags (raftlog <command> -h)',
  NOT_LEADER: "run it against the leader's admin endpoint, or give every node's: --admin A,B,C",
  NO_LEADER: 'the cluster has no leader: check that a majority of its members are running and reach each other',
  NOT_CAUGHT_UP: 'the learner is still catching up: wait and retry',
  // Also what a command given only removed nodes' endpoints is told: member list refuses those too.
  NOT_MEMBER: "check the ids against `raftlog member list` given a member's admin endpoint (a change retried after a TIMEOUT may have taken effect already)",
  ALREADY_MEMBER: 'check `raftlog member list` (a change retried after a TIMEOUT may have taken effect already)',
  MAJORITY_UNAVAILABLE: 'check `raftlog status`: start the voters the leader cannot reach, or remove those first',
  TIMEOUT: 'the cluster did not answer in time: check `raftlog status`, then retry',
  UNAUTHORIZED: 'give the admin token: --admin-token-file FILE',
  TOO_MANY_AUTH_FAILURES: 'wrong admin tokens were sent from this address too often: wait the time given, then retry with the right --admin-token-file',
  ADMIN_UNREACHABLE: 'check --admin HOST:PORT and that the node runs with --admin',
  ADMIN_CONNECTION_LOST: 'the node may have stopped or restarted: check `raftlog status`, then retry',
  TOO_MANY_CONNECTIONS: 'something on this machine (or its network) holds many connections to the admin endpoint: close them, then retry',
  BACKUP_IN_PROGRESS: 'another backup of this node is being sent: retry once it is done, or save from another member',
  // A node's own snapshot (serve, recover) and a backup (snapshot restore) fail alike.
  SNAPSHOT_CORRUPT:
    "the file is damaged: if it is in a node's data directory, restore the node from its peers (remove it from the cluster, wipe its data directory, add it back); if it is a backup, take another with `raftlog snapshot save`",
  SNAPSHOT_MISSING: 'put the snapshot file back, or restore the node from its peers (remove it from the cluster, wipe its data directory, add it back)',
  STATE_CORRUPT: 'the data directory is damaged: restore the node from its peers (remove it from the cluster, wipe its data directory, add it back)',
  SNAPSHOT_VERSION: 'the file was written by another version of raftlog',
  SNAPSHOT_DATA_VERSION: 'the snapshot was written by a later version of raftlog: run that version',
  // A state machine's failure stops the node as LOG_FATAL: these come as its cause.
  KV_SNAPSHOT_VERSION: 'the snapshot was written by another version of raftlog: run that version or a later one; do not restore a backup over it',
  KV_SNAPSHOT_CORRUPT:
    'the snapshot holds what is not a key-value store: restore the node from its peers (remove it from the cluster, wipe its data directory, add it back)',
  WAL_VERSION: 'the WAL was written by another version of raftlog: run that version',
  DATA_EXISTS: 'restore into an empty or new directory',
  RESTORE_INCOMPLETE: 'run the same `raftlog snapshot restore` again; the node starts once it has finished',
  RECOVER_INCOMPLETE: 'run the same `raftlog recover --force-new-cluster` again; the node starts once it has finished',
  NO_WAL: "give a node's data directory (it holds wal/)",
  NO_BACKUP: "give the file `raftlog snapshot save` wrote, or a snapshot file from a node's DIR/snapshots/",
  NO_BACKUP_DIR: 'create the directory, or give a FILE in one that exists: a save makes no directories',
  NOT_CONFIRMED: 'add --yes once you have read the risks (raftlog recover -h)',
};

/** An expected failure of a command, with its code. */
export class CliError extends CodedError {
  constructor(
    code: string,
    message: string,
    readonly exitCode: number = EXIT.failed,
  ) {
    super(code, message);
  }
}

/** Prints the failure and returns the exit status. */
export function reportFailure(command: string, err: unknown, usage: string, debug: boolean): number {
  if (err instanceof UsageError) {
    console.error(`raftlog ${command}: ${err.message}\n${usage}`);
    return EXIT.usage;
  }
  const c = (err as { code?: unknown } | null)?.code;
  const code = typeof c === 'string' ? c : 'INTERNAL';
  const full = err instanceof Error ? err.message : String(err);
  // A failed system call's message begins with its code (ENOSPC: no space left ...): said once.
  const message = full.startsWith(`${code}: `) ? full.slice(code.length + 2) : full;
  if (debug && err instanceof Error && err.stack !== undefined) console.error(err.stack);
  // A node stopped by what its cause names is helped by that cause's hint, not the generic one.
  const cause = code === 'LOG_FATAL' ? (err as { cause?: { code?: unknown } }).cause?.code : undefined;
  const hint =
    (typeof cause === 'string' ? HINTS[cause] : undefined) ??
    HINTS[code] ??
    (code === 'INTERNAL' && !debug ? 'an unexpected error: run again with --debug for the stack and report it' : undefined);
  // The message may name what came from elsewhere (a file of the data directory, an endpoint's
  // address): its control characters are written out, not sent to the terminal.
  console.error(`raftlog ${command}: ${code}: ${printable(message)}${hint !== undefined ? ` (${hint})` : ''}`);
  return err instanceof CliError ? err.exitCode : EXIT.failed;
}

/** Runs a command's body with the shared conventions: -h/--help, --debug, coded failures. */
export async function runCommand(command: string, usage: string, args: string[], body: (args: string[]) => Promise<number>): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(usage);
    return EXIT.ok;
  }
  const debug = args.includes('--debug');
  try {
    return await body(args.filter((a) => a !== '--debug'));
  } catch (err) {
    return reportFailure(command, err, usage, debug);
  }
}
