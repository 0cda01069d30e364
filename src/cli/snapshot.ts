// `raftlog snapshot save FILE` and `raftlog snapshot restore FILE`: backups of the
// state machine, and new clusters seeded from them (etcdctl snapshot save/restore).
import { existsSync, lstatSync, readdirSync, rmSync, statSync } from 'node:fs';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { lstat, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { decodeSnapshotData, encodeSnapshotData } from '../log/snapshot-data.js';
import { MAX_INDEX } from '../raft/types.js';
import { syncDir } from '../storage/durable-dir.js';
import { INSTANCE_FILE } from '../storage/instance-id.js';
import { PEER_INSTANCES_FILE } from '../storage/peer-instances.js';
import { RESTORE, markUnfinished, unfinished, unmarkUnfinished } from '../storage/unfinished.js';
import { SnapshotCorruptError } from '../storage/errors.js';
import { FileSnapshotStore, heldSnapshots, readSnapshotFile, readSnapshotFileData } from '../storage/snapshot-store.js';
import { Wal, crc32c } from '../wal/index.js';
import { OWNER_NAME } from '../wal/owner.js';
import { UsageError, intArg, parseCommand, parsePeers, strArg } from './args.js';
import { ADMIN_FLAGS, adminTarget, badReply, connectionLost, refusal } from './admin-client.js';
import { codeOf } from '../errors.js';
import { CliError, EXIT, runCommand } from './failure.js';

const USAGE = `usage: raftlog snapshot save FILE --admin HOST:PORT [--admin-token-file FILE] [--json]
       raftlog snapshot restore FILE --data DIR --id N [--peers 1=HOST:PORT,...] [--json]
'save' asks the node behind --admin (any member; a follower spares the leader) for its
state machine at a linearizable point (after a barrier) and writes it to FILE, checksummed.
'restore' seeds a NEW node's data directory from such a file: run it once per member of
the new cluster, with the same --peers on each, then start every node with raftlog serve
(the same --id, --data and --peers). Without --peers the node is a single-node cluster.
A snapshot file from a node's DIR/snapshots/ is taken as a backup too. FILE is a file:
'-' (standard output or input) is refused. A save writes it 0600 and renames it over
FILE once whole, so a failed save leaves an earlier FILE as it was.
A save whose FILE's directory is missing or no directory fails with NO_BACKUP_DIR.
A damaged file is refused with SNAPSHOT_CORRUPT; one that is missing, unreadable or a
directory with NO_BACKUP; a DIR whose WAL holds anything, or that holds another snapshot,
with DATA_EXISTS. A restore that was stopped leaves DIR marked
unfinished (serve refuses it with RESTORE_INCOMPLETE): run it again to finish it.`;

export async function main(args: string[]): Promise<number> {
  return runCommand('snapshot', USAGE, args, async (a) => {
    const { opts, positionals } = parseCommand(a, { ...ADMIN_FLAGS, data: 'string', id: 'string', peers: 'string' });
    const [verb, file, ...rest] = positionals;
    if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}'`);
    if (verb !== 'save' && verb !== 'restore') throw new UsageError(verb === undefined ? 'which action? save or restore' : `unknown action '${verb}'`);
    if (file === undefined) throw new UsageError(`snapshot ${verb} needs FILE`);
    // Taken as a name, it wrote a file called '-' where standard output was meant.
    if (file === '-')
      throw new UsageError(`snapshot ${verb} takes a file, not standard ${verb === 'save' ? 'output' : 'input'}: give its name (./- for a file named '-')`);
    // The other action's flags would be ignored: a save told --data wrote no node's directory.
    const theirs = verb === 'save' ? ['data', 'id', 'peers'] : ['admin', 'admin-token-file'];
    const given = theirs.filter((f) => opts.has(f));
    if (given.length > 0) throw new UsageError(`--${given[0]} belongs to snapshot ${verb === 'save' ? 'restore' : 'save'}`);
    if (verb === 'save') {
      const target = adminTarget(opts);
      // The first was backed up and the rest ignored: the leader, perhaps, where a follower was meant.
      if (target.endpoints.length > 1)
        throw new UsageError(`--admin: snapshot save backs up one node: give one HOST:PORT (a follower's spares the leader), not ${strArg(opts, 'admin')}`);
      const { index, bytes } = await save(target.endpoints[0]!, target.token, file);
      console.log(opts.has('json') ? JSON.stringify({ ok: true, file, index, bytes }) : `saved the state at index ${index} (${bytes} bytes) to ${file}`);
      return EXIT.ok;
    }
    const dataDir = strArg(opts, 'data');
    const id = intArg(opts, 'id', undefined, 1);
    const peers = opts.has('peers') ? parsePeers(strArg(opts, 'peers')) : undefined;
    if (peers !== undefined && peers[id] === undefined) throw new UsageError(`--peers must include this node's id ${id}`);
    const index = await restore(file, dataDir, id, peers);
    console.log(
      opts.has('json')
        ? JSON.stringify({ ok: true, dataDir, index })
        : `restored the state at index ${index} into ${dataDir}; start the node with raftlog serve --id ${id} --data ${dataDir}${peers ? ' --peers ...' : ''}`,
    );
    return EXIT.ok;
  });
}

/** What is read of an error answer to a backup, at most. */
const ERROR_ANSWER_BYTES = 64 * 1024;
const ERROR_ANSWER_MS = 15_000;

/**
 * Streams the backup into a checksummed snapshot file beside FILE, checks it against the
 * checksum the endpoint sends after the data, and only then moves it to FILE.
 */
async function save(endpoint: string, token: string | undefined, file: string): Promise<{ index: number; bytes: number }> {
  // Checked before the node is asked: it takes a barrier and streams its whole state first.
  const dir = dirname(file);
  // A directory that is not there is the machine's state, not a misspelt flag: a failed save
  // (exit 1) as restore's missing FILE is, not a usage error. Why it cannot be one is said: a
  // symlink loop (ELOOP) was "not a directory" like a missing one.
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch (err) {
    throw new CliError('NO_BACKUP_DIR', codeOf(err) === 'ENOENT' ? `${dir} does not exist` : `${dir} cannot be reached (${codeOf(err)})`);
  }
  if (!isDir) throw new CliError('NO_BACKUP_DIR', `${dir} is not a directory`);
  if (existsSync(file) && statSync(file).isDirectory()) throw new UsageError(`${file} is a directory: give the backup's file name`);
  await removeAbandoned(file);
  const res = await getStream(endpoint, token, '/snapshot', 120_000);
  if (res.statusCode === 401) {
    // Unread, its body kept the connection, and so the process, alive for as long as it went on.
    res.destroy();
    throw new CliError('UNAUTHORIZED', `${endpoint} refused the request without a valid token`);
  }
  if (res.statusCode !== 200) {
    // An error answer is small: the first 64 KiB of it, or what came in 15 s, say what it is.
    // Read to its end, one without end held the command for as long as it was sent.
    const parts: Buffer[] = [];
    let size = 0;
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      res.destroy();
    }, ERROR_ANSWER_MS);
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        parts.push(chunk);
        if ((size += chunk.length) > ERROR_ANSWER_BYTES) break; // which closes the connection
      }
    } catch (err) {
      if (!late) throw connectionLost(endpoint, err);
    } finally {
      clearTimeout(timer);
    }
    throw refusal(endpoint, res.statusCode ?? 0, Buffer.concat(parts).subarray(0, ERROR_ANSWER_BYTES));
  }
  const index = Number(res.headers['x-raftlog-index']);
  // Without one it is not a backup (a captive portal, another service on the port): nothing is damaged.
  // Nor is it at an index no node holds a snapshot at, which restore would refuse: saved, it would pass for one.
  if (!Number.isSafeInteger(index) || index < 1 || index > MAX_INDEX) {
    res.destroy();
    throw badReply(endpoint, 'answered 200 without a valid x-raftlog-index');
  }
  let crc = 0;
  let bytes = 0;
  const counted = async function* (): AsyncGenerator<Uint8Array> {
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        crc = crc32c(chunk, crc);
        bytes += chunk.length;
        yield chunk;
      }
    } catch (err) {
      throw connectionLost(endpoint, err);
    }
  };
  // The store writes, fsyncs and renames into place; the file then moves to FILE in one rename.
  const tmp = await mkdtemp(join(dirname(file), `${temporaryPrefix(file)}${process.pid}.`)).catch((err: unknown) => {
    res.destroy(); // unread, it would keep the connection, and the process, alive
    throw err;
  });
  // Stopped midway (Ctrl-C), the process ended without reaching the finally below, and left the
  // partial backup beside FILE. It is removed, and the signal raised again to end the process.
  const abandon = (signal: NodeJS.Signals): void => {
    rmSync(tmp, { recursive: true, force: true });
    process.off('SIGINT', abandon).off('SIGTERM', abandon);
    process.kill(process.pid, signal);
  };
  process.once('SIGINT', abandon).once('SIGTERM', abandon);
  try {
    const store = await FileSnapshotStore.open(tmp);
    // A backup names no members: restore gives the new cluster's.
    await store.save({ meta: { index, term: 0, conf: { voters: [], learners: [] } }, data: counted() });
    const sent = Number(res.trailers['x-raftlog-crc32c']);
    if (res.trailers['x-raftlog-crc32c'] === undefined || sent !== crc)
      throw new CliError('SNAPSHOT_CORRUPT', `the backup from ${endpoint} does not match its checksum (cut short or damaged in transit)`);
    const name = readdirSync(tmp).find((n) => n.endsWith('.snap'))!;
    await rename(join(tmp, name), file);
    // The store synced the file and its temporary directory; FILE's name is in this one.
    await syncDir(dirname(file));
  } finally {
    process.off('SIGINT', abandon).off('SIGTERM', abandon);
    await rm(tmp, { recursive: true, force: true });
  }
  return { index, bytes };
}

/** Where a save of `file` on this host writes before the rename: then its pid and mkdtemp's six characters. */
function temporaryPrefix(file: string): string {
  return `.${basename(file)}.${hostname()}.`;
}

/** What a save's store writes in its temporary directory: the backup, or its part. */
const SAVED = /^snap-\d+-0\.snap(\.tmp)?$/;

/**
 * Removes the temporary directories that saves of `file` on this host left when killed (a kill
 * runs no clean-up, and each save makes its own). One is removed only if it is provably a
 * save's and no longer in use: a directory under the prefix with the pid of a process that
 * has ended, holding nothing but what a save writes. A running save's is left to it.
 */
async function removeAbandoned(file: string): Promise<void> {
  const prefix = temporaryPrefix(file);
  for (const name of await readdir(dirname(file))) {
    const pid = /^(\d+)\.[A-Za-z0-9]{6}$/.exec(name.startsWith(prefix) ? name.slice(prefix.length) : '')?.[1];
    if (pid === undefined || running(Number(pid))) continue;
    const path = join(dirname(file), name);
    try {
      if (!(await lstat(path)).isDirectory()) continue;
      const held = await readdir(path, { withFileTypes: true });
      if (held.every((e) => e.isFile() && SAVED.test(e.name))) await rm(path, { recursive: true, force: true });
    } catch (err) {
      // Another save of the same FILE, starting at the same time, removed it first.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

/** Whether a process with this pid exists (one that is not ours to signal does: EPERM). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** A GET whose body is read as a stream (node:http: its trailers are readable after the body). */
function getStream(endpoint: string, token: string | undefined, path: string, timeoutMs: number): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    // The socket's idle timeout alone let an endpoint that sends its head a byte at a time hold
    // the command without end: the head, too, must be whole within timeoutMs.
    const head = setTimeout(() => req.destroy(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
    const req = httpGet(
      `http://${endpoint}${path}`,
      { headers: token !== undefined ? { authorization: `Bearer ${token}` } : {}, timeout: timeoutMs },
      (res) => {
        clearTimeout(head);
        resolve(res);
      },
    );
    req.on('close', () => clearTimeout(head));
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) =>
      reject(
        // The parser refused the answer: the endpoint was reached, and it is not the admin API.
        err.code?.startsWith('HPE_') === true
          ? badReply(endpoint, `answered something that is not HTTP (${err.code})`)
          : new CliError('ADMIN_UNREACHABLE', `${endpoint}: ${err.code ?? err.message}`, EXIT.unreachable),
      ),
    );
  });
}

/** What opening a backup fails with when the path names no file this process can read. */
const UNREADABLE = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'EACCES', 'EPERM', 'EISDIR', 'ENAMETOOLONG']);

const noBackup = (file: string, err: unknown): CliError =>
  new CliError('NO_BACKUP', codeOf(err) === 'ENOENT' ? `${file} does not exist` : `${file} cannot be read (${codeOf(err)})`);

/**
 * A FILE restore cannot read is a failed restore (NO_BACKUP, exit 1), as inspect's missing data
 * directory is, not a usage error. A directory was read as a damaged backup (SNAPSHOT_CORRUPT),
 * whose hint sent the operator to take another backup.
 */
function checkBackupFile(file: string): void {
  let st;
  try {
    st = statSync(file);
  } catch (err) {
    throw noBackup(file, err);
  }
  if (st.isDirectory()) throw new CliError('NO_BACKUP', `${file} is a directory: give the backup's file name`);
  if (!st.isFile()) throw new CliError('NO_BACKUP', `${file} is not a regular file, so not a backup`);
  // A file this process may not read fails at the read, which names it the same way.
}

/**
 * Seeds `dataDir` for node `id` of a new cluster: a snapshot at the backup's index
 * whose configuration is `peers` (or this node alone), and a WAL that starts there.
 * The snapshot's term is 1: a new cluster's terms start over, and every member
 * restored from the same file agrees on it.
 */
async function restore(file: string, dataDir: string, id: number, peers: Record<number, string> | undefined): Promise<number> {
  refuseFileOnTheWay(dataDir);
  checkBackupFile(file);
  // The operator names the backup: a link to it is theirs to make.
  const read = await readSnapshotFile(file, false, { followLinks: true }).catch((err: unknown) => {
    // Gone or changed since it was checked.
    if (UNREADABLE.has(codeOf(err))) throw noBackup(file, err);
    throw err;
  });
  const ids = peers === undefined ? [id] : Object.keys(peers).map(Number);
  const members: Array<[number, string]> = peers === undefined ? [] : Object.entries(peers).map(([k, v]) => [Number(k), v]);
  const index = read.meta.index;
  // No node takes a snapshot there, and one there is opened as none: the node would start empty.
  if (index === 0) throw new SnapshotCorruptError(file, 'it is at index 0, where no snapshot holds state: not a backup this tool saved');
  // Another snapshot beside the one restored (a node's whose WAL was lost, a restore of another
  // backup killed halfway) would stop the node at open, past the restored log's end: refused
  // before anything is made. The one this restore writes, left by a restore killed halfway, is
  // written over.
  const other = (
    await heldSnapshots(join(dataDir, 'snapshots')).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return []; // refused below, by the store
      throw err;
    })
  ).find((h) => h.index !== index || h.term !== 1);
  // A node's identity (restore makes none: the first open does) would meet the new cluster as
  // the old instance, and refuse the new members as replaced instances of the old ones.
  const identity = [INSTANCE_FILE, PEER_INSTANCES_FILE].find((n) => lstatSync(join(dataDir, n), { throwIfNoEntry: false }) !== undefined);
  if (identity !== undefined)
    throw new CliError('DATA_EXISTS', `${dataDir} already holds ${join(dataDir, identity)}, a node's: restore into an empty directory`);
  // A restore stopped halfway left its marker: what it made here is its own, and this one goes on over it.
  const resuming = await unfinished(dataDir, RESTORE);
  if (other !== undefined)
    throw new CliError(
      'DATA_EXISTS',
      `${dataDir} already holds the snapshot ${join(dataDir, 'snapshots', other.name)}` +
        (resuming ? ', from a restore of another backup that did not finish: run that one again, or empty the directory' : ''),
    );
  const walDir = join(dataDir, 'wal');
  // What each directory held before is kept: undefined, it did not exist; null, it is not a directory.
  const dirs = [dataDir, walDir, join(dataDir, 'snapshots')];
  const held = dirs.map((d) => (!existsSync(d) ? undefined : statSync(d).isDirectory() ? new Set(readdirSync(d)) : null));
  // A WAL a node opened names its instance: restored into, it would name one the directory lacks.
  if (held[1]?.has(OWNER_NAME) === true)
    throw new CliError('DATA_EXISTS', `${dataDir} already holds ${join(walDir, OWNER_NAME)}, a node's: restore into an empty directory`);
  // A missing DIR is made with its missing parents, which go too if the restore fails.
  const made = outermostMissing(dataDir);
  // A WAL that is there is checked before the marker is made: a node's (one that ran, or runs and
  // holds its lock) is refused and left as it was. Where there is none, Wal.open makes one, which
  // the marker must precede.
  let wal = held[1] != null && [...held[1]].some((n) => n.endsWith('.wal')) ? await Wal.open(walDir) : undefined;
  let checked = false;
  let recorded = false;
  try {
    if (wal !== undefined) {
      recorded = resuming && recordsRestore(wal, index);
      if (!recorded && !isEmpty(wal)) throw new CliError('DATA_EXISTS', `${dataDir} already holds a WAL`);
    }
    checked = true;
    if (!resuming) await markUnfinished(dataDir, RESTORE);
    wal ??= await Wal.open(walDir);
    const store = await FileSnapshotStore.open(join(dataDir, 'snapshots'));
    const source = readSnapshotFileData(file, read.meta, { followLinks: true });
    // save writes term 0 and the state machine's bytes alone. A node's own snapshot file (from
    // its snapshots/, term 1 or more) wraps them with its members: unwrapped, or the new node
    // would hand its state machine the members' bytes and fail to open.
    const app = read.meta.term === 0 ? source : (await decodeSnapshotData(source, file)).app;
    await store.save({ meta: { index, term: 1, conf: { voters: ids, learners: [] } }, data: encodeSnapshotData(members, app) });
    if (!recorded) await wal.saveSnapshot({ index, term: 1 }, { discardLog: true });
    recorded = true;
    await wal.close();
  } catch (err) {
    await wal?.close().catch(() => undefined); // the first failure is the one reported
    // A restore that fails halfway (a full disk, a file changed since it was checked) takes back
    // what it made. Once the WAL records the snapshot, its file stays, and so does the marker:
    // the restore is to be run again. A WAL found locked was made, and is held, by another process
    // (a second restore of this directory): what is there is that one's.
    if (checked && !recorded && codeOf(err) !== 'WAL_LOCKED') await takeBack(dirs, held, made);
    throw err;
  }
  await unmarkUnfinished(dataDir, RESTORE);
  return index;
}

/** A WAL with nothing in it (no entry, marker or term): a node's that never ran, or one a restore stopped before it was used. */
function isEmpty(wal: Wal): boolean {
  const hs = wal.hardState;
  return wal.lastIndex === 0 && wal.snapshot === null && hs.term === 0 && hs.vote === 0 && hs.commit === 0;
}

/** Whether the WAL holds what a restore at `index` writes there (its snapshot's marker) and nothing else. */
function recordsRestore(wal: Wal, index: number): boolean {
  const hs = wal.hardState;
  const marker = wal.snapshot;
  return marker?.index === index && marker.term === 1 && wal.lastIndex === index && hs.term === 0 && hs.vote === 0 && hs.commit === 0;
}

/** Removes what a failed restore made in `dirs` (what each `held` before), the restore's marker last, then the directories it made. */
async function takeBack(dirs: string[], held: Array<Set<string> | null | undefined>, made: string | undefined): Promise<void> {
  for (let k = dirs.length - 1; k >= 0; k--) {
    const d = dirs[k]!;
    const had = held[k];
    if (had === undefined && k > 0) await rm(d, { recursive: true, force: true });
    else if (had != null) for (const n of readdirSync(d)) if (!had.has(n) && n !== RESTORE.marker) await rm(join(d, n), { recursive: true, force: true });
  }
  if (held[0]?.has(RESTORE.marker) !== true) await rm(join(dirs[0]!, RESTORE.marker), { force: true });
  if (made !== undefined) await rm(made, { recursive: true, force: true });
}

/**
 * A usage error if `dir`, or the nearest of its parents that exists, is not a directory: nothing
 * can be made there, and the failure would surface as a system call's on a path the operator never gave.
 */
function refuseFileOnTheWay(dir: string): void {
  for (let d = resolve(dir); ; d = dirname(d)) {
    try {
      if (statSync(d).isDirectory()) return;
      throw new UsageError(`--data ${dir}: ${d} is not a directory`);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || dirname(d) === d) throw err;
    }
  }
}

/** The outermost directory on the way to `dir` that is missing (a link there, dangling or not, is not); undefined if none is. */
function outermostMissing(dir: string): string | undefined {
  const missing = (d: string): boolean => {
    try {
      lstatSync(d);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ENOENT'; // ENOTDIR: under a file, where nothing can be made
    }
  };
  let outermost: string | undefined;
  for (let d = resolve(dir); missing(d); d = dirname(d)) {
    outermost = d;
    if (dirname(d) === d) break;
  }
  return outermost;
}
