// What tells this data directory apart from any other the same node id ran on: a random
// id made the first time the directory is opened. Peers remember it (peer-instances.ts), so
// a node whose directory was wiped or replaced, which no longer holds what it acknowledged,
// comes back as a new instance they refuse, instead of voting as if it held it. The WAL
// names the same id (its OWNER), so that a WAL put in place of this directory's own, which
// would vote and answer with another node's log under this id, is refused.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { WalForeignError } from '../wal/errors.js';
import { OWNER_NAME, readOwner, writeOwner } from '../wal/owner.js';
import { readSmallFile, writeFileDurably } from './durable-dir.js';
import { StateCorruptError } from './errors.js';

export const INSTANCE_FILE = 'instance';
/** 128 random bits, as lowercase hex. */
export const INSTANCE_ID = /^[0-9a-f]{32}$/;

/**
 * The directory's instance id, made (durably) if it has none: a directory from an older
 * version gets a new one, which peers that knew the old one refuse. A file that is not one id
 * is damage, refused with STATE_CORRUPT. Called with the WAL open (its lock held): a WAL that
 * names no owner (an earlier build's, a new one) is given this id, after the id itself is
 * durable, so that a crash between leaves a WAL to adopt, never one naming an id the
 * directory lacks; one that names another is refused as refuseForeignWal refuses it.
 */
export async function openInstanceId(dataDir: string): Promise<string> {
  const owner = await refuseForeignWal(dataDir);
  let id = await readInstanceId(dataDir);
  if (id === undefined) {
    id = randomBytes(16).toString('hex');
    await writeFileDurably(dataDir, INSTANCE_FILE, `${id}\n`);
  }
  if (owner === null) await writeOwner(join(dataDir, 'wal'), id);
  return id;
}

/**
 * WAL_FOREIGN if the WAL in `dataDir` names another instance than the directory's, or names
 * one where the directory has none: which of the two was copied in cannot be told, and the
 * node would vote with one directory's log under the other's id. Changes nothing: the open
 * calls it before anything is written, `raftlog inspect` and `recover` as the open does.
 * Returns the id the WAL names, null if it names none (it is adopted at the open).
 */
export async function refuseForeignWal(dataDir: string): Promise<string | null> {
  const walDir = join(dataDir, 'wal');
  const owner = await readOwner(walDir);
  if (owner === null) return null;
  const instance = await readInstanceId(dataDir);
  if (instance === owner) return owner;
  const ownerFile = join(walDir, OWNER_NAME);
  const instanceFile = join(dataDir, INSTANCE_FILE);
  const restore = 'restore the node from its peers (remove it from the cluster, empty its data directory, add it back)';
  if (instance === undefined)
    throw new WalForeignError(
      `the WAL ${walDir} belongs to instance ${owner} (${ownerFile}), but ${dataDir} holds no instance file: ` +
        `it may be another directory's WAL copied in. If it is this directory's own and only ${instanceFile} was lost, ` +
        `write ${owner} to ${instanceFile}; otherwise ${restore}`,
    );
  throw new WalForeignError(
    `the WAL ${walDir} belongs to instance ${owner} (${ownerFile}), not to ${dataDir}, whose instance is ${instance} (${instanceFile}): ` +
      `its log and votes are another directory's. Put this directory's own wal/ back, or ${restore}`,
  );
}

/** The instance id a directory holds, if any, without making one: for `raftlog inspect`. */
export async function readInstanceId(dataDir: string): Promise<string | undefined> {
  const text = await readSmallFile(join(dataDir, INSTANCE_FILE), 33);
  return text === undefined ? undefined : parseInstanceId(text, join(dataDir, INSTANCE_FILE));
}

function parseInstanceId(text: string, file: string): string {
  const id = text.endsWith('\n') ? text.slice(0, -1) : text;
  if (!INSTANCE_ID.test(id)) {
    throw new StateCorruptError(
      `${file} is not an instance id (32 lowercase hex digits): delete it to give the directory a new one, which its peers then refuse until the node is removed and added back`,
    );
  }
  return id;
}
